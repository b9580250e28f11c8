"""What every channel format shares: the body, delivery ids, field errors in marshmallow's shape, texts."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from marshmallow import Schema, ValidationError

from engine.plugin_api import ValidationFailed

MAX_DELIVERY_ID = 200
INVALID = "the payload is not a valid order: see errors, field by field"


class Problems:
    """Field errors in marshmallow's nested shape, keyed by the payload's own field names (``a.0.b``)."""

    def __init__(self) -> None:
        self.errors: dict[str, Any] = {}

    def add(self, path: str, message: str) -> None:
        node = self.errors
        parts = path.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {} if child is None else {"_": child}
            node = child
        node.setdefault(parts[-1], [])
        if isinstance(node[parts[-1]], dict):
            node[parts[-1]].setdefault("_", []).append(message)
        else:
            node[parts[-1]].append(message)

    def __bool__(self) -> bool:
        return bool(self.errors)

    def check(self, message: str = INVALID) -> None:
        if self.errors:
            raise ValidationFailed(message, errors=self.errors)


def string_keys(errors: Any) -> Any:
    """marshmallow's messages with the list indexes as strings (``{"lines": {"0": ...}}``), as JSON has them."""
    if isinstance(errors, Mapping):
        return {str(key): string_keys(value) for key, value in errors.items()}
    if isinstance(errors, list):
        return [string_keys(item) for item in errors]
    return errors


def load(schema: Schema, data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``schema.load(data)``; its field errors as ``ValidationFailed`` (422), under ``prefix`` (``data.``)."""
    try:
        return schema.load(data)
    except ValidationError as exc:
        errors = string_keys(exc.messages if isinstance(exc.messages, dict) else {"_body": exc.messages})
        for part in reversed([p for p in prefix.split(".") if p]):
            errors = {part: errors}
        raise ValidationFailed(INVALID, errors=errors) from exc


def load_json(request: Any) -> object:
    raw = request.get_data()
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed("the body is not valid JSON", errors={"_body": [f"not valid JSON: {exc}"]},
                               code="invalid_json") from exc


def not_an_object() -> ValidationFailed:
    return ValidationFailed("the payload is not an order object", errors={"_body": ["an object is required"]})


def body_hash(request: Any) -> str:
    return "sha256:" + hashlib.sha256(request.get_data()).hexdigest()


def clean_delivery_id(value: str | None, request: Any) -> str:
    if not value:
        return body_hash(request)
    value = value.strip()
    if len(value) > MAX_DELIVERY_ID:
        return "sha256:" + hashlib.sha256(value.encode()).hexdigest()
    return value


def header(request: Any, name: str) -> str | None:
    value = request.headers.get(name)
    return value.strip() if value else None


def text(value: Any, limit: int = 200) -> str | None:
    """A trimmed string of at most ``limit`` characters, or None (objects, lists and booleans are no text)."""
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    value = str(value).strip()
    return value[:limit] or None


def person_name(*candidates: Mapping[str, Any] | None) -> str | None:
    """The first of the candidates' ``name`` (or ``first_name`` + ``last_name``) that is given."""
    for candidate in candidates:
        if not candidate:
            continue
        name = text(candidate.get("name")) or text(" ".join(filter(None, (
            text(candidate.get("first_name")), text(candidate.get("last_name"))))))
        if name:
            return name
    return None


def split_line(line: dict[str, Any], line_total: int) -> list[dict[str, Any]]:
    """A line whose total does not divide by its quantity becomes two lines (the remainder cent by cent)."""
    quantity = line["quantity"]
    base, extra = divmod(line_total, quantity)
    if not extra:
        return [{**line, "unit_price": base}]
    return [{**line, "quantity": extra, "unit_price": base + 1}, {**line, "quantity": quantity - extra, "unit_price": base}]
