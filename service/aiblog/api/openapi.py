"""The OpenAPI 3 document of /api/v1, served at /api/v1/openapi.json. A test
checks it against the URL map; a post's fields come from ``models.POST_API_FIELDS``."""
from flask import jsonify

from ..errors import largest_body
from ..models import BODY_MAX, ID_MAX, POST_API_FIELDS, TITLE_FORBIDDEN_CHARS, TITLE_MAX
from . import bp


def _error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


ERRORS = {
    "400": _error("Invalid input; `message` says what is wrong."),
    "401": _error("Missing, invalid or expired token."),
    "403": _error("Authenticated but not allowed."),
    "404": _error("No such object."),
    "429": _error("Rate limit, LLM capacity or background queue cap exceeded; see `Retry-After`."),
}
BEARER = [{"bearerAuth": []}]
POST_ID = {"name": "post_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0, "maximum": ID_MAX}}
PAGE = {"name": "page", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1, "maximum": 100000, "default": 1}}
PER_PAGE = {"name": "per_page", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1, "maximum": 100}}
CURSOR = {"name": "cursor", "in": "query", "required": False,
          "description": "`next_cursor` of the previous page (instead of `page`): as cheap at any depth.",
          "schema": {"type": "string", "minLength": 1, "maxLength": 200}}
INCLUDE = {"name": "include", "in": "query", "required": False,
           "description": "Comma-separated: `body`, `html`. List items carry only the excerpt otherwise.",
           "schema": {"type": "string", "pattern": r"^((body|html)(,(body|html))?)?$"}}


def _json(schema_ref: str, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}}}


def _pick(*codes: str) -> dict:
    errors = {**ERRORS, "413": _error(f"Request body larger than {largest_body()} (MAX_CONTENT_LENGTH).")}
    return {code: errors[code] for code in codes}


# What the server accepts, as patterns (linear-time, no nested repetition):
# a title has no control character but tab and is not blank; a body has no
# NUL and is not blank.
TITLE = {"type": "string", "minLength": 1, "maxLength": TITLE_MAX,
         "pattern": rf"^[^\S{TITLE_FORBIDDEN_CHARS}]*[^\s{TITLE_FORBIDDEN_CHARS}][^{TITLE_FORBIDDEN_CHARS}]*$"}
BODY = {"type": "string", "minLength": 1, "maxLength": BODY_MAX, "pattern": r"^\s*[^\s\x00][^\x00]*$"}


def document() -> dict:
    return {
        "openapi": "3.0.3",
        "info": {"title": "aiblog API", "version": "1.0.0",
                 "description": "Posts and AI generation. Get a token with HTTP Basic at POST /tokens, "
                                "then send `Authorization: Bearer <token>`."},
        "servers": [{"url": "/api/v1"}],
        "paths": {**_post_paths(), **_generation_paths()},
        "components": {
            "securitySchemes": {
                "basicAuth": {"type": "http", "scheme": "basic"},
                "bearerAuth": {"type": "http", "scheme": "bearer"},
            },
            "schemas": {**_post_schemas(), **_generation_schemas()},
        },
    }


def _post_paths() -> dict:
    post_input = {
        "type": "object", "additionalProperties": False,
        "properties": {"title": TITLE, "body": BODY},
    }
    return {
        "/tokens": {"post": {
            "summary": "Exchange username and password (HTTP Basic) for a token",
            "security": [{"basicAuth": []}],
            "responses": {"200": _json("Token", "A bearer token"), **_pick("401", "429")},
        }},
        "/posts": {
            "get": {
                "summary": "Posts, newest first (by page number, or after a cursor)",
                "parameters": [PAGE, PER_PAGE, CURSOR, INCLUDE],
                "responses": {"200": _json("PostPage", "One page of posts"), **_pick("400", "429")},
            },
            "post": {
                "summary": "Create a post", "security": BEARER,
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    **post_input, "required": ["title", "body"]}}}},
                "responses": {"201": _json("Post", "The new post"), **_pick("400", "401", "403", "413")},
            },
        },
        "/posts/{post_id}": {
            "get": {"summary": "One post", "parameters": [POST_ID],
                    "responses": {"200": _json("Post", "The post"), **_pick("404")}},
            "patch": {
                "summary": "Change a post (author or admin)", "security": BEARER, "parameters": [POST_ID],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {**post_input, "minProperties": 1}}}},
                "responses": {"200": _json("Post", "The changed post"), **_pick("400", "401", "403", "404", "413")},
            },
            "delete": {
                "summary": "Delete a post (author or admin)", "security": BEARER, "parameters": [POST_ID],
                "responses": {"204": {"description": "Deleted"}, **_pick("401", "403", "404")},
            },
        },
    }


