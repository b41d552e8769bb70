"""The JSON API under /api/v1, on SQLite and on a real Postgres: tokens,
posts, permissions, and an OpenAPI document that matches the real routes."""
from __future__ import annotations

import re
from datetime import datetime

import jsonschema_rs
import pytest

from aiblog.models import Role
from tests.support.blog import bearer, create_user, token_for

REQUIRED_ITEM_FIELDS = {"id", "title", "excerpt", "author", "created_at"}
HTTP_METHODS = {"get", "put", "post", "patch", "delete", "head", "options", "trace"}


@pytest.fixture
def users(app, client):
    """Bearer headers for an author, another author, an admin and a reader."""
    roles = {"alice": Role.AUTHOR, "bob": Role.AUTHOR, "boss": Role.ADMIN, "rita": Role.READER}
    return {name: bearer(token_for(app, create_user(app, name, role=role))) for name, role in roles.items()}


def schema_validator(document: dict, name: str):
    return jsonschema_rs.validator_for({"$ref": f"#/components/schemas/{name}", "components": document["components"]})


def test_token_flow(app, client):
    create_user(app, "alice")
    response = client.post("/api/v1/tokens", auth=("alice", "correct horse battery"))
    assert response.status_code == 200
    body = response.get_json()
    assert body["username"] == "alice" and body["expires_in"] == app.config["API_TOKEN_TTL"]
    token = body["token"]
    assert client.post("/api/v1/posts", json={"title": "With token", "body": "b"}, headers=bearer(token)).status_code == 201
    assert client.post("/api/v1/posts", json={"title": "Without", "body": "b"}).status_code == 401
    # Tokens come from HTTP Basic only: no JSON logins, no other methods.
    assert client.post("/api/v1/tokens", json={"username": "alice", "password": "correct horse battery"}).status_code == 401
    assert client.get("/api/v1/tokens").status_code == 405


def test_list_is_paginated_newest_first_with_the_documented_shape(client, users):
    document = client.get("/api/v1/openapi.json").get_json()
    page_schema = schema_validator(document, "PostPage")
    empty = client.get("/api/v1/posts").get_json()
    assert empty == {"items": [], "page": 1, "per_page": 10, "pages": 1, "total": 0, "next_cursor": None}
    created = [client.post("/api/v1/posts", json={"title": f"Post {i}", "body": f"Body **{i}**"},
                           headers=users["alice"]).get_json() for i in range(23)]

    first = client.get("/api/v1/posts").get_json()
    assert {k: first[k] for k in ("page", "pages", "total")} == {"page": 1, "pages": 3, "total": 23}
    page_schema.validate(first)
    assert [item["title"] for item in first["items"]] == [f"Post {i}" for i in range(22, 12, -1)]
    item = first["items"][0]
    assert REQUIRED_ITEM_FIELDS <= set(item) and not {"body", "html"} & set(item)  # a list carries excerpts
    assert item == {**{k: v for k, v in created[-1].items() if k not in ("body", "html")}, "excerpt": "Body 22"}
    assert item["author"] == "alice"
    assert datetime.fromisoformat(item["created_at"]).tzinfo is not None
    full = client.get("/api/v1/posts?include=body,html").get_json()["items"][0]
    assert full == {**created[-1], "excerpt": "Body 22"}
    assert full["html"] == "<p>Body <strong>22</strong></p>\n"
    assert set(client.get("/api/v1/posts?include=html").get_json()["items"][0]) >= {"html", "excerpt"}

    third = client.get("/api/v1/posts?page=3").get_json()
    assert [i["title"] for i in third["items"]] == ["Post 2", "Post 1", "Post 0"]
    everything = client.get("/api/v1/posts?per_page=100").get_json()
    assert [i["id"] for i in everything["items"]] == sorted((p["id"] for p in created), reverse=True)
    assert everything["pages"] == 1
    assert client.get("/api/v1/posts?page=9").get_json()["items"] == []
    for bad in ("page=0", "page=-1", "page=x", "page=1.5", "per_page=0", "per_page=101", "page=100001"):
        response = client.get(f"/api/v1/posts?{bad}")
        assert response.status_code == 400 and "must be an integer" in response.get_json()["message"], bad


def test_get_one_and_create_with_location(client, users):
    response = client.post("/api/v1/posts", json={"title": "Über 缓存", "body": "# Heading\n\ntext"}, headers=users["alice"])
    assert response.status_code == 201
    post = response.get_json()
    assert response.headers["Location"].endswith(f"/api/v1/posts/{post['id']}")
    fetched = client.get(response.headers["Location"])
    assert fetched.status_code == 200 and fetched.get_json() == post
    assert post["title"] == "Über 缓存" and "<h1>Heading</h1>" in post["html"]
    missing = client.get("/api/v1/posts/999999")
    assert missing.status_code == 404 and missing.get_json()["message"] == "post 999999 does not exist"


