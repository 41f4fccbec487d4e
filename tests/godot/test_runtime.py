"""Tests of the Godot runtime (compiler/templates/godot/contractc_runtime.gd), run in the GDScript
interpreter against Python references: numbers written and read as JavaScript does (shortest
round trip, correctly rounded), decimals, dates and timestamps, JSON quoting and parsing, paths,
checks and uuids. Prints `ok - ...`/`FAIL - ...`, ends with `godot runtime: N passed, M failed`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import struct
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import gdscript as gd  # noqa: E402

RUNTIME = HERE.parents[1] / "compiler/templates/godot/contractc_runtime.gd"
it = gd.Interpreter()
rt = it.load(RUNTIME)
Numbers = it.get(rt, "Numbers")
Clock = it.get(rt, "Clock")
Checker = it.get(rt, "Checker")
Decoder = it.get(rt, "Decoder")
rng = random.Random(25)
passed = 0
failed = 0


def test(name: str, body) -> None:
    global passed, failed
    import time
    started = time.monotonic()
    try:
        body()
    except AssertionError as error:
        failed += 1
        print(f"FAIL - {name}: {error}")
        return
    except Exception as error:  # noqa: BLE001
        failed += 1
        print(f"FAIL - {name}: {type(error).__name__}: {error}")
        return
    passed += 1
    print(f"ok - {name} ({time.monotonic() - started:.1f} s)")


def call(cls, name, *args):
    return gd.to_python(it.call_static(cls, name, *[gd.from_python(a) for a in args]))


# ----- numbers ------------------------------------------------------------------------------------


def js_number(x: float) -> str:
    """JavaScript's Number::toString: Python's repr has the same shortest digits, formatted apart."""
    if x == 0:
        return "0"
    if math.isnan(x) or math.isinf(x):
        return "null"
    sign = "-" if x < 0 else ""
    mantissa, _, exp = repr(abs(x)).partition("e")
    digits = mantissa.replace(".", "")
    point = (mantissa.index(".") if "." in mantissa else len(mantissa)) + (int(exp) if exp else 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0") or "0"
    k = len(digits)
    if k <= point <= 21:
        out = digits + "0" * (point - k)
    elif 0 < point <= 21:
        out = digits[:point] + "." + digits[point:]
    elif -6 < point <= 0:
        out = "0." + "0" * -point + digits
    else:
        e = point - 1
        out = digits[0] + ("." + digits[1:] if k > 1 else "") + ("e+" if e >= 0 else "e-") + str(abs(e))
    return sign + out


def random_double() -> float:
    while True:
        x = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        if math.isfinite(x):
            return x


SPECIAL = [0.1, 0.2, 0.3, 1.5, 2.5, -1.5, 100.0, 1e21, 1e20, 123456789012345680000.0, 1e-7, 1.5e-7, 1e-6,
           5e-324, 2.2250738585072014e-308, 2.225073858507201e-308, 1.7976931348623157e308, 2.0**53,
           2.0**53 + 2, 9007199254740993.0, 0.000001, 3.4028234663852886e38, 1 / 3, 2 / 3, math.pi, 1e23,
           4.35, 0.3 - 0.1, 123.456, -0.0, 8.41e21, 5e-7, 1e100]


def numbers_written() -> None:
    samples = SPECIAL + [random_double() for _ in range(15)] + [rng.uniform(-1e6, 1e6) for _ in range(40)] \
        + [round(rng.uniform(-100, 100), rng.randint(0, 6)) for _ in range(40)]
    for x in samples:
        got = call(rt, "write_number", x)
        want = js_number(x)
        assert got == want, f"write_number({x!r}) = {got!r}, JavaScript writes {want!r}"
        assert x == 0 or float(got) == x, f"{got!r} does not read back as {x!r}"


test("write_number writes the shortest text that reads back, as JavaScript (125 doubles)", numbers_written)


def nearest_double_corrects() -> None:
    texts = ["0.1", "1.5", "9007199254740993", "2.2250738585072011e-308", "1.7976931348623157e308",
             "4.9406564584124654e-324", "0.30000000000000004", "1e23", "8.41e21", "123456.789e-3"]
    texts += [repr(random_double()) for _ in range(4)]
    texts += ["%.25e" % rng.uniform(-1e6, 1e6) for _ in range(6)]  # long digit strings: halfway cases nearby
    for text in texts:
        want = float(text)
        if want == 0 or math.isinf(want):
            continue
        if want == 1.7976931348623157e308:
            assert call(Numbers, "nearest_double", text, math.inf) == want, "the largest double read as inf"
        for skew in (-2, 1):
            guess = want
            for _ in range(abs(skew)):
                guess = math.nextafter(guess, math.inf if skew > 0 else -math.inf)
            got = call(Numbers, "nearest_double", text, guess)
            assert got == want, f"nearest_double({text!r}, {guess!r}) = {got!r}, want {want!r}"


test("a JSON number reads as the nearest double even when Godot's own reading is a few ulps off",
     nearest_double_corrects)


def halfway() -> None:
    # Exactly halfway between two doubles: round half to even, both ways.
    for text in ["9007199254740993", "9007199254740995", "1.00000000000000011102230246251565404236316680908203125"]:
        want = float(text)
        for guess in (math.nextafter(want, -math.inf), math.nextafter(want, math.inf)):
            got = call(Numbers, "nearest_double", text, guess)
            assert got == want, f"{text}: got {got!r}, want {want!r}"


test("halfway decimals round to the even double", halfway)


def decimal_reference(text: str, precision: int, scale: int) -> str:
    import re
    if not re.fullmatch(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?", text):
        return "syntax"
    try:
        value = Decimal(text)
    except InvalidOperation:
        return "syntax"
    scaled = value.scaleb(scale)
    if scaled != scaled.to_integral_value():
        return "too_precise"
    unscaled = int(scaled)
    if len(str(abs(unscaled))) > precision and unscaled != 0:
        return "too_large"
    return str(unscaled)


def decimals() -> None:
    cases = ["1.00", "-1.0", "100000000.99", "99999999.99", "0", "-0.00", "1e2", "1.5e-1", "1.555", "12a",
             "", "-", "1.", ".5", "1e", "00012.50", "1E+3", "-12.345e1", "0.001", "5e-3", "123456789.5"]
    cases += [f"{rng.randint(-10**12, 10**12)}.{rng.randint(0, 999):03d}" for _ in range(30)]
    for text in cases:
        for precision, scale in ((10, 2), (38, 0), (5, 3), (38, 10)):
            got = call(Numbers, "parse_decimal", text, precision, scale)
            want = decimal_reference(text, precision, scale)
            assert got == want, f"parse_decimal({text!r}, {precision}, {scale}) = {got!r}, want {want!r}"
    ordered = ["-100", "-99", "-1", "0", "1", "9", "10", "99999999999999999999999999999999999999"]
    for a in ordered:
        for b in ordered:
            want = (int(a) > int(b)) - (int(a) < int(b))
            assert call(rt, "compare_decimal", a, b) == want, (a, b)


test("decimals: parse_decimal against Python's Decimal; compare_decimal orders signed digits", decimals)


# ----- dates and timestamps ----------------------------------------------------------------------

EPOCH = dt.datetime(1970, 1, 1)


def micros_of(t: dt.datetime) -> int:
    delta = t - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


FORMAT = [{"literal": ""}, "%d", {"literal": "/"}, "%m", {"literal": "/"}, "%Y", {"literal": " "}, "%H",
          {"literal": ":"}, "%M", {"literal": ":"}, "%S", "%.f"]


def timestamps() -> None:
    for _ in range(200):
        t = dt.datetime(1, 1, 1) + dt.timedelta(microseconds=rng.randint(0, 315_537_897_599_999_999))
        if rng.random() < 0.5:
            t = t.replace(microsecond=t.microsecond // 1000 * 1000)
        if rng.random() < 0.3:
            t = t.replace(microsecond=0)
        m = micros_of(t)
        text = call(rt, "format_timestamp", m, FORMAT)
        want = t.strftime("%d/%m/") + f"{t.year:04d}" + t.strftime(" %H:%M:%S")
        if t.microsecond:
            want += "." + (f"{t.microsecond // 1000:03d}" if t.microsecond % 1000 == 0 else f"{t.microsecond:06d}")
        assert text == want, f"format {t}: {text!r}, want {want!r}"
        assert call(rt, "parse_timestamp", text, FORMAT) == m, f"parse {text!r}"
        iso = gd.to_python(it.call_static(rt, "write_timestamptz", m))
        iso_want = f'"{t.year:04d}-{t:%m-%dT%H:%M:%S}.' + (
            f"{t.microsecond // 1000:03d}" if t.microsecond % 1000 == 0 else f"{t.microsecond:06d}") + 'Z"'
        assert iso == iso_want, f"{iso} != {iso_want}"
        assert call(rt, "parse_rfc3339", json.loads(iso)) == m
        day = t.date()
        assert call(Clock, "days_from_civil", day.year, day.month, day.day) == (day - EPOCH.date()).days
        assert call(Clock, "civil_from_days", (day - EPOCH.date()).days) == [day.year, day.month, day.day]


test("timestamps: format, parse, RFC 3339 and days against Python's datetime (years 1 to 9999)", timestamps)


def strict_rules() -> None:
    good = {"2024-02-29T00:00:00Z": micros_of(dt.datetime(2024, 2, 29)),
            "2024-02-22T10:56:00+01:30": micros_of(dt.datetime(2024, 2, 22, 9, 26)),
            "2024-02-22 10:56:00.1234567-00:00": micros_of(dt.datetime(2024, 2, 22, 10, 56, 0, 123456)),
            "0000-01-01t00:00:00z": -62167219200000000}
    for text, want in good.items():
        assert call(rt, "parse_rfc3339", text) == want, text
    for text in ["2023-02-29T00:00:00Z", "2024-02-22T24:00:00Z", "2024-02-22T10:60:00Z", "2024-02-22T10:56:60Z",
                 "2024-13-01T00:00:00Z", "2024-02-22T10:56:00", "2024-02-22T10:56:00.Z",
                 "2024-02-22T10:56:00.1234567890Z", "2024-2-22T10:56:00Z", "2024-02-22X10:56:00Z",
                 "2024-02-22T10:56:00+24:00", "2024-02-22T10:56:00+0100"]:
        assert call(rt, "parse_rfc3339", text) is None, text
    assert call(Clock, "parse_date", "2024-02-30") is None
    assert call(Clock, "parse_date", "1969-12-31") == -1
    cx = it.new(Checker)
    assert call(rt, "check_date", cx, "day", "2024-02-22") == 19775
    assert gd.to_python(it.call_static(rt, "date_micros", cx, "t", -62167219200000001)) is None
    assert gd.to_python(it.call_static(rt, "date_micros", cx, "t", 253402300799999999)) == 253402300799999999
    codes = [(v["code"], v["path"], v["message"]) for v in gd.to_python(it.get(cx, "violations"))]
    assert codes == [("invalid_format", "$.t", "not a valid time (years 0000 to 9999)")], codes


test("timestamps and dates: the server's strict rules (real days, no 24:00 or second 60, offsets)", strict_rules)


# ----- JSON ---------------------------------------------------------------------------------------------


def quoting() -> None:
    for text in ["plain", 'quote " backslash \\ slash /', "tab\t nl\n cr\r bs\b ff\f", "\x00\x1f\x7f",
                 "é 🐢 日本語", "\u2028\u2029", "".join(chr(rng.randint(0, 0xD7FF)) for _ in range(200))]:
        got = call(rt, "write_string", text)
        assert got == json.dumps(text, ensure_ascii=False), (text, got)
        d = it.new(Decoder)
        assert gd.to_python(it.call(it.get(d, "parse"), got)) == text


test("strings are quoted as JSON.stringify quotes them, and read back", quoting)


def parsing() -> None:
    def parse(text):
        d = it.new(Decoder)
        value = it.call(it.get(d, "parse"), text)
        return value, it.get(d, "error")

    value, error = parse('{"a": [1, -2.5e3, true, null, "\\ud83d\\udc22\\u00e9"], "b": {}}')
    assert error == "", error
    a = value.get("a")
    assert [it.get(a[0], "text"), it.get(a[1], "text"), a[2], a[3], a[4]] == ["1", "-2.5e3", True, None, "🐢é"]
    for bad, fragment in [("01", "invalid JSON"), ("1.", "expected a digit"), ("[1,]", "expected a value"),
                          ('{"a":1,"a":2}', 'duplicate key "a"'), ('"\\x"', "bad string"), ('"a\nb"', "bad string"),
                          ("[" * 200 + "]" * 200, "nested too deeply"), ("{} x", "trailing characters"),
                          ("nul", "expected a value"), ("", "expected a value")]:
        _, error = parse(bad)
        assert fragment in error, f"{bad[:20]!r}: {error!r}"


test("the JSON parser: exact numbers, escapes and surrogate pairs, errors", parsing)


def integers() -> None:
    def read(text, reader="integer"):
        d = it.new(Decoder)
        number = it.call(it.get(d, "parse"), text)
        return gd.to_python(it.call(it.get(d, reader), number)), it.get(d, "error")

    assert read("9223372036854775807") == (9223372036854775807, "")
    assert read("-9223372036854775808") == (-9223372036854775808, "")
    assert read("9223372036854775808") == (9.223372036854776e18, ""), read("9223372036854775808")
    assert read("1e+20") == (1e20, "")
    assert read("2.0") == (2, "")
    assert read("1.5")[1] == "expected integer, found number"
    assert read('"1"', "long")[1] == "expected number, found string"
    cx = it.new(Checker)
    assert gd.to_python(it.call_static(rt, "check_integer", cx, "i", 1e20, -2**31, 2**31 - 1, "an int")) is None
    assert gd.to_python(it.call_static(rt, "check_integer", cx, "l", 9.223372036854776e18, -2**63, 2**63 - 1,
                                       "a long")) is None
    assert gd.to_python(it.call_static(rt, "check_integer", cx, "x", 2.5, 0, 9, "an int")) is None
    assert gd.to_python(it.call_static(rt, "check_integer", cx, "y", 3.0, 0, 9, "an int")) == 3
    assert gd.to_python(it.call_static(rt, "check_number", cx, "f", 3.5e38, True)) is None
    assert gd.to_python(it.call_static(rt, "check_number", cx, "f", 0.1, True)) == 0.10000000149011612
    assert gd.to_python(it.call_static(rt, "check_number", cx, "d", math.inf, False)) is None
    got = [(v["code"], v["path"], v["message"]) for v in gd.to_python(it.get(cx, "violations"))]
    assert got == [
        ("out_of_range", "$.i", "does not fit an int (-2147483648..=2147483647)"),
        ("out_of_range", "$.l", "does not fit a long (-9223372036854775808..=9223372036854775807)"),
        ("wrong_type", "$.x", "expected integer, found number"),
        ("out_of_range", "$.f", "does not fit a float"),
        ("wrong_type", "$.d", "expected number, found a non-finite value"),
    ], got


test("longs keep 64 bits; beyond, a float the checks call out of range (the TypeScript messages)", integers)


def paths() -> None:
    def push_key(path: str, key: str) -> str:  # the TypeScript runtime's pushKey
        import re
        if re.fullmatch(r"[A-Za-z0-9_]+", key):
            return f"{path}.{key}"
        quoted = "".join('\\"' if c == '"' else "\\\\" if c == "\\" else f"\\u{ord(c):04x}" if ord(c) < 0x20 else c
                         for c in key)
        return f'{path}["{quoted}"]'

    cx = it.new(Checker)
    keys = ["players", 'a "b"', "back\\slash", "tab\there", "ünï", "", "x_1"]
    want = "$"
    for key in keys:
        it.call(it.get(cx, "enter_key"), key)
        want = push_key(want, key)
    it.call(it.get(cx, "enter_index"), 2)
    want += "[2]"
    it.call(it.get(cx, "report"), "max", "skill", "reject", "m")
    it.call(it.get(cx, "report"), "min", None, "warn", "m")
    it.call(it.get(cx, "leave"))
    it.call(it.get(cx, "report"), "x", "s k", "quarantine", "m")
    got = [v["path"] for v in gd.to_python(it.get(cx, "violations"))]
    assert got == [want + ".skill", want, want[:-3] + '["s k"]'], got
    assert gd.to_python(it.call_static(rt, "verdict_of", it.get(cx, "violations"))) == "reject"


test("Checker paths as the server builds them ($.a[2][\"a b\"].c), verdict_of", paths)


def uuids() -> None:
    import re
    ids = [call(rt, "uuidv7") for _ in range(20)]
    for u in ids:
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", u), u
        ms = int(u.replace("-", "")[:12], 16)
        assert abs(ms - it.clock() * 1000) < 5000, (u, ms)
    assert len(set(ids)) == 20
    cx = it.new(Checker)
    assert call(rt, "check_uuid", cx, "u", "123E4567-e89b-12d3-a456-426614174000") is True
    for bad in ["123e4567-e89b-12d3-a456-42661417400Z", "123e4567e89b12d3a456426614174000", ""]:
        assert call(rt, "check_uuid", cx, "u", bad) is False


test("uuidv7: version 7, RFC 9562 variant, the current time in its first 48 bits; check_uuid", uuids)


def patterns() -> None:
    for source, text, want in [("[a-z]+(-[a-z]+)*", "abc-def", True), ("[a-z]+(-[a-z]+)*", "a\n", False),
                               ("[0-9A-Za-z_-]{1,64}", "x" * 65, False), ("a|b", "ab", False), ("a|b", "b", True)]:
        regex = it.call_static(rt, "pattern", source)
        assert call(rt, "full_match", regex, text) is want, (source, text)


test("pattern and full_match: whole-text matches, no match before a final newline", patterns)

print(f"godot runtime: {passed} passed, {failed} failed")
sys.exit(0 if failed == 0 else 1)
