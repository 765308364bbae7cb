"""Declarative API routes: one decorator gives aiohttp its route and OpenAPI its entry.

A handler is ``async def h(request, *, body=..., query=..., user=...)``; the
wrapper parses the JSON body and the query string with the declared pydantic
models (400 with field errors on failure), authenticates when ``auth`` says so,
and serializes pydantic results. Handlers stay thin: they call a service.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel, TypeAdapter, ValidationError

from api.auth import require_user
from api.errors import ApiError, from_validation
from api.keys import ENDPOINTS

Handler = Callable[..., Awaitable[Any]]
_PATH_PARAM = re.compile(r"{(\w+)(?::[^}]*)?}")


@dataclass
class Endpoint:
    method: str
    path: str
    handler: Handler
    name: str
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: Any = None
    status: int = 200
    auth: tuple[str, ...] | None = ("learner", "mentor", "admin")
    raw_body: str | None = None  # e.g. "multipart/form-data" for uploads
    response_media: str = "application/json"
    errors: tuple[int, ...] = field(default_factory=tuple)


def dump(result: Any) -> Any:
    """Make handler results JSON-ready (pydantic models, lists of them, plain data)."""
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json")
    if isinstance(result, list):
        return [dump(r) for r in result]
    if isinstance(result, dict):
        return {k: dump(v) for k, v in result.items()}
    return result


def _orjson_default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encode(result: Any) -> bytes:
    """JSON bytes of a handler result: pydantic's own serializer for models, orjson for
    plain data (several times cheaper than model_dump + json.dumps on the hot reads)."""
    if isinstance(result, BaseModel):
        return result.__pydantic_serializer__.to_json(result)
    return orjson.dumps(result, default=_orjson_default, option=orjson.OPT_NON_STR_KEYS)


def json_body(result: Any, *, status: int = 200) -> web.Response:
    """An ``application/json`` response of ``result`` (a model, or JSON-ready data)."""
    return web.Response(body=encode(result), status=status, content_type="application/json", charset="utf-8")


class ApiRoutes:
    """The routes of one resource module; ``register(app)`` adds them."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.endpoints: list[Endpoint] = []
        # (path, handler, name): WebSocket endpoints, routed as they are (not JSON, not in OpenAPI).
        self.sockets: list[tuple[str, Handler, str]] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        name: str | None = None,
        summary: str = "",
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        response: Any = None,
        status: int = 200,
        auth: tuple[str, ...] | str | None = ("learner", "mentor", "admin"),
        raw_body: str | None = None,
        response_media: str = "application/json",
        errors: tuple[int, ...] = (),
    ) -> Callable[[Handler], Handler]:
        roles = (auth,) if isinstance(auth, str) else auth

        def deco(fn: Handler) -> Handler:
            self.endpoints.append(
                Endpoint(
                    method=method.upper(),
                    path=path,
                    handler=fn,
                    name=name or fn.__name__,
                    summary=summary or (fn.__doc__ or "").strip().split("\n")[0],
                    tag=self.tag,
                    body=body,
                    query=query,
                    response=response,
                    status=status,
                    auth=roles,
                    raw_body=raw_body,
                    response_media=response_media,
                    errors=errors,
                )
            )
            return fn

        return deco

    def get(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **kw)

    def delete(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **kw)

    def websocket(self, path: str, *, name: str) -> Callable[[Handler], Handler]:
        """A WebSocket endpoint: the handler gets the bare request and does its own handshake."""

        def deco(fn: Handler) -> Handler:
            self.sockets.append((path, fn, name))
            return fn

        return deco

    def register(self, app: web.Application) -> None:
        for ep in self.endpoints:
            app.router.add_route(ep.method, ep.path, _wrap(ep), name=ep.name)
            app[ENDPOINTS].append(ep)
        for path, handler, name in self.sockets:
            app.router.add_get(path, handler, name=name)


# Primary keys are 32-bit INTEGER columns (PostgreSQL refuses larger values with an error).
MAX_ID = 2**31 - 1


def path_id(request: web.Request, key: str = "id") -> int:
    """An integer id from the path; anything else is a plain 404."""
    try:
        value = int(request.match_info[key])
    except (KeyError, ValueError) as exc:
        raise ApiError(404, "not_found", "Not found.") from exc
    if value <= 0 or value > MAX_ID:
        raise ApiError(404, "not_found", "Not found.")
    return value


