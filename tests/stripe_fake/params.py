"""Form decoding (stripe-python's `a[b][0][c]=v` encoding) and strict, schema-driven parameter validation.

The schemas say, per endpoint, which parameters exist in the real API and which of them the fake
implements. An unknown name anywhere is `parameter_unknown`; a real parameter the fake does not
implement is a 400 that says so (never silently ignored).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.stripe_fake.errors import ParamError

type Raw = str | dict[str, Raw]

_KEY_RE = re.compile(r"^([^\[\]]+)((?:\[[^\]]*\])*)(.*)$", re.DOTALL)
_SEG_RE = re.compile(r"\[([^\]]*)\]")
_INT_RE = re.compile(r"^-?[0-9]+$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

METADATA_MAX_KEYS = 50
METADATA_MAX_KEY_LENGTH = 40
METADATA_MAX_VALUE_LENGTH = 500


def split_key(key: str) -> list[str]:
    """`line_items[0][price]` -> ["line_items", "0", "price"]; `expand[]` -> ["expand", ""]."""
    match = _KEY_RE.match(key)
    if match is None:
        return [key]
    name, brackets, rest = match.groups()
    segments = [name, *_SEG_RE.findall(brackets)]
    if rest:
        # A key with stray brackets (e.g. metadata key "a]b" sent as "metadata[a]b]"): keep it whole
        # in the last segment so that validation sees the brackets and rejects them.
        tail = rest[:-1] if rest.endswith("]") else rest
        if len(segments) > 1:
            segments[-1] = f"{segments[-1]}]{tail}"
        else:
            segments[0] = f"{segments[0]}{rest}"
    return segments


def decode_form(data: str) -> dict[str, Raw]:
    """Decode a form-encoded body or query string into nested dicts (arrays stay dicts keyed "0", "1"...)."""
    root: dict[str, Raw] = {}
    for key, value in parse_qsl(data, keep_blank_values=True):
        segments = split_key(key)
        container = root
        for depth, segment in enumerate(segments):
            seg = str(len(container)) if segment == "" and depth > 0 else segment
            last = depth == len(segments) - 1
            existing = container.get(seg)
            if last:
                if isinstance(existing, dict):
                    raise ParamError(f"Invalid value for {key}: it is given both as a value and as a hash.", param=key)
                container[seg] = value
            else:
                if existing is None:
                    child: dict[str, Raw] = {}
                    container[seg] = child
                    container = child
                elif isinstance(existing, dict):
                    container = existing
                else:
                    raise ParamError(f"Invalid value for {key}: it is given both as a value and as a hash.", param=key)
    return root


def join(path: str, name: str) -> str:
    return f"{path}[{name}]" if path else name


# ----------------------------------------------------------------------------------------------
# Schema nodes
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Str:
    max_length: int | None = 5000
    enum: tuple[str, ...] | None = None
    emptyable: bool = False
    url: bool = False
    email: bool = False


@dataclass(frozen=True)
class Int:
    minimum: int | None = None
    maximum: int | None = None
    emptyable: bool = False
    # String literals accepted besides integers (e.g. cancel_at=max_period_end).
    literals: tuple[str, ...] = ()


@dataclass(frozen=True)
class Bool:
    pass


@dataclass(frozen=True)
class Obj:
    fields: dict[str, Node] = field(default_factory=dict)
    required: frozenset[str] = frozenset()
    emptyable: bool = False


@dataclass(frozen=True)
class Arr:
    item: Node
    max_items: int | None = None
    emptyable: bool = False


@dataclass(frozen=True)
class Metadata:
    """Stripe metadata: "" clears all keys, metadata[k]="" unsets one key."""


@dataclass(frozen=True)
class Unsupported:
    """A parameter of the real API that the fake does not implement."""

    reason: str = ""


type Node = Str | Int | Bool | Obj | Arr | Metadata | Unsupported

EXPAND = Arr(Str(), max_items=None)


def unsupported(*names: str) -> dict[str, Node]:
    return dict.fromkeys(names, Unsupported())


# ----------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------


def _describe(raw: Raw) -> str:
    return raw if isinstance(raw, str) else "a hash"


def _empty_error(path: str) -> ParamError:
    return ParamError(
        f"You passed an empty string for '{path}'. We assume empty values are an attempt to unset a parameter; "
        f"however '{path}' cannot be unset. You should remove '{path}' from your request or supply a non-empty value.",
        param=path,
        code="parameter_invalid_empty",
    )


def _one_of(values: tuple[str, ...]) -> str:
    if len(values) == 1:
        return values[0]
    return ", ".join(values[:-1]) + f", or {values[-1]}"


def validate(node: Node, raw: Raw, path: str) -> Any:
    """Check `raw` against `node` and convert it (ints, bools, lists); raise ParamError like Stripe."""
    match node:
        case Unsupported(reason=reason):
            detail = f" ({reason})" if reason else ""
            raise ParamError(
                f"The Stripe fake does not implement the parameter {path}{detail}; it exists in the real API. "
                "Extend tests/stripe_fake if you need it.",
                param=path,
                code="parameter_unsupported_by_fake",
            )
        case Str():
            return _validate_str(node, raw, path)
        case Int():
            return _validate_int(node, raw, path)
        case Bool():
            if not isinstance(raw, str):
                raise ParamError(f"Invalid boolean: {_describe(raw)}", param=path)
            if raw == "":
                raise _empty_error(path)
            if raw not in ("true", "false"):
                raise ParamError(f"Invalid boolean: {raw}", param=path)
            return raw == "true"
        case Obj():
            return _validate_obj(node, raw, path)
        case Arr():
            return _validate_arr(node, raw, path)
        case Metadata():
            return validate_metadata(raw, path)


def _validate_str(node: Str, raw: Raw, path: str) -> str | None:
    if not isinstance(raw, str):
        raise ParamError(f"Invalid string: {path} must be a string, not a hash", param=path)
    if raw == "":
        if node.emptyable:
            return None
        raise _empty_error(path)
    if node.enum is not None and raw not in node.enum:
        raise ParamError(f"Invalid {path}: must be one of {_one_of(node.enum)}", param=path)
    if node.max_length is not None and len(raw) > node.max_length:
        raise ParamError(
            f"Invalid string: {raw[:20]}...; must be at most {node.max_length} characters",
            param=path,
            code="string_length_exceeds_maximum",
        )
    if node.url:
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ParamError("Not a valid URL", param=path, code="url_invalid")
    if node.email and not _EMAIL_RE.match(raw):
        raise ParamError(f"Invalid email address: {raw}", param=path, code="email_invalid")
    return raw


def _validate_int(node: Int, raw: Raw, path: str) -> int | str | None:
    if not isinstance(raw, str):
        raise ParamError(f"Invalid integer: {_describe(raw)}", param=path, code="parameter_invalid_integer")
    if raw == "":
        if node.emptyable:
            return None
        raise _empty_error(path)
    if raw in node.literals:
        return raw
    if not _INT_RE.match(raw):
        raise ParamError(f"Invalid integer: {raw}", param=path, code="parameter_invalid_integer")
    value = int(raw)
    if node.minimum is not None and value < node.minimum:
        raise ParamError(
            f"Invalid integer: {path} must be greater than or equal to {node.minimum}",
            param=path,
            code="parameter_invalid_integer",
        )
    if node.maximum is not None and value > node.maximum:
        raise ParamError(
            f"Invalid integer: {path} must be less than or equal to {node.maximum}",
            param=path,
            code="parameter_invalid_integer",
        )
    return value


def _validate_obj(node: Obj, raw: Raw, path: str) -> dict[str, Any] | None:
    if isinstance(raw, str):
        if raw == "" and node.emptyable:
            return None
        if raw == "":
            raise _empty_error(path)
        raise ParamError("Invalid hash", param=path)
    for name in raw:
        if name not in node.fields:
            unknown = join(path, name)
            raise ParamError(f"Received unknown parameter: {unknown}", param=unknown, code="parameter_unknown")
    result: dict[str, Any] = {}
    for name, value in raw.items():
        result[name] = validate(node.fields[name], value, join(path, name))
    for name in sorted(node.required):
        if name not in raw:
            missing = join(path, name)
            raise ParamError(f"Missing required param: {missing}.", param=missing, code="parameter_missing")
    return result


def _validate_arr(node: Arr, raw: Raw, path: str) -> list[Any] | None:
    if isinstance(raw, str):
        if raw == "" and node.emptyable:
            return None
        if raw == "":
            raise _empty_error(path)
        raise ParamError("Invalid array", param=path)
    if not all(_INT_RE.match(key) and int(key) >= 0 for key in raw):
        raise ParamError("Invalid array", param=path)
    indexed = sorted(raw.items(), key=lambda kv: int(kv[0]))
    if node.max_items is not None and len(indexed) > node.max_items:
        raise ParamError(f"Invalid array: {path} can have at most {node.max_items} elements", param=path)
    return [validate(node.item, value, f"{path}[{index}]") for index, (_, value) in enumerate(indexed)]


def validate_metadata(raw: Raw, path: str) -> dict[str, str] | None:
    """None means "clear all metadata"; a "" value means "unset this key"."""
    if isinstance(raw, str):
        if raw == "":
            return None
        raise ParamError("Invalid hash", param=path)
    if len(raw) > METADATA_MAX_KEYS:
        raise ParamError(f"Invalid metadata: metadata can have a maximum of {METADATA_MAX_KEYS} key-value pairs.", param=path)
    result: dict[str, str] = {}
    for key, value in raw.items():
        key_path = join(path, key)
        if not isinstance(value, str):
            raise ParamError("Invalid metadata: metadata values must be strings, not hashes.", param=key_path)
        if "[" in key or "]" in key:
            raise ParamError("Invalid metadata: metadata keys cannot contain '[' or ']'.", param=path)
        if key == "":
            raise ParamError("Invalid metadata: metadata keys cannot be empty.", param=path)
        if len(key) > METADATA_MAX_KEY_LENGTH:
            raise ParamError(f"Invalid metadata: keys can be a maximum of {METADATA_MAX_KEY_LENGTH} characters.", param=key_path)
        if len(value) > METADATA_MAX_VALUE_LENGTH:
            raise ParamError(
                f"Invalid metadata: values can be a maximum of {METADATA_MAX_VALUE_LENGTH} characters.", param=key_path
            )
        result[key] = value
    return result


def apply_metadata(current: dict[str, str], update: dict[str, str] | None, path: str = "metadata") -> dict[str, str]:
    """The metadata after an update (None clears, "" unsets a key); at most 50 keys in the result."""
    if update is None:
        return {}
    merged = dict(current)
    for key, value in update.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    if len(merged) > METADATA_MAX_KEYS:
        raise ParamError(f"Invalid metadata: metadata can have a maximum of {METADATA_MAX_KEYS} key-value pairs.", param=path)
    return merged


def validate_params(schema: Obj, raw: dict[str, Raw]) -> dict[str, Any]:
    result = _validate_obj(schema, raw, "")
    assert result is not None
    return result
