"""Bytes to a JSON value, as leniently as JSON allows, and JSON values back to strict bytes
(pure Python, shared by the endpoint, the worker, the outbox and `harbour inspect`, so they
never disagree on what is JSON).

What comes out of `parse_json` can always be stored (SQLite and PostgreSQL text and JSON
columns) and written back as strict JSON:

- strings (values and keys) never hold a lone surrogate (a `\\ud800` escape without its pair:
  no UTF-8 encoding exists for it) nor NUL (PostgreSQL text and jsonb refuse it): each becomes
  U+FFFD, the replacement character;
- numbers are finite: `NaN`, `Infinity`, `-Infinity` (not JSON, yet the standard library reads
  them) and numbers beyond a double (`1e400`) are read as null.

Decision: such bodies are read, not refused. The project's stance is to read real payloads
leniently and never refuse what can be kept; the raw bytes are stored as they came anyway, and
no FHIR element can hold a non-finite number or a lone surrogate, so nothing readable is lost.
"""
import json
import math
import re

import orjson

_BOM = b"\xef\xbb\xbf"


def too_large(limit: int) -> str:
    """Why a body past the size limit is refused (the endpoint's 413, `harbour inspect`)."""
    return f"The body is larger than the limit of {limit} bytes."


def _has_nul_escape(raw: bytes) -> bool:
    """Whether the body holds the escape \\u0000, the only way NUL can be in valid JSON (both
    parsers refuse a raw NUL byte, and \\U is no JSON escape; the digits have no case).

    Speed (the fast path runs it on every body): backslashes are found with memchr (a quarter
    of a microsecond on the 16 kB real payload, which holds none) and each escape is looked at;
    searching the 6-byte escape itself takes about 10 µs there. Past a few dozen escapes the
    rest is searched whole (a false positive, e.g. an escaped backslash before "u0000", only
    costs the cleaning walk)."""
    i = raw.find(92)  # 92: the backslash
    for _ in range(32):
        if i < 0:
            return False
        if raw[i + 1:i + 6] == b"u0000":
            return True
        i = raw.find(92, i + 2)  # past the escaped character (an escaped backslash is not an escape)
    return i >= 0 and b"\\u0000" in raw[i:]


# Lone surrogates (the standard library pairs valid ones into one character) and NUL.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"
# orjson reads JSON nested up to this depth (its own limit); the standard library, used for
# what orjson refuses, up to what Python's recursion limit leaves (about 1,000 levels).
ORJSON_MAX_DEPTH = 1024


class NotJSON(Exception):
    """`message` is a plain English sentence for an OperationOutcome."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def parse_json(raw: bytes):
    """The JSON value of a body, or NotJSON saying what is wrong.

    orjson first (fast). What it refuses but is still JSON (a UTF-8 byte order mark, numbers
    beyond a double, lone surrogate escapes), or nearly (NaN, Infinity), is read by the
    standard library, so no body that is JSON gets a 400. Either way the value is made storable
    (see the module docstring); on orjson's path only when the body holds a NUL escape, the one
    thing orjson lets through.
    """
    if not isinstance(raw, bytes):
        raw = bytes(raw, "utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        error = exc
    else:
        return _storable(value) if _has_nul_escape(raw) else value
    return _parse_leniently(raw, error)


def _parse_leniently(raw: bytes, error: orjson.JSONDecodeError):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotJSON(f"The body is not valid UTF-8 (invalid byte at offset {exc.start}).") from None
    if not text.strip():
        raise NotJSON("The body is empty.")
    if raw.startswith(_BOM):
        text = text[1:]
        try:  # most often the byte order mark was all orjson refused
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            error = exc
        else:
            return _storable(value) if _has_nul_escape(raw) else value
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise NotJSON(_too_deep(text)) from None
    except ValueError as exc:
        # Python refuses to convert integers of more than 4,300 digits (a guard against slow parsing).
        if "digits" in str(exc) and not isinstance(exc, json.JSONDecodeError):
            raise NotJSON("The body holds a number longer than 4,300 digits, more than Harbour reads.") from None
    else:
        return _storable(value)
    raise NotJSON(f"The body is not valid JSON (line {error.lineno}, column {error.colno}).")


def _no_constant(name: str):
    """NaN, Infinity, -Infinity: no FHIR element can hold them; read as null."""
    return None


def _finite_float(text: str):
    number = float(text)
    return number if math.isfinite(number) else None  # 1e400 is inf to a double


def _too_deep(text: str) -> str:
    """The message for a body nested deeper than the parsers read, with its depth."""
    depth = deepest = 0
    for bracket in re.findall(r"[\[\]{}]", re.sub(r'"[^"\\]*(?:\\.[^"\\]*)*"', "", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    if deepest > ORJSON_MAX_DEPTH:
        return f"The body is nested deeper than {ORJSON_MAX_DEPTH:,} levels ({deepest:,}), more than Harbour reads."
    # Within orjson's limit, but orjson refused something else: the standard library reads less.
    return (f"The body is nested {deepest:,} levels deep; with what else it holds (e.g. a byte order mark, "
            f"NaN or a lone surrogate), Harbour reads it only up to about 900 levels.")


def _clean(text: str) -> str:
    return _UNSTORABLE.sub(REPLACEMENT, text) if _UNSTORABLE.search(text) else text


def _storable(value):
    """`value` with every string (values and keys) cleaned of lone surrogates and NUL.

    Iterative, not recursive: values nest as deep as the parsers read (1,024 levels), beyond
    Python's recursion limit."""
    if isinstance(value, str):
        return _clean(value)
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            for i, item in enumerate(node):
                if isinstance(item, str):
                    node[i] = _clean(item)
                elif isinstance(item, (list, dict)):
                    stack.append(item)
        elif isinstance(node, dict):
            if any(_UNSTORABLE.search(key) for key in node):
                items = [(_clean(k), v) for k, v in node.items()]
                node.clear()
                for k, v in items:
                    node.setdefault(k, v)  # two keys equal once cleaned: the first wins, as parsers do
            for key, item in node.items():
                if isinstance(item, str):
                    node[key] = _clean(item)
                elif isinstance(item, (list, dict)):
                    stack.append(item)
    return value


