"""Values between Python and the admin library: JSON text in, Python objects out, and the
few places pydantic 1 and 2 differ (Debian 12 ships pydantic 1.10; Yuxi-Know uses 2)."""

from __future__ import annotations

import json
from typing import Any, Dict, Iterator, Tuple


def is_model(value: Any) -> bool:
    """A pydantic model instance (1 or 2)."""
    return hasattr(value, "model_dump") or (hasattr(value, "dict") and hasattr(value, "__fields__"))


def plain(value: Any) -> Any:
    """A pydantic model as JSON-ready data (``model_dump(mode="json")``); anything else as
    it is."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "__fields__") and hasattr(value, "json"):
        return json.loads(value.json())
    return value


def _default(value: Any) -> Any:
    if is_model(value):
        return plain(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def to_json(value: Any) -> str:
    """Compact JSON text of a value: dict, list, str, numbers, bool, None, and pydantic
    models (nested too). Anything else, NaN and infinities (JSON has none) raise
    ``InvalidArgument``."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False,
                          default=_default)
    except (TypeError, ValueError, RecursionError) as e:
        from . import _native
        error = _native.InvalidArgument(f"not a JSON value: {e}")
        error.kind = "usage"
        raise error from None


def from_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


# --- pydantic 1 and 2 ------------------------------------------------------------------

class FieldInfo:
    """What the drop-in needs of a model field, whatever the pydantic version."""

    __slots__ = ("name", "description", "default", "type_name", "exclude", "required")

    def __init__(self, name: str, description: Any, default: Any, type_name: str,
                 exclude: bool, required: bool) -> None:
        self.name = name
        self.description = description
        self.default = default
        self.type_name = type_name
        self.exclude = exclude
        self.required = required


def _type_name(annotation: Any) -> str:
    return annotation.__name__ if hasattr(annotation, "__name__") else str(annotation)


def fields(model: type) -> Iterator[FieldInfo]:
    if hasattr(model, "model_fields"):  # pydantic 2
        for name, f in model.model_fields.items():
            required = f.is_required()
            default = None if required else f.get_default(call_default_factory=True)
            yield FieldInfo(name, f.description, default, _type_name(f.annotation),
                            bool(f.exclude), required)
        return
    for name, f in model.__fields__.items():  # pydantic 1
        required = bool(f.required)
        default = None if required else f.get_default()
        yield FieldInfo(name, f.field_info.description, default, _type_name(f.outer_type_),
                        bool(f.field_info.exclude), required)


def validate(model: type, data: Dict[str, Any]) -> Any:
    if hasattr(model, "model_validate"):
        return model.model_validate(data)
    return model.parse_obj(data)


def dump(instance: Any) -> Dict[str, Any]:
    """Every field, excluded ones too, as JSON-ready data."""
    if hasattr(instance, "model_dump"):
        return {name: plain_value(getattr(instance, name)) for name in type(instance).model_fields}
    return {name: plain_value(getattr(instance, name)) for name in type(instance).__fields__}


def plain_value(value: Any) -> Any:
    """A field's value as JSON-ready data (models inside dicts and lists too)."""
    return json.loads(to_json(value))


def json_schema(model: type) -> Dict[str, Any]:
    if hasattr(model, "model_json_schema"):
        return model.model_json_schema()
    return model.schema()


def validation_errors(error: Exception) -> Iterator[Tuple[Tuple[Any, ...], str]]:
    """(location, message) of each problem of a pydantic ValidationError."""
    for e in getattr(error, "errors", lambda: [])():
        yield tuple(e.get("loc", ())), str(e.get("msg", ""))
