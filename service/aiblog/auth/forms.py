from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Regexp

from ..models import USERNAME_MAX
from .accounts import USERNAME_MESSAGE, USERNAME_MIN, USERNAME_PATTERN

USERNAME_RULE = Regexp(USERNAME_PATTERN, message=USERNAME_MESSAGE)


class RegisterForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(min=USERNAME_MIN, max=USERNAME_MAX), USERNAME_RULE])
    password = PasswordField("Password", validators=[DataRequired(), Length(min=8, max=256)])
    confirm = PasswordField("Repeat password", validators=[DataRequired(), EqualTo("password", message="Passwords do not match.")])


class ChangePasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[DataRequired(), Length(max=256)])
    password = PasswordField("New password", validators=[DataRequired(), Length(min=8, max=256)])
    confirm = PasswordField("Repeat new password", validators=[DataRequired(), EqualTo("password", message="Passwords do not match.")])


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=USERNAME_MAX)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])
