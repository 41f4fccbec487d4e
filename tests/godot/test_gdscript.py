"""Tests of the GDScript interpreter itself (tests/godot/gdscript.py): GDScript's semantics where they
differ from Python's, Godot's errors, refusals of what it does not execute, and that the agreement
check fails on a module that disagrees. Prints `ok - ...`/`FAIL - ...`, ends with
`gdscript interpreter: N passed, M failed`.
"""

from __future__ import annotations

import io
import json
import math
import shutil
import sys
import tempfile
import textwrap
from contextlib import redirect_stdout
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import agreement  # noqa: E402
import gdscript as gd  # noqa: E402

WORK = Path(tempfile.mkdtemp(prefix="gdscript-tests-"))
passed = 0
failed = 0


def test(name: str, body) -> None:
    global passed, failed
    try:
        body()
    except AssertionError as error:
        failed += 1
        print(f"FAIL - {name}: {error}")
        return
    except Exception as error:  # noqa: BLE001: a test that crashed is a failure
        failed += 1
        print(f"FAIL - {name}: {type(error).__name__}: {error}")
        return
    passed += 1
    print(f"ok - {name}")


def script(source: str, name: str = "t.gd") -> tuple[gd.Interpreter, gd.GDClass]:
    path = WORK / name
    path.write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
    it = gd.Interpreter()
    return it, it.load(path)


def run(source: str, *args, func: str = "f"):
    it, s = script("extends RefCounted\n\n" + textwrap.dedent(source))
    return gd.to_python(it.call_static(s, func, *args))


def eq(got, want) -> None:
    assert got == want and type(got) is type(want), f"got {got!r} ({type(got).__name__}), want {want!r}"


def raises(kind: type, fragment: str, source: str, *args, func: str = "f") -> None:
    try:
        run(source, *args, func=func)
    except kind as error:
        assert fragment in str(error), f"{kind.__name__} without {fragment!r}: {error}"
        return
    except gd.GDScriptError as error:
        raise AssertionError(f"raised {type(error).__name__} ({error}), want {kind.__name__}") from error
    raise AssertionError(f"no {kind.__name__} ({fragment!r})")


# ----- semantics where GDScript differs from Python ----------------------------------------------

test("int / int truncates toward zero; % takes the dividend's sign", lambda: eq(run("""
static func f() -> Array:
    return [-7 / 2, 7 / -2, -7 % 2, 7 % -2, 7 / 2, -8 / 2]
"""), [-3, -3, -1, 1, 3, -4]))

test("int and float stay apart: 1 / 2 is 0, 1 / 2.0 is 0.5, a float var holds 2.0", lambda: eq(run("""
static func f() -> Array:
    var x: float = 2
    return [1 / 2, 1 / 2.0, x, 3 * 1.0]
"""), [0, 0.5, 2.0, 3.0]))

test("a 64-bit overflow is an error, not Python's big int", lambda: raises(gd.GDScriptError, "overflow", """
static func f() -> int:
    var x := 9223372036854775807
    return x + 1
"""))

test("an integer literal beyond 64 bits is refused", lambda: raises(gd.GDScriptError, "does not fit 64 bits", """
static func f() -> int:
    return 9223372036854775808
"""))

test("Dictionary keys tell 1, 1.0 and true apart, and keep insertion order", lambda: eq(run("""
static func f() -> Array:
    var d := {}
    d[1] = "int"
    d[1.0] = "float"
    d[true] = "bool"
    d["b"] = 1
    d["a"] = 2
    return [d.size(), d[1], d[1.0], d[true], d.keys()]
"""), [5, "int", "float", "bool", [1, 1.0, True, "b", "a"]]))

test("== between a String and an int is Godot's runtime error; null compares with anything", lambda: (
    raises(gd.GDScriptError, "Invalid operands 'String' and 'int'", """
static func f() -> bool:
    var a: Variant = "1"
    return a == 1
"""),
    eq(run("""
static func f() -> Array:
    var a: Variant = "x"
    return [a == null, null == null, 1 == 1.0]
"""), [False, True, True])))

