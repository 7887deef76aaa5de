"""parse_json reads what can be kept and hands back only values that can be stored and written back
as strict JSON; dump_json writes strict JSON at any depth the reader accepts."""
import json
import math

import orjson
import pytest

from harbour.fhir.parse import (
    LenientJSONDecoder, NotJSON, NotSerialisable, StrictJSONEncoder, dump_json, parse_json,
)

BOM = b"\xef\xbb\xbf"


def strings(value):
    """Every string (keys and values) in a JSON value, iteratively (values may nest 1,000 deep)."""
    stack, out = [value], []
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, dict):
            out.extend(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return out


def storable(value) -> bool:
    """What SQLite and PostgreSQL can keep: every string encodes to UTF-8 and holds no NUL."""
    for text in strings(value):
        text.encode("utf-8")  # raises on a lone surrogate
        if "\x00" in text:
            return False
    return True


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400", b"1E+999"])
def test_non_finite_numbers_are_read_as_null(literal):
    value = parse_json(b'{"valueDecimal": ' + literal + b', "n": 1.5}')
    assert value == {"valueDecimal": None, "n": 1.5}
    assert json.loads(dump_json(value)) == value  # strict JSON again


def test_non_finite_numbers_after_a_byte_order_mark():
    assert parse_json(BOM + b'[NaN, 2.5, 1e-400]') == [None, 2.5, 0.0]


@pytest.mark.parametrize("body, expected", [
    (b'["\\ud800"]', ["\ufffd"]),
    (b'["a\\udfffb", "\\ud83d\\ude00"]', ["a\ufffdb", "\U0001f600"]),  # a valid pair stays one character
    (b'{"\\ud800": "x", "k": ["\\udc00"]}', {"\ufffd": "x", "k": ["\ufffd"]}),
    (b'{"family": "a\\u0000b"}', {"family": "a\ufffdb"}),  # orjson reads it: the fast path cleans too
    (b'{"a\\u0000": [{"b": "\\u0000"}]}', {"a\ufffd": [{"b": "\ufffd"}]}),
    (BOM + b'{"a": "\\u0000\\ud800"}', {"a": "\ufffd\ufffd"}),
    (b'["a\\\\u0000"]', ["a\\u0000"]),  # an escaped backslash then "u0000": no NUL, nothing changes
    (b'["\\\\\\u0000"]', ["\\\ufffd"]),  # an escaped backslash, then the escape
    (b'["' + b"\\n" * 40 + b'x\\u0000"]', ["\n" * 40 + "x\ufffd"]),  # past the escapes looked at one by one
])
def test_strings_come_out_storable(body, expected):
    value = parse_json(body)
    assert value == expected
    assert storable(value)
    assert orjson.loads(orjson.dumps(value)) == value


def test_keys_equal_once_cleaned_keep_the_first():
    assert parse_json(b'{"\\ud800": 1, "\\udbff": 2, "x": 3}') == {"\ufffd": 1, "x": 3}


def test_cleaning_reaches_the_deepest_levels():
    body = b'{"a": ' + b"[" * 900 + b'"\\ud800"' + b"]" * 900 + b"}"
    value = parse_json(body)
    assert storable(value)
    body = b'{"a": ' + b"[" * 1000 + b'"\\u0000"' + b"]" * 1000 + b"}"  # orjson's path, past Python's recursion limit
    assert storable(parse_json(body))


def test_what_orjson_reads_is_returned_as_is():
    body = b'{"a": [1, 2.5, "text", null, true], "b": {"c": "\\u00e9\\n"}}'
    assert parse_json(body) == orjson.loads(body)
    assert parse_json(bytearray(body)) == parse_json(memoryview(body)) == orjson.loads(body)


def test_depth_orjson_reads():
    value = parse_json(nested(1024))
    depth = 0
    while value:
        value, depth = value[0], depth + 1
    assert depth == 1023  # the innermost [] is empty


@pytest.mark.parametrize("body", [nested(1025), nested(5000), b'{"s": "[[[[", "a": ' + nested(1100) + b"}"])
def test_deeper_than_the_reader_reads_says_so(body):
    with pytest.raises(NotJSON) as caught:
        parse_json(body)
    assert "nested deeper than 1,024 levels" in caught.value.message
    assert "line" not in caught.value.message


def test_deep_body_only_the_lenient_reader_can_try_says_so():
    with pytest.raises(NotJSON) as caught:
        parse_json(b"[NaN, " + nested(1000) + b"]")
    assert "nested 1,001 levels deep" in caught.value.message and "not valid JSON" not in caught.value.message


def test_integer_longer_than_python_converts_says_so():
    with pytest.raises(NotJSON) as caught:
        parse_json(b'{"a": NaN, "n": ' + b"7" * 5000 + b"}")  # NaN sends it to the standard library
    assert caught.value.message == "The body holds a number longer than 4,300 digits, more than Harbour reads."


@pytest.mark.parametrize("body, message", [
    (b"", "The body is empty."),
    (b"  \n", "The body is empty."),
    (b'{"a": 1,}', "The body is not valid JSON (line 1, column 8)."),  # orjson's position
    (b'["\xff"]', "The body is not valid UTF-8 (invalid byte at offset 2)."),
    (b'["a\x00b"]', None),  # a raw NUL byte is no JSON
    (b'["\\U0000"]', None),
])
def test_what_is_not_json(body, message):
    with pytest.raises(NotJSON) as caught:
        parse_json(body)
    if message:
        assert caught.value.message == message


# --- dump_json ---------------------------------------------------------------------------------


def deep_list(depth):
    value = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [10, 254, 255, 300, 1030, 3000])