def _generation_paths() -> dict:
    return {
        "/generate": {"post": {
            "summary": "Generate a blog post from a title with the LLM",
            "security": BEARER,
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["title"], "additionalProperties": False,
                "properties": {
                    "title": TITLE,
                    "mode": {"type": "string", "enum": ["sync", "stream", "background", None], "default": "sync",
                             "nullable": True, "description": "null or absent: sync"},
                }}}}},
            "responses": {
                "200": {"description": "sync: the generated text; stream: Server-Sent Events",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Generation"}},
                                    "text/event-stream": {"schema": {"type": "string"}}}},
                "202": _json("JobAccepted", "background: the job was queued"),
                **_pick("400", "401", "403", "413", "429"),
                "502": _error("The LLM answered badly or cut the stream."),
                "503": _error("The LLM is unavailable (circuit open or unreachable)."),
                "504": _error("The LLM did not answer in time."),
            },
        }},
        "/jobs/{job_id}": {"get": {
            "summary": "State of a background generation", "security": BEARER,
            "parameters": [{"name": "job_id", "in": "path", "required": True,
                            "schema": {"type": "string", "minLength": 1, "maxLength": 64}}],
            "responses": {"200": _json("Job", "The job"), **_pick("401", "404")},
        }},
    }


def _post_schemas() -> dict:
    post = {name: schema for name, (schema, _) in POST_API_FIELDS.items()}
    summary = {name: schema for name, schema in post.items() if name not in ("body", "html")}
    return {
        "Error": {"type": "object", "required": ["error", "message", "status"], "properties": {
            "error": {"type": "string"}, "message": {"type": "string"}, "status": {"type": "integer"}}},
        "Token": {"type": "object", "required": ["token"], "properties": {
            "token": {"type": "string"}, "expires_in": {"type": "integer"}, "username": {"type": "string"}}},
        "Post": {"type": "object", "required": ["id", "title", "body", "html", "author", "created_at"],
                 "properties": post},
        "PostSummary": {"type": "object", "required": ["id", "title", "excerpt", "author", "created_at"],
                        "properties": {
            **summary, "excerpt": {"type": "string"},
            "body": {**post["body"], "description": "with include=body"},
            "html": {**post["html"], "description": "with include=html"}}},
        "PostPage": {"type": "object", "required": ["items", "page", "pages", "total", "next_cursor"],
                     "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/PostSummary"}},
            "page": {"type": "integer", "nullable": True, "description": "null when asked by cursor"},
            "per_page": {"type": "integer"},
            "pages": {"type": "integer"}, "total": {"type": "integer"},
            "next_cursor": {"type": "string", "nullable": True,
                            "description": "pass as `cursor` for the next page; null on the last"}}},
    }


def _generation_schemas() -> dict:
    return {
        "Generation": {"type": "object", "required": ["title", "content", "cached"], "properties": {
            "title": {"type": "string"}, "content": {"type": "string"}, "html": {"type": "string"},
            "cached": {"type": "boolean"}, "deduplicated": {"type": "boolean"},
            "model": {"type": "string"}, "prompt_version": {"type": "string"},
            "simulated": {"type": "boolean"}, "generation_seconds": {"type": "number"}}},
        "JobAccepted": {"type": "object", "required": ["id", "status"], "properties": {
            "id": {"type": "string"}, "status": {"type": "string"}, "url": {"type": "string"}}},
        "Job": {"type": "object", "required": ["id", "status"], "properties": {
            "id": {"type": "string"},
            "status": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
            "result": {"$ref": "#/components/schemas/Generation"},
            "error": {"type": "string"}}},
    }


@bp.route("/openapi.json")
def openapi():
    return jsonify(document())