def test_api_writes_show_on_the_cached_web_pages_at_once(app, client, users):
    anonymous = app.test_client()
    anonymous.get("/")  # cache the empty home page
    post = client.post("/api/v1/posts", json={"title": "From the API", "body": "v1"}, headers=users["alice"]).get_json()
    assert "From the API" in anonymous.get("/").get_data(as_text=True)
    assert "v1" in anonymous.get(f"/post/{post['id']}").get_data(as_text=True)
    client.patch(f"/api/v1/posts/{post['id']}", json={"body": "v2"}, headers=users["alice"])
    assert "v2" in anonymous.get(f"/post/{post['id']}").get_data(as_text=True)
    assert client.delete(f"/api/v1/posts/{post['id']}", headers=users["alice"]).status_code == 204
    assert anonymous.get(f"/post/{post['id']}").status_code == 404
    assert "From the API" not in anonymous.get("/").get_data(as_text=True)


def test_patch_and_delete_follow_the_permission_rules(client, users):
    def new_post() -> int:
        return client.post("/api/v1/posts", json={"title": "Alice's", "body": "original"}, headers=users["alice"]).get_json()["id"]

    post_id = new_post()
    url = f"/api/v1/posts/{post_id}"
    for intruder in ("bob", "rita"):
        assert client.patch(url, json={"title": "pwned"}, headers=users[intruder]).status_code == 403
        response = client.delete(url, headers=users[intruder])
        assert response.status_code == 403 and "only the author or an admin" in response.get_json()["message"]
    assert client.get(url).get_json()["title"] == "Alice's"

    response = client.patch(url, json={"title": "Alice's, edited"}, headers=users["alice"])
    assert response.status_code == 200 and response.get_json()["body"] == "original"  # untouched field kept
    response = client.patch(url, json={"body": "by the admin"}, headers=users["boss"])
    assert response.status_code == 200 and response.get_json()["title"] == "Alice's, edited"
    assert response.get_json()["author"] == "alice"  # moderation does not change the author
    assert client.delete(url, headers=users["boss"]).status_code == 204
    assert client.get(url).status_code == 404
    assert client.patch(url, json={"title": "x"}, headers=users["alice"]).status_code == 404
    assert client.delete(url, headers=users["alice"]).status_code == 404

    own = new_post()
    assert client.delete(f"/api/v1/posts/{own}", headers=users["alice"]).status_code == 204
    assert client.get("/api/v1/posts").get_json()["total"] == 0


def test_reader_cannot_create(client, users):
    response = client.post("/api/v1/posts", json={"title": "t", "body": "b"}, headers=users["rita"])
    assert response.status_code == 403 and response.get_json()["message"] == "readers cannot write posts"
    assert client.get("/api/v1/posts").get_json()["total"] == 0


def test_unknown_fields_are_refused(client, users):
    for payload in ({"title": "t", "body": "b", "author_id": 1}, {"title": "t", "body": "b", "ai_generated": True}):
        response = client.post("/api/v1/posts", json=payload, headers=users["alice"])
        assert response.status_code == 400 and "unknown field" in response.get_json()["message"]
    post_id = client.post("/api/v1/posts", json={"title": "t", "body": "b"}, headers=users["alice"]).get_json()["id"]
    response = client.patch(f"/api/v1/posts/{post_id}", json={"author": "bob"}, headers=users["alice"])
    assert response.status_code == 400 and "unknown field(s): author" in response.get_json()["message"]
    assert client.get(f"/api/v1/posts/{post_id}").get_json()["author"] == "alice"


def _openapi_path(rule: str, prefix: str) -> str:
    # Werkzeug's /posts/<int:post_id> is OpenAPI's /posts/{post_id}.
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule[len(prefix):])


def test_openapi_document_describes_exactly_the_api_routes(app, client):
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    prefix = document["servers"][0]["url"]
    assert prefix == "/api/v1"

    routes: dict[str, set[str]] = {}
    parameters: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(prefix + "/") and rule.endpoint != "api.openapi":
            path = _openapi_path(rule.rule, prefix)
            routes.setdefault(path, set()).update(m.lower() for m in rule.methods - {"HEAD", "OPTIONS"})
            parameters[path] = set(rule.arguments)
    documented = {path: set(item) & HTTP_METHODS for path, item in document["paths"].items()}
    assert documented == routes

    for path, item in document["paths"].items():
        for method in documented[path]:
            operation = item[method]
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == parameters[path], (method, path)
            assert operation["responses"], (method, path)
            if method != "get" or path.startswith("/jobs"):  # every write needs a token
                assert operation.get("security"), (method, path)

    refs = set(_refs(document))
    assert refs and refs <= {f"#/components/schemas/{name}" for name in document["components"]["schemas"]}


def _refs(node):
    """Every $ref in a JSON document."""
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_responses_match_the_documented_schemas(client, users):
    document = client.get("/api/v1/openapi.json").get_json()
    post_schema, error_schema = schema_validator(document, "Post"), schema_validator(document, "Error")
    post = client.post("/api/v1/posts", json={"title": "Schema", "body": "b"}, headers=users["alice"]).get_json()
    post_schema.validate(post)
    post_schema.validate(client.get(f"/api/v1/posts/{post['id']}").get_json())
    schema_validator(document, "Token").validate(client.post("/api/v1/tokens", auth=("bob", "correct horse battery")).get_json())
    for response in (client.get("/api/v1/posts/0"), client.post("/api/v1/posts", json={}, headers=users["alice"]),
                     client.delete(f"/api/v1/posts/{post['id']}"), client.put("/api/v1/posts"),
                     client.get("/api/v1/no-such-thing")):
        assert response.is_json, response.status_code
        error_schema.validate(response.get_json())
