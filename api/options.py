"""The one options loader: an operation's options from the query string, form fields or JSON
keys, validated by one schema, handed to the view as a typed options object.

    @bp.post("/detect")
    @options(bp, DetectOptionsIn)             # the schema: fields, defaults, ranges, post_load
    def detect(catalog_id: str, opts: DetectOptions): ...

The webargs location ``options`` (registered on APIFlask's parser) merges the three sources,
first found per field: the query string, then form fields (urlencoded or multipart), then the
keys of a JSON object body. Whatever the source, a value goes
through the same field, so ``verify=nope`` or ``{"top_k": 3.7}`` are 422 wherever they come
from; the answer names the source: ``details: {"form": {"verify": ["Not a valid boolean."]}}``.
JSON values must also be of their JSON type (``{"verify": 1}``, ``{"top_k": "5"}`` or ``null``
are 422),
a form field's boolean is ``true`` or ``false``, and an option sent in two places is taken
from the first and checked in both.
A schema's ``BODY_ONLY`` fields (e.g. an upload's ``metadata``) are not read from the query.

For the OpenAPI document the schema is declared as the operation's query parameters (less its
``BODY_ONLY`` fields); the request bodies (`api.schemas.image_body`) list the same fields.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from apiflask import APIBlueprint, HTTPError, Schema
from apiflask.schema_adapters.marshmallow import parser
from flask import Request, current_app, request
from marshmallow import ValidationError
from marshmallow.fields import Boolean, Field, Integer, Number

LOCATION = "options"
_SOURCES = ("query", "form", "json")


def _body_only(schema: Schema) -> frozenset[str]:
    return frozenset(getattr(schema, "BODY_ONLY", ()))


def _source_values(req: Request, source: str):
    if source == "query":
        return req.args
    if source == "form":
        return req.form
    body = req.get_json(silent=True) if req.is_json else None
    return body if isinstance(body, dict) else {}


def _sent(req: Request, schema: Schema) -> dict[str, list[tuple[str, str, Any]]]:
    """Per field (by its data key): every (source, field name, value) sent, query first."""
    body_only = _body_only(schema)
    sent: dict[str, list[tuple[str, str, Any]]] = {}
    for source in _SOURCES:
        values = _source_values(req, source)
        for name, field in schema.fields.items():
            key = field.data_key or name
            if field.dump_only or (source == "query" and name in body_only):
                continue
            if key in values:  # a JSON null too: no option is nullable
                sent.setdefault(key, []).append((source, name, values.get(key)))
    return sent


@parser.location_loader(LOCATION)
def load_options(req: Request, schema: Schema) -> dict[str, Any]:
    """The schema's fields from the query string, form fields or JSON keys (first found)."""
    return {key: found[0][2] for key, found in _sent(req, schema).items()}


def _by_source(messages: dict, sent: dict[str, list[tuple[str, str, Any]]]) -> dict:
    """Validation messages keyed by the source each bad value came from (query when it came
    from nowhere, e.g. a missing required option)."""
    out: dict[str, dict] = {}
    for key, message in messages.items():
        source = sent[key][0][0] if key in sent else "query"
        out.setdefault(source, {})[key] = message
    return out


def _type_error(field: Field, source: str, value: Any) -> str | None:
    """Why a value is not of its field's type in its source (None: it is). A JSON value keeps
    its JSON type (``"5"`` is no integer there, nor ``1`` a boolean); a form field's boolean
    is ``true`` or ``false``. Query strings keep the parsing they always had."""
    if source == "form" and isinstance(field, Boolean):
        ok = isinstance(value, str) and value.lower() in ("true", "false")
        return None if ok else "Not a valid boolean: send true or false."
    if source != "json":
        return None
    if isinstance(field, Boolean):
        return None if isinstance(value, bool) else "Not a valid boolean."
    if isinstance(field, Integer):  # 3.0 is an integer in JSON Schema; 3.7 is refused later
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else "Not a valid integer."
    if isinstance(field, Number):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else "Not a valid number."
    return None  # strings, lists, objects: the field itself checks their type


def _check_types(schema: Schema, sent: dict[str, list[tuple[str, str, Any]]]) -> None:
    errors: dict[str, dict] = {}
    for key, found in sent.items():
        for source, name, value in found:
            why = _type_error(schema.fields[name], source, value)
            if why:
                errors.setdefault(source, {})[key] = [why]
    if errors:
        raise HTTPError(422, current_app.config["VALIDATION_ERROR_DESCRIPTION"], errors)


def _check_repeats(schema: Schema, sent: dict[str, list[tuple[str, str, Any]]]) -> None:
    """An option sent in two places is used from the first (query, form, JSON) and checked in
    every place: a bad value is refused wherever it is."""
    errors: dict[str, dict] = {}
    for key, found in sent.items():
        for source, name, value in found[1:]:
            try:
                schema.fields[name].deserialize(value, key, {key: value})
            except ValidationError as exc:
                errors.setdefault(source, {})[key] = exc.messages
    if errors:
        raise HTTPError(422, current_app.config["VALIDATION_ERROR_DESCRIPTION"], errors)


def parse_options(schema: Schema) -> Any:
    """The current request's options, loaded by ``schema`` (422 with the one error shape)."""
    sent = _sent(request, schema)
    _check_types(schema, sent)
    try:
        loaded = parser.parse(schema, request, location=LOCATION)
    except HTTPError as exc:
        if isinstance(exc.detail, dict) and LOCATION in exc.detail:
            exc.detail = _by_source(exc.detail[LOCATION], sent)
        raise
    _check_repeats(schema, sent)
    return loaded


def options(bp: APIBlueprint, schema: type[Schema], arg_name: str = "opts") -> Callable:
    """Validate an operation's options with ``schema`` and pass them as ``arg_name``; the
    schema is documented as the operation's query parameters."""
    loader = schema()
    documented = schema(exclude=tuple(_body_only(loader))) if _body_only(loader) else loader

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any):
            kwargs[arg_name] = parse_options(loader)
            return view(*args, **kwargs)

        # documentation only (APIFlask writes ``args`` as parameters); validation is above
        spec = wrapper.__dict__.setdefault("_spec", {})
        spec.setdefault("args", []).append((documented, "query"))
        return wrapper

    return decorator
