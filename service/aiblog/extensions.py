"""Flask extensions, created once here and bound in ``create_app``."""
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    # Stable constraint names so Alembic migrations work on SQLite and Postgres.
    metadata = MetaData(naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    })


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()


def release_db_connection() -> None:
    """End this request's read transaction and give its pooled connection back.

    Call before waiting on anything slow (the LLM, a password hash, another
    request's render): a request that holds a connection while it waits can
    starve the pool, and one waiting on a request that needs a connection
    deadlocks with it until the pool timeout. Loaded objects stay readable
    (detached); only read paths call this, so nothing unsaved is dropped.
    """
    db.session.close()


def read_first(statement, params: dict):
    """The first row of one read made outside the request's transaction: no
    BEGIN and ROLLBACK round trips, and the pooled connection goes back at
    once instead of at the end of the request."""
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        return connection.execute(statement, params).first()