test("and/or/not work on truthiness and short-circuit", lambda: eq(run("""
static func f() -> Array:
    var d := {}
    return [not "", not [], 0 or "", d.has("x") and d["x"] > 1, [1] and {"a": 1}]
"""), [True, True, False, False, True]))

test("in and not in over Arrays, Dictionaries (keys) and Strings", lambda: eq(run("""
static func f() -> Array:
    return [2 in [1, 2], "a" in {"a": 1}, 1 in {"a": 1}, "bc" in "abc", 3 not in [1, 2]]
"""), [True, True, False, True, True]))

test("ternaries, is, as, bitwise operators and shifts", lambda: eq(run("""
static func f() -> Array:
    var v: Variant = 5
    var a: Variant = [1]
    return [1 if v is int else 2, v is float, (a as Array).size(), 6 & 3, 6 | 1, 6 ^ 3, -16 >> 2, 1 << 62]
"""), [1, False, 1, 2, 7, 5, -4, 4611686018427387904]))

test("for over ints, ranges, Arrays, Dictionaries and Strings; while, break and continue", lambda: eq(run("""
static func f() -> Array:
    var out := []
    for i in 3:
        out.append(i)
    for i in range(5, 0, -2):
        out.append(i)
    for k in {"x": 1, "y": 2}:
        out.append(k)
    for c in "hé":
        out.append(c)
    var n := 0
    while true:
        n += 1
        if n == 2:
            continue
        if n > 4:
            break
        out.append(n)
    return out
"""), [0, 1, 2, 5, 3, 1, "x", "y", "h", "é", 1, 3, 4]))

test("strings are code points: length, unicode_at, substr, escapes", lambda: eq(run("""
static func f() -> Array:
    var s := "a🐢\\u00e9\\n"
    return [s.length(), s.unicode_at(1), s.substr(1, 2), s[3], "x".repeat(3), "a,b".split(",")]
"""), [4, 0x1F422, "🐢é", "\n", "xxx", ["a", "b"]]))

test("functions: defaults evaluated per call, typed parameters convert int to float", lambda: eq(run("""
static func g(x: float, items := []) -> Array:
    items.append(x)
    return items

static func f() -> Array:
    return [g(1), g(2.5), g(3, [0])]
"""), [[1.0], [2.5], [0, 3.0]]))

test("inner classes: new(), _init, fields, static functions, a sibling class", lambda: eq(run("""
class Point:
    extends RefCounted
    var x: int = 0
    var tags: Array[String] = []

    func _init(at: int) -> void:
        x = at

    func moved(by: int) -> Point:
        return Point.new(x + by)

    static func origin() -> Point:
        return Point.new(0)


class Line:
    extends RefCounted
    var a := Point.origin()


static func f() -> Array:
    var p := Point.new(2).moved(3)
    p.tags.append("t")
    return [p.x, p.tags, Line.new().a.x]
"""), [5, ["t"], 0]))

test("Callables: function references, bound methods, bind, lambdas capturing by value", lambda: eq(run("""
class Box:
    extends RefCounted
    var v := 10

    func add(x: int, y: int) -> int:
        return v + x + y


static func twice(x: int) -> int:
    return x * 2


static func f() -> Array:
    var n := 1
    var lam := func(x: int) -> int: return x + n
    n = 100
    var add: Callable = Box.new().add.bind(5)
    return [twice.call(4), [1, 2].map(twice), lam.call(1), add.call(1), Callable().is_valid()]
"""), [8, [2, 4], 2, 16, False]))

test("static variables are initialised at load, in order", lambda: eq(run("""
static var A := 2
static var B: int = A * 10


static func f() -> Array:
    A += 1
    return [A, B]
"""), [3, 20]))

