"""The ceiling: a bare Flask "hello" app, served by ``make bench`` under the
blog's own gunicorn config. No page of the blog can be faster than this on the
same machine, so every blog throughput is also reported as a share of it."""
from flask import Flask


def create_app() -> Flask:
    app = Flask(__name__)

    @app.route("/")
    def hello():
        return "Hello, World!"

    @app.route("/healthz")
    def healthz():
        return {"status": "ok"}

    return app