# --- Writing ------------------------------------------------------------------------------


class NotSerialisable(ValueError):
    """A value that has no strict JSON form (a lone surrogate, a type JSON does not have)."""


def dump_json(value) -> bytes:
    """Strict JSON (RFC 8259) UTF-8 bytes of `value`: the one serialisation of outbound bundles,
    for storage and for the HTTP body alike.

    orjson first (fast; it writes NaN and infinities as null). What it refuses but JSON can say,
    values nested deeper than its 254 levels or integers beyond 64 bits, is written by an
    iterative writer, at any depth. NotSerialisable for the rest (lone surrogates, non-JSON types).
    """
    try:
        return orjson.dumps(value)
    except TypeError:
        pass
    try:
        return "".join(_write(value)).encode("utf-8")
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise NotSerialisable(f"the value has no JSON form ({type(exc).__name__})") from None


def _write(value):
    """Yield the JSON text of `value` in pieces, with an explicit stack instead of recursion."""
    scalar = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, _Piece):
            yield node.text
        elif isinstance(node, dict):
            yield "{"
            stack.append(_Piece("}"))
            pieces = []
            for i, (key, item) in enumerate(node.items()):
                if not isinstance(key, str):
                    raise TypeError("keys must be strings")
                pieces.append(_Piece(("," if i else "") + scalar(key) + ":"))
                pieces.append(item)
            stack.extend(reversed(pieces))
        elif isinstance(node, (list, tuple)):
            yield "["
            stack.append(_Piece("]"))
            pieces = []
            for i, item in enumerate(node):
                if i:
                    pieces.append(_Piece(","))
                pieces.append(item)
            stack.extend(reversed(pieces))
        elif isinstance(node, float) and not math.isfinite(node):
            yield "null"  # as orjson writes it
        elif node is None or isinstance(node, (str, int, float)):
            yield scalar(node)
        else:
            raise TypeError(f"{type(node).__name__} is not JSON")


class _Piece:
    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


class StrictJSONEncoder(json.JSONEncoder):
    """For a Django JSONField: stores exactly what `dump_json` writes (strict JSON, any depth)."""

    def encode(self, o):
        return dump_json(o).decode("utf-8")


class LenientJSONDecoder(json.JSONDecoder):
    """For a Django JSONField: reads with `parse_json` (orjson reads 1,024 levels; the standard
    library, about 1,000 minus the caller's stack)."""

    def decode(self, s, _w=None):
        try:
            return parse_json(s.encode("utf-8", "surrogatepass") if isinstance(s, str) else s)
        except NotJSON as exc:
            raise json.JSONDecodeError(exc.message, s if isinstance(s, str) else "", 0) from None