test("preload of a relative script, its constants, inner classes and static functions", lambda: (
    (WORK / "dep.gd").write_text("extends RefCounted\n\nconst K := 7\n\n\nclass Inner:\n\textends RefCounted\n"
                                  "\tvar v := K\n\n\nstatic func twice(x: int) -> int:\n\treturn x * 2\n"),
    eq(run("""
const dep = preload("dep.gd")


static func f() -> Array:
    return [dep.K, dep.Inner.new().v, dep.twice(4)]
"""), [7, 7, 8])))

test("PackedByteArray doubles and int64s round trip; PackedFloat32Array rounds to 32 bits", lambda: eq(run("""
static func f() -> Array:
    var b := PackedByteArray()
    b.resize(8)
    b.encode_double(0, 1.5)
    var bits := b.decode_s64(0)
    b.encode_s64(0, bits + 1)
    return [bits, b.decode_double(0) > 1.5, PackedFloat32Array([0.1])[0]]
"""), [0x3FF8000000000000, True, 0.10000000149011612]))

test("RegEx: PCRE2's \\z is the very end; a trailing newline does not match", lambda: eq(run("""
static func f() -> Array:
    var re := RegEx.new()
    re.compile("^(?:[a-z]+)\\\\z")
    return [re.search("abc") != null, re.search("abc\\n") == null, re.search("ab1") == null]
"""), [True, True, True]))

test("RegEx: \\d is ASCII only (PCRE2 without UCP), unlike Python's default", lambda: eq(run("""
static func f() -> bool:
    var re := RegEx.new()
    re.compile("^\\\\d+\\\\z")
    return re.search("١٢") == null
"""), True))

# ----- Godot's errors ----------------------------------------------------------------------------

test("an inner class cannot call its outer class's static function (Godot resolves only constants)",
     lambda: raises(gd.GDScriptError, "outer class", """
static func helper() -> int:
    return 1


class Inner:
    extends RefCounted

    static func g() -> int:
        return helper()


static func f() -> int:
    return Inner.g()
"""))

test("a variable holding a Callable is called with .call(), not ()", lambda: raises(gd.GDScriptError, ".call()", """
static func f() -> int:
    var g := func() -> int: return 1
    return g()
"""))

test("a constant's value must be a constant expression", lambda: raises(gd.GDScriptError, "constant expression", """
const NOW := Time.get_unix_time_from_system()


static func f() -> float:
    return NOW
"""))

test("a const Array is read-only", lambda: raises(gd.GDScriptError, "read-only", """
const ITEMS := [1, 2]


static func f() -> void:
    ITEMS.append(3)
"""))

test("returning an untyped Array where Array[Dictionary] is declared is an error", lambda: raises(
    gd.GDScriptError, "Array[Dictionary]", """
static func f() -> Array[Dictionary]:
    var out := []
    out.append({})
    return out
"""))

test("a typed variable refuses another type", lambda: raises(gd.GDScriptError, "where String is expected", """
static func f() -> void:
    var s: String = ""
    s = 1
"""))

test("a static function cannot use an instance variable", lambda: raises(gd.GDScriptError, "static", """
var x := 1


static func f() -> int:
    return x
"""))

test("indexing past the end of an Array, or a missing Dictionary key, is an error", lambda: (
    raises(gd.GDScriptError, "out of bounds", "static func f() -> int:\n    return [1][1]\n"),
    raises(gd.GDScriptError, "Invalid access to key", "static func f() -> int:\n    return {}[\"a\"]\n")))

test("int division by zero is an error", lambda: raises(gd.GDScriptError, "Division by zero", """
static func f() -> int:
    var z := 0
    return 1 / z
"""))

# ----- what is not executed -----------------------------------------------------------------------

test("match is refused with its line", lambda: raises(gd.Unsupported, "t.gd:5: match_stmt", """
static func f() -> int:
    match 1:
        1:
            return 1
    return 0
"""))

test("String formatting with % is refused", lambda: raises(gd.Unsupported, "String formatting", """
static func f() -> String:
    return "%d" % 1
"""))

