from flask import render_template
from flask_login import login_required

from . import bp


@bp.route("/generate-blog", methods=["GET"])
@login_required
def generate_page():
    return render_template("ai/generate.html")
