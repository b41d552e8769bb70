from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

from . import generate, openapi, posts, tokens  # noqa: E402,F401
from ..extensions import csrf  # noqa: E402

# The API authenticates with Bearer tokens, not cookies, so CSRF cannot apply.
csrf.exempt(bp)