def test_dump_json_writes_any_depth(depth):
    value = {"resourceType": "Patient", "extension": [{"url": "x", "valueX": deep_list(depth)}]}
    written = dump_json(value)
    if depth >= 255:
        with pytest.raises(TypeError):
            orjson.dumps(value)  # what the writer handles that orjson refuses
    assert written.startswith(b'{"resourceType":"Patient","extension":[{"url":"x","valueX":[[')
    assert written.count(b"[") == written.count(b"]") == depth + 1
    if depth <= 900:
        assert json.loads(written) == value


def test_dump_json_matches_orjson_where_both_write():
    value = {"a": [1, -2.5, "é\u2028\"\\", None, True, False, {"b": {}}], "c": [], "d": 0.1}
    deep = {"x": deep_list(300), **value}
    assert dump_json(value) == orjson.dumps(value)
    assert json.loads(dump_json(deep)) == deep  # the iterative writer
    assert dump_json(deep).endswith(orjson.dumps(value)[1:])  # the same bytes for the same values


def test_dump_json_is_strict():
    value = {"nan": math.nan, "inf": [math.inf, -math.inf], "big": 10 ** 30, "deep": deep_list(300)}
    written = dump_json(value)
    assert b"NaN" not in written and b"Infinity" not in written
    parsed = json.loads(written, parse_constant=lambda c: pytest.fail(f"{c} written"))
    assert parsed["nan"] is None and parsed["inf"] == [None, None] and parsed["big"] == 10 ** 30


@pytest.mark.parametrize("value", [["\ud800"], {"\udc00": 1}, {"deep": deep_list(300), "s": "\ud800"}, [object()],
                                   {1: "x", "deep": deep_list(300)}])
def test_dump_json_refuses_what_has_no_json_form(value):
    with pytest.raises(NotSerialisable):
        dump_json(value)


def test_field_encoder_and_decoder_round_trip():
    value = {"a": deep_list(1000), "n": math.nan}
    text = json.dumps(value, cls=StrictJSONEncoder)
    assert "NaN" not in text
    back = json.loads(text, cls=LenientJSONDecoder)  # orjson reads 1,000 levels; the standard library would not
    assert back["n"] is None and dump_json(back["a"]) == dump_json(value["a"])
    with pytest.raises(json.JSONDecodeError):
        json.loads("[1,", cls=LenientJSONDecoder)