test("str() of a float is refused (Godot's float formatting is not modelled)", lambda: raises(
    gd.Unsupported, "str() of a float", """
static func f() -> String:
    return str(1.5)
"""))

test("an unknown builtin method is refused, naming it", lambda: raises(gd.Unsupported, "String.capitalize()", """
static func f() -> String:
    return "a".capitalize()
"""))

test("annotations other than @warning_ignore are refused", lambda: raises(gd.Unsupported, "@export", """
@export var x := 1


static func f() -> int:
    return 1
"""))

test("class_name is refused (the runtime and modules must not declare one)", lambda: raises(
    gd.Unsupported, "class_name", "class_name Foo\n\nstatic func f() -> int:\n    return 1\n"))

test("PCRE2 syntax Python reads differently is refused", lambda: raises(gd.Unsupported, "\\p{...}", """
static func f() -> bool:
    var re := RegEx.new()
    re.compile("\\\\p{L}+")
    return true
"""))

test("the engine's HTTP, files and scene tree are not executed without fakes", lambda: (
    raises(gd.NotExecuted, "FileAccess.file_exists", "static func f() -> bool:\n    return FileAccess.file_exists(\"x\")\n"),
    raises(gd.NotExecuted, "engine class Node", """
class N:
    extends Node


static func f() -> void:
    N.new()
""")))


# ----- the agreement check can fail ------------------------------------------------------------------


def agreement_fails_on_a_wrong_module() -> None:
    sample = HERE.parents[1] / "tests/fixtures/minimal/expected/minimal/clients/godot/addons/contractc_minimal/minimal.gd"
    broken_dir = WORK / "broken"
    broken_dir.mkdir(exist_ok=True)
    text = sample.read_text(encoding="utf-8")
    # A module that misses the `missing` violation: the agreement check must say so.
    wrong = text.replace('cx.report("missing", "event_id"', 'cx.report("max", "event_id"')
    assert wrong != text, "the generated minimal module changed: update this test"
    (broken_dir / "minimal.gd").write_text(wrong, encoding="utf-8")
    shutil.copy(agreement.RUNTIME, broken_dir / "contractc_runtime.gd")
    corpus = WORK / "corpus"
    corpus.mkdir(exist_ok=True)
    (corpus / "minimal.ndjson").write_text(
        json.dumps({"name": "missing", "body": "{}", "codes": ["missing"]}) + "\n"
        + json.dumps({"name": "valid", "body": '{"event_id":"a"}', "codes": []}) + "\n"
        + json.dumps({"name": "mislabelled", "body": '{"event_id":"a"}', "codes": ["pattern"]}) + "\n",
        encoding="utf-8")
    # `{}` decodes with a null event_id, so validate runs on the broken module... it refuses at
    # decode (required), so the mislabelled case is the one the module must get wrong.
    out = io.StringIO()
    with redirect_stdout(out):
        status = agreement.main(["agreement.py", str(corpus), str(broken_dir / "minimal.gd")])
    lines = out.getvalue().splitlines()
    assert status == 1, f"exit status {status}"
    assert "FAIL - minimal: mislabelled: codes [], labelled ['pattern']" in lines, lines
    assert lines[-1] == "godot agreement: 2 passed, 1 failed", lines[-1]
    direct = gd.Interpreter()
    module = direct.load(broken_dir / "minimal.gd")
    violations = gd.to_python(direct.call_static(module, "validate", gd.GDDict(), 0))
    assert [v["code"] for v in violations] == ["max"], violations


test("the agreement check fails on a module that disagrees with the labels", agreement_fails_on_a_wrong_module)

test("a floating-point check: math in the interpreter is IEEE double", lambda: eq(run("""
static func f() -> float:
    return 0.1 + 0.2
"""), 0.30000000000000004))

shutil.rmtree(WORK, ignore_errors=True)
print(f"gdscript interpreter: {passed} passed, {failed} failed")
sys.exit(0 if failed == 0 else 1)
