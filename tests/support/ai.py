"""Helpers for AI-writing tests: users, tokens and SSE parsing."""
from __future__ import annotations

import base64
import json


def create_user(app, username: str = "writer", password: str = "writer-password-1", role=None):
    from aiblog.auth.accounts import register
    from aiblog.models import Role

    with app.app_context():
        register(username, password, role=role or Role.AUTHOR)
    return username, password


def basic(username: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def bearer_for(client, username: str, password: str) -> dict[str, str]:
    """Token headers through the real token endpoint (Flask test client or httpx)."""
    response = client.post("/api/v1/tokens", headers=basic(username, password))
    assert response.status_code == 200, response
    body = response.json() if callable(getattr(response, "json", None)) and not hasattr(response, "get_json") else response.get_json()
    return {"Authorization": f"Bearer {body['token']}"}


def parse_sse(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.split("\n\n"):
        name, data = "message", ""
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data += line[6:]
        if data:
            events.append((name, json.loads(data)))
    return events
