"""Prometheus instrumentation of the app (request metrics, DB timing, active users)."""
from flask import Flask


def init_app(app: Flask) -> None:
    pass