async def _read_json(request: web.Request) -> Any:
    if not request.can_read_body:
        return {}
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        # RecursionError: "[" * 100000 nests deeper than the parser's stack; still just bad input.
        raise ApiError(400, "malformed_json", "The request body is not valid JSON.") from exc


def _wrap(ep: Endpoint) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        kwargs: dict[str, Any] = {}
        if ep.auth is not None:
            kwargs["user"] = await require_user(request, roles=ep.auth)
        if ep.query is not None:
            try:
                kwargs["query"] = ep.query.model_validate(dict(request.query))
            except ValidationError as exc:
                raise from_validation(exc) from exc
        if ep.body is not None:
            data = await _read_json(request)
            if not isinstance(data, dict):
                raise ApiError(400, "validation_error", "The request body must be a JSON object.")
            try:
                kwargs["body"] = ep.body.model_validate(data)
            except ValidationError as exc:
                raise from_validation(exc) from exc
        result = await ep.handler(request, **kwargs)
        if isinstance(result, web.StreamResponse):
            return result
        if result is None and ep.status == 204:
            return web.Response(status=204)
        return json_body(result, status=ep.status)

    handler.__name__ = ep.handler.__name__
    return handler


ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        }
    },
}


def build_openapi(endpoints: list[Endpoint], *, title: str, version: str) -> dict[str, Any]:
    """OpenAPI 3.1 from the route table and the pydantic models (one source of truth)."""
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    ref = "#/components/schemas/{model}"

    def schema_of(tp: Any, mode: str) -> dict[str, Any]:
        s = TypeAdapter(tp).json_schema(ref_template=ref, mode=mode)  # type: ignore[arg-type]
        for name, d in s.pop("$defs", {}).items():
            components.setdefault(name, d)
        if "title" in s and isinstance(tp, type) and issubclass(tp, BaseModel):
            components.setdefault(tp.__name__, s)
            return {"$ref": ref.format(model=tp.__name__)}
        return s

    paths: dict[str, Any] = {}
    for ep in endpoints:
        path = _PATH_PARAM.sub(lambda m: "{" + m.group(1) + "}", ep.path)
        op: dict[str, Any] = {"operationId": ep.name, "summary": ep.summary or ep.name, "tags": [ep.tag]}
        params = [
            {
                "name": p,
                "in": "path",
                "required": True,
                "schema": {"type": "integer"} if p.endswith("id") else {"type": "string"},
            }
            for p in _PATH_PARAM.findall(ep.path)
        ]
        if ep.query is not None:
            qs = ep.query.model_json_schema(ref_template=ref)
            required = set(qs.get("required", []))
            for fname, fs in qs.get("properties", {}).items():
                params.append({"name": fname, "in": "query", "required": fname in required, "schema": fs})
            for name, d in qs.get("$defs", {}).items():
                components.setdefault(name, d)
        if params:
            op["parameters"] = params
        if ep.body is not None:
            # An empty body reads as {} (see _read_json): required only if {} is invalid.
            has_required = any(f.is_required() for f in ep.body.model_fields.values())
            op["requestBody"] = {
                "required": has_required,
                "content": {"application/json": {"schema": schema_of(ep.body, "validation")}},
            }
        elif ep.raw_body:
            op["requestBody"] = {
                "required": True,
                "content": {
                    ep.raw_body: {
                        "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
                    }
                },
            }
        responses: dict[str, Any] = {}
        if ep.status == 204:
            responses["204"] = {"description": "No content"}
        elif ep.response is not None:
            responses[str(ep.status)] = {
                "description": "OK",
                "content": {ep.response_media: {"schema": schema_of(ep.response, "serialization")}},
            }
        else:
            responses[str(ep.status)] = {"description": "OK", "content": {ep.response_media: {"schema": {}}}}
        err = {"description": "Error", "content": {"application/json": {"schema": {"$ref": ref.format(model="Error")}}}}
        codes = {400, 404, 409, 413, 422, 429, 503, *ep.errors}
        if ep.auth is not None:
            codes |= {401, 403}
            op["security"] = [{"bearer": []}, {"cookie": []}]
        for code in sorted(codes):
            responses.setdefault(str(code), err)
        op["responses"] = responses
        paths.setdefault(path, {})[ep.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "pl_session"},
            },
        },
    }
