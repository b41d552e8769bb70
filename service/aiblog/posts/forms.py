from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from ..models import BODY_MAX, TITLE_MAX


class PostForm(FlaskForm):
    title = StringField("Title", validators=[DataRequired(), Length(max=TITLE_MAX)])
    body = TextAreaField("Body (Markdown)", validators=[DataRequired(), Length(max=BODY_MAX)])


class DeleteForm(FlaskForm):
    """Empty form: carries the CSRF token of the delete button."""
