"""An interpreter for the subset of GDScript 4 the Godot client is written in.

No Godot binary can be installed here, so the agreement check (tests/godot/agreement.py) runs the
real text of the runtime (compiler/templates/godot/contractc_runtime.gd) and of each contract
module with this interpreter. It walks the parse tree of gdtoolkit (the same parser `gdparse` and
`gdlint` use): nothing is re-implemented in Python but the language and the engine builtins the
client calls. Anything outside that subset raises `Unsupported` naming the construct and its line;
nothing is skipped silently.

What is executed, and how faithfully:

- The language: `var`/`const`/`static var` (typed, inferred `:=`, untyped), assignment and augmented
  assignment (to names, members, subscripts), `if`/`elif`/`else`, `for` over ints, ranges,
  Arrays, Dictionaries (keys) and Strings, `while`, `break`, `continue`, `return`, `pass`;
  expressions with GDScript's semantics: int and float kept apart (`int / int` truncates toward
  zero, `%` takes the dividend's sign, a 64-bit overflow is an error rather than a silent wrap),
  comparisons (`==` between unrelated types is an error, as in Godot, except against null), `and`
  `or` `not` on truthiness, `in`/`not in`, `a if c else b`, `is`, `as`, bitwise operators and
  shifts, array and dictionary literals (Dictionaries keep insertion order and tell `1` from `1.0`
  and `true`), const arrays and dictionaries read-only; functions with typed parameters (ints and
  floats converted both ways, other mismatches errors), defaults evaluated at each call, typed
  returns (`-> void` returning a value, `Array[T]` from an untyped non-literal Array: errors);
  static functions, static variables (initialised at load, in order), inner classes with `new()`
  and `_init`, `extends` between script classes, `preload` of a script relative to the preloading
  one; Callables (`func_name` and `obj.method` references, lambdas capturing by value, `bind`,
  `call`, `is_valid`, `Callable()`); signals (`emit`); `await` of a call (a coroutine runs to its
  end at once: the fakes below never suspend). Godot's scoping rules are enforced: an inner class
  sees its outer classes' constants and classes, never their functions or static variables; a
  static function cannot use instance members; a variable holding a Callable is called with
  `.call()`; a constant's value must be a constant expression.
- Builtins: the String, Array, Dictionary, PackedStringArray, PackedByteArray, PackedFloat32Array,
  Callable, RegEx and RegExMatch methods in `BUILTIN_METHODS` below, the global functions in
  `GLOBAL_FUNCTIONS` and constants in `GLOBAL_CONSTANTS`, `Time` (system time and zone) and
  `Crypto.generate_random_bytes`. RegEx runs on Python's `re`, which agrees with PCRE2 on the
  patterns contracts use (explicit classes, quantifiers, groups, alternation, anchors): a pattern
  is compiled with `re.ASCII` (PCRE2 as Godot builds it has no UCP: `\\d`, `\\w`, `\\s` are ASCII)
  and `\\z` becomes Python's `\\Z`; PCRE2 syntax Python lacks (`\\Z`, `\\p{..}`, `(?<name>`,
  `\\h`, `\\R`, `\\K`, `(?|`) is `Unsupported`. `str()` of a float is refused (Godot's float
  formatting is not modelled: the runtime writes floats itself).
- The engine's I/O is not executed: `Node` (the scene tree, timers), `HTTPRequest`, `FileAccess`
  and `DirAccess` raise `NotExecuted`, unless a test installs fakes (`Interpreter.engine`), as
  tests/godot/test_sender.py and e2e.py do (tests/godot/fakes.py): an HTTPRequest sending to a
  scripted server or with real HTTP to `serve`, timers that record their wait, FileAccess and
  DirAccess on a temporary directory.

So: the Checker, every check, JSON decode and encode, numbers, timestamp formats and uuids run
here for real; the sender (sign-in, refresh, the token provider, retry and backoff, batching, the
journal, its HTTPRequest and timer code) runs over fakes of those engine classes. Godot's own
HTTPRequest, files, timers, analyzer and PCRE2 are never run.
"""

from __future__ import annotations

import math
import os
import re
import struct
import sys
import time
from pathlib import Path
from typing import Any, Callable as PyCallable

from gdtoolkit.parser import parser as gd_parser
from lark import Token, Tree

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


# ----- errors -------------------------------------------------------------------------------


class GDScriptError(Exception):
    """A runtime error, as Godot would report it (with the file and line)."""


class Unsupported(GDScriptError):
    """A construct outside the subset this interpreter executes."""


class NotExecuted(GDScriptError):
    """Engine I/O (scene tree, HTTP, files) that is parsed and linted but not executed here."""


class Location:
    """Where an error is: a file and a line (or a parse-tree node, its line found only when shown)."""

    __slots__ = ("file", "at")

    def __init__(self, file: str, at: Any):
        self.file = file
        self.at = at

    @property
    def line(self) -> int:
        return self.at if isinstance(self.at, int) else line_of(self.at)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


def line_of(node: Any) -> int:
    if isinstance(node, Token):
        return node.line or 0
    meta = getattr(node, "meta", None)
    if meta is not None and not meta.empty:
        return meta.line
    for child in getattr(node, "children", []):
        found = line_of(child)
        if found:
            return found
    return 0


# ----- values -------------------------------------------------------------------------------


class Null:
    """Marker for a missing value in lookups (None is GDScript's null)."""


MISSING = Null()


def _key(value: Any) -> Any:
    """A Dictionary key as Godot compares keys: by type and value (1, 1.0 and true differ)."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, float):
        return ("float", value)
    if isinstance(value, str):
        return ("str", value)
    if value is None:
        return ("null", None)
    return ("id", id(value))


class GDArray(list):
    """An Array (reference semantics), optionally typed and read-only (a const's)."""

    def __init__(self, items: Any = (), elem: Any = None, read_only: bool = False):
        super().__init__(items)
        self.elem = elem  # a type hint (TypeHint) or None for untyped
        self.read_only = read_only

    def __hash__(self) -> int:  # used only by identity in Dictionary keys
        return id(self)

    def __eq__(self, other: Any) -> bool:
        return list.__eq__(self, other)


class GDDict:
    """A Dictionary: insertion order, keys compared by type and value."""

    def __init__(self, items: Any = (), read_only: bool = False):
        self._data: dict[Any, tuple[Any, Any]] = {}
        self.read_only = read_only
        for k, v in items:
            self._data[_key(k)] = (k, v)

    def has(self, key: Any) -> bool:
        return _key(key) in self._data

    def get(self, key: Any, default: Any = None) -> Any:
        entry = self._data.get(_key(key))
        return default if entry is None else entry[1]

    def set(self, key: Any, value: Any, where: str) -> None:
        if self.read_only:
            raise GDScriptError(f"{where}: Invalid assignment on read-only Dictionary")
        self._data[_key(key)] = (key, value)

    def erase(self, key: Any) -> bool:
        return self._data.pop(_key(key), None) is not None

    def keys(self) -> list[Any]:
        return [k for k, _ in self._data.values()]

    def values(self) -> list[Any]:
        return [v for _, v in self._data.values()]

    def items(self) -> list[tuple[Any, Any]]:
        return list(self._data.values())

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, GDDict) or len(self) != len(other):
            return False
        return all(other.has(k) and values_equal(v, other.get(k)) for k, v in self.items())

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k!r}: {v!r}" for k, v in self.items()) + "}"


class PackedStringArray(list):
    pass


class PackedByteArray(bytearray):
    pass


class PackedFloat32Array(list):
    pass


class TypeHint:
    """A parsed type hint: a builtin name, `Array[...]`, or a class path (`rt.Checker`)."""

    __slots__ = ("text", "name", "elem", "resolved")

    def __init__(self, text: str):
        self.text = text.replace(" ", "")
        self.elem: TypeHint | None = None
        self.resolved: Any = None
        m = re.fullmatch(r"Array\[(.+)\]", self.text)
        if m:
            self.name = "Array"
            self.elem = TypeHint(m.group(1))
        else:
            self.name = self.text

    def __repr__(self) -> str:
        return self.text


BUILTIN_TYPE_NAMES = {
    "Variant", "int", "float", "bool", "String", "Array", "Dictionary", "Callable", "Signal",
    "PackedStringArray", "PackedByteArray", "PackedFloat32Array", "void", "StringName", "Object",
}


class Signal:
    def __init__(self, owner: Any, name: str):
        self.owner = owner
        self.name = name


class GDCallable:
    """A Callable: a script function (bound to an object or static), a lambda, a builtin."""

    def __init__(self, func: Any = None, this: Any = None, bound: tuple = (), closure: dict | None = None,
                 builtin: PyCallable | None = None, name: str = ""):
        self.func = func
        self.this = this
        self.bound = bound
        self.closure = closure
        self.builtin = builtin
        self.name = name or (func.name if func is not None else "")

    def is_valid(self) -> bool:
        return self.func is not None or self.builtin is not None

    def with_bound(self, args: tuple) -> "GDCallable":
        return GDCallable(self.func, self.this, args + self.bound, self.closure, self.builtin, self.name)


# ----- scripts and objects --------------------------------------------------------------------


class FuncDef:
    __slots__ = ("name", "static", "params", "ret", "body", "cls", "line", "is_lambda")

    def __init__(self, name: str, static: bool, params: list, ret: TypeHint | None, body: list, cls: "GDClass",
                 line: int, is_lambda: bool = False):
        self.name = name
        self.static = static
        self.params = params  # [(name, TypeHint|None, default node|None, inferred: bool)]
        self.ret = ret
        self.body = body
        self.cls = cls
        self.line = line
        self.is_lambda = is_lambda


class GDClass:
    """A script (top level) or an inner class."""

    def __init__(self, name: str, file: str, outer: "GDClass | None"):
        self.name = name
        self.file = file
        self.outer = outer
        self.extends: Any = "RefCounted"  # an engine class name, or a GDClass
        self.extends_node: Any = None
        self.const_nodes: dict[str, tuple[Any, TypeHint | None]] = {}
        self.consts: dict[str, Any] = {}
        self.static_var_nodes: list[tuple[str, TypeHint | None, Any, bool]] = []
        self.static_vars: dict[str, Any] = {}
        self.static_types: dict[str, TypeHint | None] = {}
        self.instance_vars: list[tuple[str, TypeHint | None, Any, bool]] = []
        self.instance_var_names: set[str] = set()
        self.funcs: dict[str, FuncDef] = {}
        self.classes: dict[str, GDClass] = {}
        self.signals: set[str] = set()
        self.evaluating: set[str] = set()

    def __repr__(self) -> str:
        return f"<GDScript {self.name}>"

    def script_base(self) -> "GDClass | None":
        return self.extends if isinstance(self.extends, GDClass) else None

    def engine_base(self) -> str:
        c: Any = self
        while isinstance(c, GDClass):
            c = c.extends
        return c

    def is_subclass_of(self, other: "GDClass") -> bool:
        c: Any = self
        while isinstance(c, GDClass):
            if c is other:
                return True
            c = c.extends
        return False


class GDObject:
    def __init__(self, cls: GDClass):
        self.cls = cls
        self.fields: dict[str, Any] = {}
        self.types: dict[str, TypeHint | None] = {}
        self.engine: Any = None  # an engine fake's state (Node...)

    def __repr__(self) -> str:
        return f"<{self.cls.name}#{id(self) % 10000}>"


class EngineClass:
    """A Godot engine class name used as a value (`RegEx.new()`, `FileAccess.open`)."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"<engine class {self.name}>"


class EngineObject:
    """An instance of an engine class the interpreter models (RegEx, RegExMatch, Crypto)."""

    def __init__(self, cls: str, **state: Any):
        self.cls = cls
        self.state = state


# ----- control flow -------------------------------------------------------------------------


class _Flow:
    __slots__ = ("kind", "value")

    def __init__(self, kind: str, value: Any = None):
        self.kind = kind
        self.value = value


BREAK = _Flow("break")
CONTINUE = _Flow("continue")


class Frame:
    __slots__ = ("locals", "types", "this", "cls", "func", "file")

    def __init__(self, this: Any, cls: GDClass, func: FuncDef | None):
        self.locals: dict[str, Any] = {}
        self.types: dict[str, TypeHint | None] = {}
        self.this = this
        self.cls = cls
        self.func = func
        self.file = cls.file


# ----- helpers ------------------------------------------------------------------------------


def type_name(value: Any) -> str:
    if value is None:
        return "Nil"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "String"
    if isinstance(value, GDArray):
        return "Array"
    if isinstance(value, GDDict):
        return "Dictionary"
    if isinstance(value, PackedStringArray):
        return "PackedStringArray"
    if isinstance(value, PackedByteArray):
        return "PackedByteArray"
    if isinstance(value, PackedFloat32Array):
        return "PackedFloat32Array"
    if isinstance(value, GDCallable):
        return "Callable"
    if isinstance(value, Signal):
        return "Signal"
    if isinstance(value, (GDObject, EngineObject, GDClass, EngineClass)):
        return "Object"
    return type(value).__name__


TYPE_IDS = {
    "Nil": 0, "bool": 1, "int": 2, "float": 3, "String": 4, "Object": 24, "Callable": 25, "Signal": 26,
    "Dictionary": 27, "Array": 28, "PackedByteArray": 29, "PackedFloat32Array": 32, "PackedStringArray": 34,
}
TYPE_NAMES_BY_ID = {v: k for k, v in TYPE_IDS.items()}


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_int(value: int, where: Any) -> int:
    if value < INT64_MIN or value > INT64_MAX:
        raise GDScriptError(f"{where}: 64-bit integer overflow ({value}): Godot would wrap around silently")
    return value


def truthy(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, (bool, int, float)):
        return bool(value)
    if isinstance(value, str):
        return value != ""
    if isinstance(value, (GDArray, GDDict, PackedStringArray, PackedByteArray, PackedFloat32Array)):
        return len(value) > 0
    if isinstance(value, GDCallable):
        return value.is_valid()
    return True


def comparable_types(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return True
    if is_number(a) and is_number(b):
        return True
    if isinstance(a, bool) and isinstance(b, bool):
        return True
    ta, tb = type_name(a), type_name(b)
    return ta == tb


def values_equal(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if is_number(a) and is_number(b):
        return a == b
    if isinstance(a, (GDObject, EngineObject, GDClass, EngineClass)):
        return a is b
    if isinstance(a, GDCallable) and isinstance(b, GDCallable):
        return a.func is b.func and a.this is b.this and a.bound == b.bound and a.builtin is b.builtin
    if isinstance(a, GDArray) and isinstance(b, GDArray):
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b))
    return a == b


GDSCRIPT_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v",
                    '"': '"', "'": "'", "\\": "\\", "\n": ""}


def unescape(body: str, where: str) -> str:
    out = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        e = body[i + 1] if i + 1 < len(body) else ""
        if e in GDSCRIPT_ESCAPES:
            out.append(GDSCRIPT_ESCAPES[e])
            i += 2
        elif e == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2:i + 6]):
            out.append(chr(int(body[i + 2:i + 6], 16)))
            i += 6
        elif e == "U" and re.fullmatch(r"[0-9a-fA-F]{6}", body[i + 2:i + 8]):
            out.append(chr(int(body[i + 2:i + 8], 16)))
            i += 8
        else:
            raise Unsupported(f"{where}: string escape \\{e}")
    return "".join(out)


def string_literal(token: Token, where: str) -> str:
    text = str(token)
    if text.startswith(('"""', "'''")):
        return unescape(text[3:-3], where)
    return unescape(text[1:-1], where)


def number_literal(text: str, where: str) -> Any:
    t = text.replace("_", "")
    if t.lower().startswith(("0x", "-0x")):
        value = int(t, 16)
    elif t.lower().startswith(("0b", "-0b")):
        value = int(t, 2)
    elif any(c in t for c in ".eE"):
        return float(t)
    else:
        value = int(t)
    if value > INT64_MAX or value < INT64_MIN:
        raise GDScriptError(f"{where}: integer literal {text} does not fit 64 bits (Godot would misread it)")
    return value


PCRE_ONLY = [
    (r"\\Z", "\\Z (end or before a final newline)"),
    (r"\\[pP]\{", "\\p{...} Unicode properties"),
    (r"\(\?<(?![=!])", "(?<name>...) named groups"),
    (r"\\[hHRK]", "\\h, \\H, \\R or \\K"),
    (r"\(\?\|", "(?| branch reset"),
]


def pcre_to_python(pattern: str, where: str) -> str:
    """PCRE2 (as Godot compiles it) to Python `re`; refuses what Python would read differently."""
    for syntax, what in PCRE_ONLY:
        # Skip escaped backslashes: look at each backslash sequence in order.
        for m in re.finditer(syntax, pattern):
            backslashes = len(pattern[:m.start()]) - len(pattern[:m.start()].rstrip("\\"))
            if backslashes % 2 == 0:
                raise Unsupported(f"{where}: PCRE2 pattern syntax {what} in {pattern!r}")
    out = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            pair = pattern[i:i + 2]
            out.append("\\Z" if pair == "\\z" else pair)
            i += 2
        else:
            out.append(pattern[i])
            i += 1
    return "".join(out)


# ----- the interpreter --------------------------------------------------------------------------


class Interpreter:
    """Loads scripts (`load(path)`) and runs their functions (`call_static`, `new`, `call`)."""

    def __init__(self) -> None:
        self.scripts: dict[str, GDClass] = {}
        self.engine: dict[str, Any] = {}  # fakes tests install: "Node", "FileAccess", ...
        self.trees: dict[str, Tree] = {}
        self.literals: dict[int, Any] = {}
        self.loading: set[str] = set()
        self.depth = 0
        self.clock: PyCallable[[], float] = time.time
        self.random_bytes: PyCallable[[int], bytes] = os.urandom
        self.zone_bias_minutes = 0
        # A GDScript call takes a few dozen Python frames; Godot stops at 1024 GDScript calls.
        sys.setrecursionlimit(max(sys.getrecursionlimit(), 60000))

    # --- loading ---------------------------------------------------------------------------

    def load(self, path: str | Path) -> GDClass:
        key = str(Path(path).resolve())
        if key in self.scripts:
            return self.scripts[key]
        if key in self.loading:
            raise GDScriptError(f"{path}: cyclic preload")
        self.loading.add(key)
        text = Path(key).read_text(encoding="utf-8")
        tree = gd_parser.parse(text, gather_metadata=True)
        for sub in tree.iter_subtrees():
            sub.data = str(sub.data)  # plain strings: lark's Token.__eq__ is slow in dict lookups
        self.trees[key] = tree
        script = GDClass(Path(key).name, key, None)
        self.scripts[key] = script
        self._declare(script, tree.children)
        self._initialise(script)
        self.loading.discard(key)
        return script

    def _declare(self, cls: GDClass, statements: list) -> None:
        pending_annotations: list = []
        for stmt in statements:
            where = Location(cls.file, stmt)
            if isinstance(stmt, Token):
                raise Unsupported(f"{where}: class-level token {stmt!r}")
            kind = stmt.data
            if kind == "annotation":
                self._check_annotation(stmt, where)
                continue
            if kind == "extends_stmt":
                cls.extends_node = stmt
            elif kind == "classname_stmt" or kind == "classname_extends_stmt":
                raise Unsupported(f"{where}: class_name (the runtime and modules must not declare one)")
            elif kind == "const_stmt":
                name, hint, value = self._decl_parts(stmt.children[0])
                cls.const_nodes[name] = (value, hint)
            elif kind == "class_var_stmt" or kind == "static_class_var_stmt":
                inner = stmt.children[0] if kind == "class_var_stmt" else stmt.children[0].children[0]
                name, hint, value = self._decl_parts(inner)
                inferred = inner.data == "class_var_inf"
                if any(isinstance(c, Tree) and c.data == "inline_property_body" for c in inner.children):
                    raise Unsupported(f"{where}: property getters/setters")
                if kind == "static_class_var_stmt":
                    cls.static_var_nodes.append((name, hint, value, inferred))
                else:
                    cls.instance_vars.append((name, hint, value, inferred))
                    cls.instance_var_names.add(name)
            elif kind == "signal_stmt":
                cls.signals.add(str(stmt.children[0]))
            elif kind in ("func_def", "static_func_def"):
                fdef = stmt if kind == "func_def" else stmt.children[0]
                f = self._func(fdef, cls, kind == "static_func_def")
                cls.funcs[f.name] = f
            elif kind == "class_def":
                name = str(stmt.children[0])
                inner_cls = GDClass(name, cls.file, cls)
                body = stmt.children[1:]
                cls.classes[name] = inner_cls
                self._declare(inner_cls, body)
            elif kind in ("docstr_stmt", "pass_stmt"):
                pass
            else:
                raise Unsupported(f"{where}: class-level statement {kind}")
            pending_annotations = []
        del pending_annotations

    def _check_annotation(self, stmt: Tree, where: Location) -> None:
        name = str(stmt.children[0])
        if name != "warning_ignore":
            raise Unsupported(f"{where}: annotation @{name}")

    def _decl_parts(self, node: Tree) -> tuple[str, TypeHint | None, Any]:
        name = str(node.children[0])
        hint = None
        value = None
        for child in node.children[1:]:
            if isinstance(child, Token) and child.type == "TYPE_HINT":
                hint = TypeHint(str(child))
            elif isinstance(child, Tree) and child.data == "expr":
                value = child
        return name, hint, value

    def _func(self, fdef: Tree, cls: GDClass, static: bool) -> FuncDef:
        header = fdef.children[0]
        name = str(header.children[0])
        params, ret = self._signature(header.children[1:], cls)
        body = [s for s in fdef.children[1:]]
        return FuncDef(name, static, params, ret, body, cls, line_of(header))

    def _signature(self, parts: list, cls: GDClass) -> tuple[list, TypeHint | None]:
        params = []
        ret = None
        for part in parts:
            if isinstance(part, Token) and part.type == "TYPE_HINT":
                ret = TypeHint(str(part))
            elif isinstance(part, Tree) and part.data == "func_args":
                for arg in part.children:
                    if not isinstance(arg, Tree) or arg.data == "trailing_comma":
                        continue
                    if arg.data == "func_arg_variadic":
                        raise Unsupported(f"{Location(cls.file, arg)}: variadic parameters")
                    pname = str(arg.children[0])
                    hint = None
                    default = None
                    for c in arg.children[1:]:
                        if isinstance(c, Token) and c.type == "TYPE_HINT":
                            hint = TypeHint(str(c))
                        elif isinstance(c, Tree):
                            default = c
                    params.append((pname, hint, default, arg.data == "func_arg_inf"))
        return params, ret

    def _initialise(self, cls: GDClass) -> None:
        if cls.extends_node is not None:
            cls.extends = self._resolve_extends(cls, cls.extends_node)
        for name in cls.const_nodes:
            self.const_value(cls, name)
        for inner in cls.classes.values():
            self._initialise(inner)
        for name, hint, node, inferred in cls.static_var_nodes:
            frame = Frame(None, cls, None)
            value = self.eval(node, frame) if node is not None else self.default_of(hint, frame)
            if inferred:
                hint = self.hint_of(value)
            cls.static_types[name] = hint
            cls.static_vars[name] = self.convert(value, hint, frame, node, Location(cls.file, node))

    def _resolve_extends(self, cls: GDClass, node: Tree) -> Any:
        parts = [c for c in node.children]
        where = Location(cls.file, node)
        first = parts[0]
        if isinstance(first, Tree) and first.data == "string":
            base = self.load(Path(cls.file).parent / string_literal(first.children[0], str(where)))
            rest = parts[1:]
        else:
            name = str(first)
            if name in ENGINE_CLASSES:
                if len(parts) > 1:
                    raise Unsupported(f"{where}: extends {name}.…")
                return name
            base = self.lookup_name(name, Frame(None, cls.outer or cls, None), where)
            rest = parts[1:]
        for part in rest:
            base = self.get_member(base, str(part), where)
        if not isinstance(base, GDClass):
            raise GDScriptError(f"{where}: cannot extend {base!r}")
        return base

    def const_value(self, cls: GDClass, name: str) -> Any:
        if name in cls.consts:
            return cls.consts[name]
        node, hint = cls.const_nodes[name]
        where = Location(cls.file, node)
        if name in cls.evaluating:
            raise GDScriptError(f"{where}: constant {name} refers to itself")
        cls.evaluating.add(name)
        frame = Frame(None, cls, None)
        self.require_constant(node, where)
        value = self.eval(node, frame)
        value = self.convert(value, hint, frame, node, where)
        value = self.freeze(value)
        cls.evaluating.discard(name)
        cls.consts[name] = value
        return value

    def freeze(self, value: Any) -> Any:
        if isinstance(value, GDArray):
            value.read_only = True
            for item in value:
                self.freeze(item)
        elif isinstance(value, GDDict):
            value.read_only = True
            for item in value.values():
                self.freeze(item)
        return value

    def require_constant(self, node: Any, where: Location) -> None:
        """Godot's rule for const initialisers: literals, operators, names, preload()."""
        for sub in node.iter_subtrees() if isinstance(node, Tree) else []:
            if sub.data == "standalone_call" and str(sub.children[0]) != "preload":
                raise GDScriptError(f"{where}: a constant's value must be a constant expression "
                                    f"(calls {sub.children[0]}())")
            if sub.data in ("getattr_call", "lambda", "await_expr"):
                raise GDScriptError(f"{where}: a constant's value must be a constant expression ({sub.data})")

    # --- public entry points -------------------------------------------------------------

    def call_static(self, cls: GDClass, name: str, *args: Any) -> Any:
        where = Location(cls.file, 0)
        f = self.find_func(cls, name)
        if f is None:
            raise GDScriptError(f"{where}: no function {name} in {cls.name}")
        if not f.static:
            raise GDScriptError(f"{where}: {name} is not static")
        return self.invoke(f, None, list(args), where)

    def new(self, cls: GDClass, *args: Any) -> GDObject:
        return self.instantiate(cls, list(args), Location(cls.file, 0))

    def call(self, callable_: GDCallable, *args: Any) -> Any:
        return self.call_callable(callable_, list(args), Location("<host>", 0))

    def get(self, target: Any, name: str) -> Any:
        return self.get_member(target, name, Location("<host>", 0))

    # --- classes and objects -------------------------------------------------------------

    def find_func(self, cls: GDClass, name: str) -> FuncDef | None:
        c: Any = cls
        while isinstance(c, GDClass):
            if name in c.funcs:
                return c.funcs[name]
            c = c.extends
        return None

    def instantiate(self, cls: GDClass, args: list, where: Location) -> GDObject:
        engine = cls.engine_base()
        obj = GDObject(cls)
        if engine not in ("RefCounted", "Object", "Resource"):
            fake = self.engine.get(engine)
            if fake is None:
                raise NotExecuted(f"{where}: {cls.name} extends the engine class {engine}, which is not "
                                  "executed here (parsed and linted only)")
            obj.engine = fake(self, obj)
        chain = []
        c: Any = cls
        while isinstance(c, GDClass):
            chain.append(c)
            c = c.extends
        for c in reversed(chain):
            for name, hint, node, inferred in c.instance_vars:
                frame = Frame(obj, c, None)
                value = self.eval(node, frame) if node is not None else self.default_of(hint, frame)
                if inferred:
                    hint = self.hint_of(value)
                obj.types[name] = hint
                obj.fields[name] = self.convert(value, hint, frame, node, Location(c.file, line_of(node) if node else 0))
        init = self.find_func(cls, "_init")
        if init is not None:
            self.invoke(init, obj, args, where)
        elif args:
            raise GDScriptError(f"{where}: {cls.name}.new() takes no arguments")
        return obj

    # --- types -----------------------------------------------------------------------------

    def hint_of(self, value: Any) -> TypeHint | None:
        """The type `:=` infers from a value."""
        if value is None:
            return None
        name = type_name(value)
        if name == "Object":
            return None
        hint = TypeHint(name)
        if isinstance(value, GDArray) and value.elem is not None:
            hint.elem = value.elem
        return hint

    def resolve_hint(self, hint: TypeHint, frame: Frame, where: Location) -> Any:
        if hint.name in BUILTIN_TYPE_NAMES:
            return hint.name
        if hint.name in ENGINE_CLASSES:
            return EngineClass(hint.name)
        parts = hint.name.split(".")
        target = self.lookup_name(parts[0], frame, where)
        for part in parts[1:]:
            target = self.get_member(target, part, where)
        if not isinstance(target, GDClass):
            raise GDScriptError(f"{where}: {hint.text} is not a type")
        return target

    def matches(self, value: Any, hint: TypeHint, frame: Frame, where: Location) -> bool:
        target = self.resolve_hint(hint, frame, where)
        if isinstance(target, str):
            if target == "Variant":
                return True
            if target == "Object":
                return isinstance(value, (GDObject, EngineObject))
            if target == "Array" and hint.elem is not None:
                return isinstance(value, GDArray) and value.elem is not None and value.elem.text == hint.elem.text
            return type_name(value) == target
        if isinstance(target, EngineClass):
            return isinstance(value, EngineObject) and value.cls == target.name or (
                isinstance(value, GDObject) and value.cls.engine_base() == target.name)
        return isinstance(value, GDObject) and value.cls.is_subclass_of(target)

    def convert(self, value: Any, hint: TypeHint | None, frame: Frame, node: Any, where: Location) -> Any:
        """A value stored in a typed variable, parameter or return: Godot's implicit conversions."""
        if hint is None or hint.name == "Variant":
            return value
        target = self.resolve_hint(hint, frame, where)
        if target == "float" and is_number(value):
            return float(value)
        if target == "int" and is_number(value):
            if isinstance(value, float):
                if math.isnan(value) or math.isinf(value) or not (-2.0**63 <= value < 2.0**63):
                    raise GDScriptError(f"{where}: float {value} does not convert to int")
                return int(value)
            return value
        if target == "Array" and hint.elem is not None and isinstance(value, GDArray):
            if value.elem is not None and value.elem.text == hint.elem.text:
                return value
            literal = isinstance(node, Tree) and (node.data == "array" or (
                node.data == "expr" and isinstance(node.children[0], Tree) and node.children[0].data == "array"))
            if value.elem is None and literal:
                typed = GDArray(elem=hint.elem)
                for item in value:
                    if not self.matches(item, hint.elem, frame, where):
                        item = self.convert(item, hint.elem, frame, None, where)
                    typed.append(item)
                return typed
            raise GDScriptError(f"{where}: an Array of type {value.elem or 'Array'} where Array[{hint.elem}] "
                                "is expected")
        if target == "PackedStringArray" and isinstance(value, GDArray):
            out = PackedStringArray()
            for item in value:
                if not isinstance(item, str):
                    raise GDScriptError(f"{where}: PackedStringArray from an Array holding {type_name(item)}")
                out.append(item)
            return out
        if value is None and (isinstance(target, (GDClass, EngineClass)) or target == "Object"):
            return None
        if value is None and target == "Callable":
            raise GDScriptError(f"{where}: null where a Callable is expected")
        if not self.matches(value, hint, frame, where):
            raise GDScriptError(f"{where}: a value of type {type_name(value)} where {hint.text} is expected")
        return value

    def default_of(self, hint: TypeHint | None, frame: Frame) -> Any:
        if hint is None:
            return None
        defaults = {"int": 0, "float": 0.0, "bool": False, "String": ""}
        if hint.name in defaults:
            return defaults[hint.name]
        if hint.name == "Array":
            return GDArray(elem=hint.elem)
        if hint.name == "Dictionary":
            return GDDict()
        if hint.name == "PackedStringArray":
            return PackedStringArray()
        if hint.name == "PackedByteArray":
            return PackedByteArray()
        if hint.name == "Callable":
            return GDCallable()
        return None

    # --- calls ------------------------------------------------------------------------------

    def invoke(self, f: FuncDef, this: Any, args: list, where: Location, closure: dict | None = None) -> Any:
        cls = f.cls
        if len(args) > len(f.params):
            raise GDScriptError(f"{where}: too many arguments for {f.name}() ({len(args)} given)")
        frame = Frame(this, cls, f)
        if closure is not None:
            frame.locals.update(closure[0])
            frame.types.update(closure[1])
        for i, (pname, hint, default, inferred) in enumerate(f.params):
            fwhere = Location(cls.file, f.line)
            if i < len(args):
                value = args[i]
                node = None
            elif default is not None:
                value = self.eval(default, frame)
                node = default
            else:
                raise GDScriptError(f"{where}: too few arguments for {f.name}() ({len(args)} given)")
            if inferred:
                hint = self.hint_of(self.eval(default, frame)) if default is not None else None
            frame.types[pname] = hint
            frame.locals[pname] = self.convert(value, hint, frame, node, fwhere)
        self.depth += 1
        if self.depth > 1024:
            self.depth = 0
            raise GDScriptError(f"{where}: stack overflow (1024 calls deep, Godot's limit)")
        try:
            flow = self.exec_block(f.body, frame)
        finally:
            self.depth -= 1
        result = flow.value if isinstance(flow, _Flow) and flow.kind == "return" else None
        if f.ret is not None:
            rwhere = Location(cls.file, f.line)
            if f.ret.name == "void":
                if result is not None:
                    raise GDScriptError(f"{rwhere}: {f.name}() is void but returned a value")
                return None
            node = flow.node if isinstance(flow, _Return) else None
            if not (isinstance(flow, _Flow) and flow.kind == "return") and f.ret.name != "Variant":
                raise GDScriptError(f"{rwhere}: {f.name}() ended without returning a {f.ret}")
            result = self.convert(result, f.ret, frame, node, rwhere)
        return result

    def call_callable(self, c: GDCallable, args: list, where: Location) -> Any:
        if not isinstance(c, GDCallable):
            raise GDScriptError(f"{where}: call() on a {type_name(c)}")
        if not c.is_valid():
            raise GDScriptError(f"{where}: calling an invalid (null) Callable")
        full = list(args) + list(c.bound)
        if c.builtin is not None:
            return c.builtin(*full)
        return self.invoke(c.func, c.this, full, where, c.closure)

    # --- statements ---------------------------------------------------------------------------

    def exec_block(self, statements: list, frame: Frame) -> Any:
        for stmt in statements:
            flow = self.exec_stmt(stmt, frame)
            if flow is not None:
                return flow
        return None

    def exec_stmt(self, stmt: Any, frame: Frame) -> Any:
        if isinstance(stmt, Token):
            raise Unsupported(f"{Location(frame.file, stmt)}: statement token {stmt!r}")
        handler = self.statements.get(stmt.data)
        if handler is None:
            raise Unsupported(f"{Location(frame.file, stmt)}: statement {stmt.data}")
        return handler(self, stmt, frame)

    def _s_expr(self, stmt: Tree, frame: Frame) -> Any:
        node = stmt.children[0]
        inner = node.children[0] if isinstance(node, Tree) and node.data == "expr" else node
        if isinstance(inner, Tree) and inner.data == "assnmnt_expr":
            self.assign(inner, frame)
        else:
            self.eval(node, frame)
        return None

    def _s_var(self, stmt: Tree, frame: Frame) -> Any:
        decl = stmt.children[0]
        name, hint, node = self._decl_parts(decl)
        where = Location(frame.file, stmt)
        if name in frame.locals and frame.func is not None and name in [p[0] for p in frame.func.params]:
            raise GDScriptError(f"{where}: variable {name} shadows a parameter")
        if decl.data == "func_var_inf":
            self.check_inferable(node, frame, where, name)
        value = self.eval(node, frame) if node is not None else self.default_of(hint, frame)
        if decl.data == "func_var_inf":
            hint = self.hint_of(value)
        frame.types[name] = hint
        frame.locals[name] = self.convert(value, hint, frame, node, where)
        return None

    def check_inferable(self, node: Any, frame: Frame, where: Location, name: str) -> None:
        """Godot infers `:=` from the expression's static type: a Variant one is a compile error."""
        inner = node.children[0] if isinstance(node, Tree) and node.data == "expr" else node
        why = None
        if isinstance(inner, Tree) and inner.data == "getattr_call":
            method = str(inner.children[0].children[-1])
            if method in VARIANT_METHODS:
                why = f"{method}() returns a Variant"
        elif isinstance(inner, Tree) and inner.data == "standalone_call":
            f = self.find_func(frame.cls, str(inner.children[0]))
            if f is not None and (f.ret is None or f.ret.name == "Variant"):
                why = f"{f.name}() has no declared return type"
        elif isinstance(inner, Tree) and inner.data == "subscr_expr" and isinstance(inner.children[0], Token) \
                and inner.children[0].type == "NAME":
            container = self.lookup_name(str(inner.children[0]), frame, where)
            if isinstance(container, GDDict) or (isinstance(container, GDArray) and container.elem is None):
                why = f"an element of a {type_name(container)} is a Variant"
        elif isinstance(inner, Token) and inner.type == "NAME" and str(inner) in frame.locals \
                and frame.types.get(str(inner)) is None:
            why = f"{inner} is untyped"
        if why is not None:
            raise GDScriptError(f"{where}: cannot infer the type of {name} ({why}): Godot refuses this `:=`")

    def _s_const(self, stmt: Tree, frame: Frame) -> Any:
        name, hint, node = self._decl_parts(stmt.children[0])
        where = Location(frame.file, stmt)
        self.require_constant(node, where)
        value = self.freeze(self.convert(self.eval(node, frame), hint, frame, node, where))
        frame.types[name] = hint
        frame.locals[name] = value
        return None

    def _s_return(self, stmt: Tree, frame: Frame) -> Any:
        if not stmt.children:
            return _Return(None, None)
        node = stmt.children[0]
        return _Return(self.eval(node, frame), node)

    def _s_pass(self, stmt: Tree, frame: Frame) -> Any:
        return None

    def _s_break(self, stmt: Tree, frame: Frame) -> Any:
        return BREAK

    def _s_continue(self, stmt: Tree, frame: Frame) -> Any:
        return CONTINUE

    def _s_if(self, stmt: Tree, frame: Frame) -> Any:
        for branch in stmt.children:
            if branch.data == "else_branch":
                return self.exec_block(branch.children, frame)
            if truthy(self.eval(branch.children[0], frame)):
                return self.exec_block(branch.children[1:], frame)
        return None

    def _s_while(self, stmt: Tree, frame: Frame) -> Any:
        cond, body = stmt.children[0], stmt.children[1:]
        guard = 0
        while truthy(self.eval(cond, frame)):
            guard += 1
            if guard > 50_000_000:
                raise GDScriptError(f"{Location(frame.file, stmt)}: a while loop ran 50 million times")
            flow = self.exec_block(body, frame)
            if flow is BREAK:
                break
            if flow is CONTINUE:
                continue
            if flow is not None:
                return flow
        return None

    def _s_for(self, stmt: Tree, frame: Frame) -> Any:
        where = Location(frame.file, stmt)
        name = str(stmt.children[0])
        index = 1
        hint = None
        if stmt.data == "for_stmt_typed":
            hint = TypeHint(str(stmt.children[1]))
            index = 2
        iterable = self.eval(stmt.children[index], frame)
        body = stmt.children[index + 1:]
        if isinstance(iterable, bool) or iterable is None:
            raise GDScriptError(f"{where}: cannot iterate over {type_name(iterable)}")
        if isinstance(iterable, int):
            items: Any = range(iterable)
        elif isinstance(iterable, float):
            raise Unsupported(f"{where}: for over a float")
        elif isinstance(iterable, GDDict):
            items = iterable.keys()
        elif isinstance(iterable, (GDArray, PackedStringArray, PackedFloat32Array)):
            items = list(iterable)
        elif isinstance(iterable, PackedByteArray):
            items = list(iterable)
        elif isinstance(iterable, str):
            items = list(iterable)
        elif isinstance(iterable, range):
            items = iterable
        else:
            raise Unsupported(f"{where}: for over {type_name(iterable)}")
        had = name in frame.locals
        if hint is None:
            # Godot types the loop variable by its iterable: int over ints and ranges, the element
            # type of a typed Array, String over a String; otherwise it is a Variant.
            if isinstance(iterable, (int, range)):
                hint = TypeHint("int")
            elif isinstance(iterable, str):
                hint = TypeHint("String")
            elif isinstance(iterable, GDArray) and iterable.elem is not None:
                hint = iterable.elem
            loop_hint = hint
            hint = None
        else:
            loop_hint = hint
        for item in items:
            frame.types[name] = loop_hint
            frame.locals[name] = self.convert(item, hint, frame, None, where) if hint else item
            flow = self.exec_block(body, frame)
            if flow is BREAK:
                break
            if flow is CONTINUE:
                continue
            if flow is not None:
                return flow
        if not had:
            frame.locals.pop(name, None)
        return None

    def _s_unsupported(self, stmt: Tree, frame: Frame) -> Any:
        raise Unsupported(f"{Location(frame.file, stmt)}: {stmt.data}")

    def _s_annotation(self, stmt: Tree, frame: Frame) -> Any:
        self._check_annotation(stmt, Location(frame.file, stmt))
        return None

    statements: dict[str, Any] = {
        "expr_stmt": _s_expr,
        "func_var_stmt": _s_var,
        "const_stmt": _s_const,
        "return_stmt": _s_return,
        "pass_stmt": _s_pass,
        "break_stmt": _s_break,
        "continue_stmt": _s_continue,
        "if_stmt": _s_if,
        "while_stmt": _s_while,
        "for_stmt": _s_for,
        "for_stmt_typed": _s_for,
        "match_stmt": _s_unsupported,
        "breakpoint_stmt": _s_unsupported,
        "annotation": _s_annotation,
    }

    # --- assignment ---------------------------------------------------------------------------

    def assign(self, node: Tree, frame: Frame) -> None:
        target, op, value_node = node.children
        op = str(op)
        where = Location(frame.file, node)
        value = self.eval(value_node, frame)
        if op != "=":
            current = self.eval(target, frame)
            value = self.binary(op[:-1], current, value, where)
        self.store(target, value, frame, where, value_node if op == "=" else None)

    def store(self, target: Any, value: Any, frame: Frame, where: Location, node: Any) -> None:
        if isinstance(target, Token) and target.type == "NAME":
            name = str(target)
            if name in frame.locals:
                frame.locals[name] = self.convert(value, frame.types.get(name), frame, node, where)
                return
            self.store_member(frame.this, frame.cls, name, value, frame, where, node, implicit=True)
            return
        if isinstance(target, Tree) and target.data == "subscr_expr":
            container = self.eval(target.children[0], frame)
            key = self.eval(target.children[1], frame)
            self.set_index(container, key, value, where)
            return
        if isinstance(target, Tree) and target.data == "getattr":
            base = self.eval_getattr_prefix(target, frame)
            self.store_member(base, None, str(target.children[-1]), value, frame, where, node)
            return
        raise Unsupported(f"{where}: assignment to {getattr(target, 'data', target)}")

    def store_member(self, obj: Any, cls: GDClass | None, name: str, value: Any, frame: Frame, where: Location,
                     node: Any, implicit: bool = False) -> None:
        if isinstance(obj, EngineObject) and hasattr(obj.state.get("fake"), "set_property"):
            obj.state["fake"].set_property(name, value, where)
            return
        if isinstance(obj, GDObject) and (name in obj.fields):
            obj.fields[name] = self.convert(value, obj.types.get(name), frame, node, where)
            return
        owner = cls if implicit else (obj if isinstance(obj, GDClass) else None)
        c: Any = owner if owner is not None else (obj.cls if isinstance(obj, GDObject) else None)
        while isinstance(c, GDClass):
            if name in c.static_vars:
                c.static_vars[name] = self.convert(value, c.static_types.get(name), frame, node, where)
                return
            if name in c.instance_var_names:
                raise GDScriptError(f"{where}: cannot use the instance variable {name} in a static function")
            if name in c.const_nodes:
                raise GDScriptError(f"{where}: cannot assign to the constant {name}")
            c = c.extends
        raise GDScriptError(f"{where}: identifier {name} not declared in the current scope")

    def set_index(self, container: Any, key: Any, value: Any, where: Location) -> None:
        if isinstance(container, GDDict):
            container.set(key, value, str(where))
        elif isinstance(container, (GDArray, PackedStringArray, PackedFloat32Array)):
            if getattr(container, "read_only", False):
                raise GDScriptError(f"{where}: Invalid assignment on read-only Array")
            i = self.index_of(container, key, where)
            if isinstance(container, GDArray) and container.elem is not None:
                value = self.convert(value, container.elem, Frame(None, GDClass("", "", None), None), None, where)
            container[i] = value
        elif isinstance(container, PackedByteArray):
            i = self.index_of(container, key, where)
            if not isinstance(value, int) or isinstance(value, bool):
                raise GDScriptError(f"{where}: PackedByteArray takes ints")
            container[i] = value & 0xFF
        else:
            raise GDScriptError(f"{where}: cannot index-assign into {type_name(container)}")

    def index_of(self, container: Any, key: Any, where: Location) -> int:
        if not isinstance(key, int) or isinstance(key, bool):
            raise GDScriptError(f"{where}: index of type {type_name(key)} into {type_name(container)}")
        i = key + len(container) if key < 0 else key
        if not 0 <= i < len(container):
            raise GDScriptError(f"{where}: index {key} out of bounds (size {len(container)})")
        return i

    # --- expressions --------------------------------------------------------------------------

    def eval(self, node: Any, frame: Frame) -> Any:
        if isinstance(node, Token):
            return self.eval_token(node, frame)
        handler = self.expressions.get(node.data)
        if handler is None:
            raise Unsupported(f"{Location(frame.file, node)}: expression {node.data}")
        return handler(self, node, frame)

    def eval_token(self, token: Token, frame: Frame) -> Any:
        kind = token.type
        if kind == "NAME":
            name = token.value
            if name in frame.locals:
                return frame.locals[name]
            return self.lookup_name(name, frame, Location(frame.file, token.line or 0))
        where = Location(frame.file, token.line or 0)
        if kind in ("NUMBER", "HEX", "BIN"):
            cached = self.literals.get(id(token), MISSING)
            if cached is MISSING:
                cached = self.literals[id(token)] = number_literal(str(token), str(where))
            return cached
        raise Unsupported(f"{where}: token {kind} {token!r}")

    def _e_expr(self, node: Tree, frame: Frame) -> Any:
        inner = node.children[0]
        if isinstance(inner, Tree) and inner.data == "assnmnt_expr":
            raise Unsupported(f"{Location(frame.file, node)}: assignment used as a value")
        return self.eval(inner, frame)

    def _e_par(self, node: Tree, frame: Frame) -> Any:
        return self.eval(node.children[0], frame)

    def _e_string(self, node: Tree, frame: Frame) -> Any:
        token = node.children[0]
        return string_literal(token, str(Location(frame.file, token.line or 0)))

    def _e_rstring(self, node: Tree, frame: Frame) -> Any:
        text = str(node.children[0])[1:]
        return text[3:-3] if text.startswith(('"""', "'''")) else text[1:-1]

    def _e_array(self, node: Tree, frame: Frame) -> Any:
        return GDArray(self.eval(c, frame) for c in node.children
                       if not (isinstance(c, Tree) and c.data == "trailing_comma"))

    def _e_dict(self, node: Tree, frame: Frame) -> Any:
        out = GDDict()
        where = Location(frame.file, node)
        for element in node.children:
            if isinstance(element, Tree) and element.data == "trailing_comma":
                continue
            if element.data == "c_dict_element":
                key = self.eval(element.children[0], frame)
            else:
                key = str(element.children[0])
            if out.has(key):
                raise GDScriptError(f"{where}: duplicate key {key!r} in a Dictionary literal")
            out.set(key, self.eval(element.children[1], frame), str(where))
        return out

    def _e_ternary(self, node: Tree, frame: Frame) -> Any:
        value, _if, cond, _else, other = node.children
        return self.eval(value, frame) if truthy(self.eval(cond, frame)) else self.eval(other, frame)

    def _e_or(self, node: Tree, frame: Frame) -> Any:
        operands = node.children[0::2]
        for operand in operands:
            if truthy(self.eval(operand, frame)):
                return True
        return False

    def _e_and(self, node: Tree, frame: Frame) -> Any:
        operands = node.children[0::2]
        for operand in operands:
            if not truthy(self.eval(operand, frame)):
                return False
        return True

    def _e_not(self, node: Tree, frame: Frame) -> Any:
        return not truthy(self.eval(node.children[1], frame))

    def _e_neg(self, node: Tree, frame: Frame) -> Any:
        value = self.eval(node.children[1], frame)
        where = Location(frame.file, node)
        if isinstance(value, bool) or not is_number(value):
            raise GDScriptError(f"{where}: unary - on {type_name(value)}")
        return check_int(-value, str(where)) if isinstance(value, int) else -value

    def _e_bitnot(self, node: Tree, frame: Frame) -> Any:
        value = self.eval(node.children[1], frame)
        if not isinstance(value, int) or isinstance(value, bool):
            raise GDScriptError(f"{Location(frame.file, node)}: ~ on {type_name(value)}")
        return ~value

    def _e_binary_chain(self, node: Tree, frame: Frame) -> Any:
        children = node.children
        where = Location(frame.file, node)
        value = self.eval(children[0], frame)
        i = 1
        while i < len(children):
            op = children[i]
            if isinstance(op, Tree) and op.data == "not_in_op":
                op_text = "not in"
            else:
                op_text = str(op)
            right = self.eval(children[i + 1], frame)
            value = self.binary(op_text, value, right, where)
            i += 2
        return value

    def _e_type_test(self, node: Tree, frame: Frame) -> Any:
        where = Location(frame.file, node)
        value = self.eval(node.children[0], frame)
        i = 1
        while i < len(node.children):
            op = str(node.children[i])
            hint = TypeHint(str(node.children[i + 1]))
            result = self.matches(value, hint, frame, where)
            value = (not result) if op.replace(" ", "") == "isnot" else result
            i += 2
        return value

    def _e_cast(self, node: Tree, frame: Frame) -> Any:
        where = Location(frame.file, node)
        value = self.eval(node.children[0], frame)
        hint = TypeHint(str(node.children[2]))
        target = self.resolve_hint(hint, frame, where)
        if self.matches(value, hint, frame, where):
            return value
        if isinstance(target, (GDClass, EngineClass)):
            return None
        if target in ("int", "float") and is_number(value):
            return self.convert(value, hint, frame, None, where)
        raise GDScriptError(f"{where}: cannot cast {type_name(value)} as {hint.text}")

    def _e_await(self, node: Tree, frame: Frame) -> Any:
        children = [c for c in node.children if not (isinstance(c, Token) and str(c) == "await")]
        value = self.eval(children[0], frame)
        if isinstance(value, Signal):
            return self.await_signal(value, Location(frame.file, node))
        return value

    def await_signal(self, signal: Signal, where: Location) -> Any:
        owner = signal.owner
        waiter = getattr(owner.state.get("fake"), "awaited", None) if isinstance(owner, EngineObject) else None
        if isinstance(owner, GDObject) and owner.engine is not None and hasattr(owner.engine, "awaited"):
            waiter = owner.engine.awaited
        if waiter is None:
            raise NotExecuted(f"{where}: await on the signal {signal.name}: engine signals are not executed")
        return waiter(signal.name, where)

    def _e_lambda(self, node: Tree, frame: Frame) -> Any:
        header = node.children[0]
        parts = header.children
        name = "<lambda>"
        if parts and isinstance(parts[0], Token) and parts[0].type == "NAME":
            name = str(parts[0])
            parts = parts[1:]
        params, ret = self._signature(parts, frame.cls)
        f = FuncDef(name, frame.this is None, params, ret, node.children[1:], frame.cls, line_of(node), True)
        # Godot lambdas capture the enclosing locals by value when they are created.
        closure = (dict(frame.locals), dict(frame.types))
        return GDCallable(f, frame.this, (), closure)

    def _e_subscr(self, node: Tree, frame: Frame) -> Any:
        container = self.eval(node.children[0], frame)
        key = self.eval(node.children[1], frame)
        where = Location(frame.file, node)
        return self.index(container, key, where)

    def index(self, container: Any, key: Any, where: Location) -> Any:
        if isinstance(container, GDDict):
            if not container.has(key):
                raise GDScriptError(f"{where}: Invalid access to key {key!r} of a Dictionary")
            return container.get(key)
        if isinstance(container, str):
            return container[self.index_of(container, key, where)]
        if isinstance(container, (GDArray, PackedStringArray, PackedByteArray, PackedFloat32Array)):
            return container[self.index_of(container, key, where)]
        if isinstance(container, GDObject):
            if isinstance(key, str) and key in container.fields:
                return container.fields[key]
        raise GDScriptError(f"{where}: cannot index {type_name(container)}")

    def eval_getattr_prefix(self, node: Tree, frame: Frame) -> Any:
        """The object of `a.b.c` before its last member."""
        children = [c for c in node.children if not (isinstance(c, Token) and c.type == "DOT")]
        where = Location(frame.file, node)
        value = self.eval(children[0], frame)
        for part in children[1:-1]:
            value = self.get_member(value, str(part), where)
        return value

    def _e_getattr(self, node: Tree, frame: Frame) -> Any:
        base = self.eval_getattr_prefix(node, frame)
        return self.get_member(base, str(node.children[-1]), Location(frame.file, node))

    def _e_standalone_call(self, node: Tree, frame: Frame) -> Any:
        name = str(node.children[0])
        where = Location(frame.file, node)
        if name == "preload":
            args = [self.eval(a, frame) for a in node.children[1:]]
            if len(args) != 1 or not isinstance(args[0], str):
                raise GDScriptError(f"{where}: preload() takes a path")
            path = args[0]
            if path.startswith("res://"):
                raise Unsupported(f"{where}: res:// paths (a module preloads its runtime by a relative path)")
            return self.load(Path(frame.cls.file).parent / path)
        args = [self.eval(a, frame) for a in node.children[1:] if not (isinstance(a, Tree) and a.data == "trailing_comma")]
        if name in frame.locals:
            raise GDScriptError(f"{where}: {name} is a variable: call a Callable with {name}.call()")
        f = None
        c: Any = frame.cls
        while isinstance(c, GDClass):
            if name in c.funcs:
                f = c.funcs[name]
                break
            c = c.extends
        if f is not None:
            if not f.static and frame.this is None:
                raise GDScriptError(f"{where}: cannot call the non-static function {name}() from a static function")
            return self.invoke(f, None if f.static else frame.this, args, where)
        if isinstance(frame.this, GDObject) and frame.this.engine is not None and hasattr(frame.this.engine, name):
            return getattr(frame.this.engine, name)(*args)
        if name in GLOBAL_FUNCTIONS:
            return GLOBAL_FUNCTIONS[name](self, where, *args)
        if name in BUILTIN_CONSTRUCTORS:
            return BUILTIN_CONSTRUCTORS[name](self, where, *args)
        outer = frame.cls.outer
        while outer is not None:
            if name in outer.funcs:
                raise GDScriptError(f"{where}: {name}() is a function of an outer class: an inner class cannot "
                                    "call it (Godot resolves only constants and classes outside)")
            outer = outer.outer
        raise GDScriptError(f"{where}: function {name}() not found")

    def _e_getattr_call(self, node: Tree, frame: Frame) -> Any:
        callee = node.children[0]
        where = Location(frame.file, node)
        args = [self.eval(a, frame) for a in node.children[1:] if not (isinstance(a, Tree) and a.data == "trailing_comma")]
        base = self.eval_getattr_prefix(callee, frame)
        return self.call_method(base, str(callee.children[-1]), args, where)

    expressions: dict[str, Any] = {
        "expr": _e_expr,
        "par_expr": _e_par,
        "string": _e_string,
        "rstring": _e_rstring,
        "array": _e_array,
        "dict": _e_dict,
        "test_expr": _e_ternary,
        "asless_test_expr": _e_ternary,
        "or_test": _e_or,
        "asless_or_test": _e_or,
        "and_test": _e_and,
        "asless_and_test": _e_and,
        "asless_actual_not_test": _e_not,
        "asless_actual_neg_expr": _e_neg,
        "asless_actual_bitw_not": _e_bitnot,
        "content_test": _e_binary_chain,
        "asless_content_test": _e_binary_chain,
        "comparison": _e_binary_chain,
        "asless_comparison": _e_binary_chain,
        "bitw_or": _e_binary_chain,
        "asless_bitw_or": _e_binary_chain,
        "bitw_xor": _e_binary_chain,
        "asless_bitw_xor": _e_binary_chain,
        "bitw_and": _e_binary_chain,
        "asless_bitw_and": _e_binary_chain,
        "shift_expr": _e_binary_chain,
        "asless_shift_expr": _e_binary_chain,
        "arith_expr": _e_binary_chain,
        "asless_arith_expr": _e_binary_chain,
        "mdr_expr": _e_binary_chain,
        "asless_mdr_expr": _e_binary_chain,
        "pow_expr": _e_binary_chain,
        "asless_pow_expr": _e_binary_chain,
        "type_test": _e_type_test,
        "asless_type_test": _e_type_test,
        "actual_type_cast": _e_cast,
        "await_expr": _e_await,
        "lambda": _e_lambda,
        "subscr_expr": _e_subscr,
        "getattr": _e_getattr,
        "standalone_call": _e_standalone_call,
        "getattr_call": _e_getattr_call,
    }

    # --- operators --------------------------------------------------------------------------

    def binary(self, op: str, a: Any, b: Any, where: Location) -> Any:
        w = where
        if op in ("==", "!="):
            if not comparable_types(a, b):
                raise GDScriptError(f"{w}: Invalid operands '{type_name(a)}' and '{type_name(b)}' in operator '{op}'")
            equal = values_equal(a, b)
            return equal if op == "==" else not equal
        if op in ("in", "not in"):
            result = self.contains(b, a, where)
            return result if op == "in" else not result
        if op in ("<", ">", "<=", ">="):
            ok = (is_number(a) and is_number(b)) or (isinstance(a, str) and isinstance(b, str))
            if not ok:
                raise GDScriptError(f"{w}: Invalid operands '{type_name(a)}' and '{type_name(b)}' in operator '{op}'")
            return {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]
        if op == "+":
            if isinstance(a, str) and isinstance(b, str):
                return a + b
            if isinstance(a, GDArray) and isinstance(b, GDArray):
                return GDArray(list(a) + list(b))
        if op == "%" and isinstance(a, str):
            raise Unsupported(f"{w}: String formatting with %")
        if not (is_number(a) and is_number(b)):
            raise GDScriptError(f"{w}: Invalid operands '{type_name(a)}' and '{type_name(b)}' in operator '{op}'")
        both_int = isinstance(a, int) and isinstance(b, int)
        if op in ("&", "|", "^", "<<", ">>"):
            if not both_int:
                raise GDScriptError(f"{w}: Invalid operands '{type_name(a)}' and '{type_name(b)}' in operator '{op}'")
            if op == "&":
                return a & b
            if op == "|":
                return a | b
            if op == "^":
                return a ^ b
            if b < 0 or b > 63:
                raise GDScriptError(f"{w}: shift by {b}")
            if op == "<<":
                return check_int(a << b, w)
            return a >> b
        if op == "+":
            return check_int(a + b, w) if both_int else float(a) + float(b)
        if op == "-":
            return check_int(a - b, w) if both_int else float(a) - float(b)
        if op == "*":
            return check_int(a * b, w) if both_int else float(a) * float(b)
        if op == "/":
            if both_int:
                if b == 0:
                    raise GDScriptError(f"{w}: Division by zero error in operator '/'")
                q = abs(a) // abs(b)
                return check_int(q if (a >= 0) == (b >= 0) else -q, w)
            if float(b) == 0.0:
                return math.copysign(math.inf, float(a)) if a != 0 else math.nan
            return float(a) / float(b)
        if op == "%":
            if both_int:
                if b == 0:
                    raise GDScriptError(f"{w}: Modulo by zero error in operator '%'")
                r = abs(a) % abs(b)
                return r if a >= 0 else -r
            return math.fmod(float(a), float(b))
        if op == "**":
            if both_int:
                return check_int(a**b, w) if b >= 0 else float(a) ** b
            return float(a) ** float(b)
        raise Unsupported(f"{w}: operator {op}")

    def contains(self, container: Any, item: Any, where: Location) -> bool:
        if isinstance(container, GDDict):
            return container.has(item)
        if isinstance(container, str):
            if not isinstance(item, str):
                raise GDScriptError(f"{where}: 'in' a String needs a String")
            return item in container
        if isinstance(container, (GDArray, PackedStringArray, PackedFloat32Array, PackedByteArray)):
            return any(comparable_types(item, x) and values_equal(item, x) for x in container)
        raise GDScriptError(f"{where}: Invalid operands for 'in': {type_name(container)}")

    # --- names and members ------------------------------------------------------------------

    def lookup_name(self, name: str, frame: Frame, where: Location) -> Any:
        if name in frame.locals:
            return frame.locals[name]
        if name == "self":
            if frame.this is None:
                raise GDScriptError(f"{where}: self in a static function")
            return frame.this
        c: Any = frame.cls
        while isinstance(c, GDClass):
            found = self.class_member(c, name, frame.this, where, own=True)
            if found is not MISSING:
                return found
            c = c.extends
        if isinstance(frame.this, GDObject) and name in frame.this.fields:
            return frame.this.fields[name]
        outer = frame.cls.outer
        while outer is not None:
            c = outer
            while isinstance(c, GDClass):
                if name in c.const_nodes:
                    return self.const_value(c, name)
                if name in c.classes:
                    return c.classes[name]
                if name in c.funcs or name in c.static_vars or name in c.instance_var_names:
                    raise GDScriptError(f"{where}: {name} belongs to an outer class: an inner class sees only its "
                                        "outer classes' constants and classes")
                c = c.extends
            outer = outer.outer
        if name in GLOBAL_CONSTANTS:
            return GLOBAL_CONSTANTS[name]
        if name in ENGINE_CLASSES or name in BUILTIN_CONSTRUCTORS or name in ("String",):
            return EngineClass(name)
        raise GDScriptError(f"{where}: identifier {name} not declared in the current scope")

    def class_member(self, c: GDClass, name: str, this: Any, where: Location, own: bool) -> Any:
        if name in c.const_nodes:
            return self.const_value(c, name)
        if name in c.static_vars:
            return c.static_vars[name]
        if name in c.classes:
            return c.classes[name]
        if name in c.funcs:
            f = c.funcs[name]
            if f.static:
                return GDCallable(f, None)
            if this is None:
                raise GDScriptError(f"{where}: the non-static function {name} used in a static context")
            return GDCallable(f, this)
        if name in c.instance_var_names:
            if not isinstance(this, GDObject):
                raise GDScriptError(f"{where}: the instance variable {name} used in a static context")
            return this.fields[name]
        if name in c.signals:
            if this is None:
                raise GDScriptError(f"{where}: the signal {name} used in a static context")
            return Signal(this, name)
        return MISSING

    def get_member(self, base: Any, name: str, where: Location) -> Any:
        if isinstance(base, GDObject):
            if name in base.fields:
                return base.fields[name]
            c: Any = base.cls
            while isinstance(c, GDClass):
                found = self.class_member(c, name, base, where, own=False)
                if found is not MISSING:
                    return found
                c = c.extends
            if base.engine is not None and hasattr(base.engine, "member"):
                return base.engine.member(name, where)
            raise GDScriptError(f"{where}: Invalid access to property or key {name!r} on {base.cls.name}")
        if isinstance(base, GDClass):
            if name in base.instance_var_names:
                raise GDScriptError(f"{where}: {base.name}.{name} is an instance variable")
            c = base
            while isinstance(c, GDClass):
                found = self.class_member(c, name, None, where, own=False)
                if found is not MISSING:
                    return found
                c = c.extends
            raise GDScriptError(f"{where}: {base.name} has no member {name}")
        if isinstance(base, EngineClass):
            key = f"{base.name}.{name}"
            if key in ENGINE_CONSTANTS:
                return ENGINE_CONSTANTS[key]
            fake = self.engine.get(base.name)
            if fake is not None and hasattr(fake, "constant"):
                return fake.constant(name, where)
            raise NotExecuted(f"{where}: {key} (engine class {base.name} is not executed here)")
        if isinstance(base, GDCallable) or isinstance(base, (str, GDArray, GDDict)):
            if name in BUILTIN_METHODS.get(type_name(base), {}):
                method = BUILTIN_METHODS[type_name(base)][name]
                return GDCallable(builtin=lambda *a: method(self, where, base, *a), name=name)
        if isinstance(base, EngineObject) and name in ENGINE_OBJECT_PROPERTIES.get(base.cls, ()):
            return base.state[name]
        if isinstance(base, EngineObject) and hasattr(base.state.get("fake"), "member"):
            return base.state["fake"].member(name, where)
        raise GDScriptError(f"{where}: Invalid access to property {name!r} on a {type_name(base)}")

    def call_method(self, base: Any, name: str, args: list, where: Location) -> Any:
        if isinstance(base, GDObject):
            f = self.find_func(base.cls, name)
            if f is not None:
                return self.invoke(f, None if f.static else base, args, where)
            if name in base.fields and isinstance(base.fields[name], GDCallable):
                raise GDScriptError(f"{where}: {name} is a variable: use {name}.call()")
            if base.engine is not None and hasattr(base.engine, name):
                return getattr(base.engine, name)(*args)
            if name in base.cls.signals or self._signal_of(base.cls, name):
                raise GDScriptError(f"{where}: {name} is a signal")
            raise GDScriptError(f"{where}: Invalid call. Nonexistent function {name!r} in {base.cls.name}")
        if isinstance(base, GDClass):
            if name == "new":
                return self.instantiate(base, args, where)
            f = self.find_func(base, name)
            if f is None:
                raise GDScriptError(f"{where}: {base.name} has no function {name}")
            if not f.static:
                raise GDScriptError(f"{where}: {base.name}.{name}() is not static")
            return self.invoke(f, None, args, where)
        if isinstance(base, Signal):
            if name == "emit":
                owner = base.owner
                listener = getattr(owner.engine, "emitted", None) if isinstance(owner, GDObject) and owner.engine else None
                if listener is not None:
                    listener(base.name, args)
                return None
            raise Unsupported(f"{where}: Signal.{name}")
        if isinstance(base, EngineClass):
            static = ENGINE_STATICS.get(f"{base.name}.{name}")
            if static is not None:
                return static(self, where, *args)
            fake = self.engine.get(base.name)
            if fake is not None and hasattr(fake, "static_" + name):
                return getattr(fake, "static_" + name)(*args)
            raise NotExecuted(f"{where}: {base.name}.{name}() (engine class {base.name} is not executed here)")
        methods = BUILTIN_METHODS.get(type_name(base))
        if isinstance(base, EngineObject):
            methods = ENGINE_METHODS.get(base.cls)
            if hasattr(base.state.get("fake"), name):
                return getattr(base.state["fake"], name)(*args)
        if methods is None or name not in methods:
            raise Unsupported(f"{where}: method {type_name(base) if not isinstance(base, EngineObject) else base.cls}.{name}()")
        return methods[name](self, where, base, *args)

    def _signal_of(self, cls: GDClass, name: str) -> bool:
        c: Any = cls
        while isinstance(c, GDClass):
            if name in c.signals:
                return True
            c = c.extends
        return False


class _Return(_Flow):
    __slots__ = ("node",)

    def __init__(self, value: Any, node: Any):
        super().__init__("return", value)
        self.node = node


# ----- builtins -------------------------------------------------------------------------------


def _need(where: Location, value: Any, *types: type, what: str = "") -> None:
    if isinstance(value, bool) and bool not in types:
        raise GDScriptError(f"{where}: expected {what or types[0].__name__}, got bool")
    if not isinstance(value, types):
        raise GDScriptError(f"{where}: expected {what or '/'.join(t.__name__ for t in types)}, got {type_name(value)}")


def _g_str(it: Interpreter, where: Location, *args: Any) -> str:
    out = []
    for value in args:
        if isinstance(value, float):
            raise Unsupported(f"{where}: str() of a float (Godot's float formatting is not modelled)")
        if isinstance(value, bool):
            out.append("true" if value else "false")
        elif value is None:
            out.append("<null>")
        elif isinstance(value, (int, str)):
            out.append(str(value))
        else:
            raise Unsupported(f"{where}: str() of a {type_name(value)}")
    return "".join(out)


def _g_int(it: Interpreter, where: Location, value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value) or not (-2.0**63 <= value < 2.0**63):
            raise GDScriptError(f"{where}: int() of {value}")
        return int(value)
    raise Unsupported(f"{where}: int() of a {type_name(value)}")


def _g_float(it: Interpreter, where: Location, value: Any) -> float:
    if is_number(value):
        return float(value)
    raise Unsupported(f"{where}: float() of a {type_name(value)}")


def _g_range(it: Interpreter, where: Location, *args: Any) -> range:
    for a in args:
        _need(where, a, int)
    if len(args) == 3 and args[2] == 0:
        raise GDScriptError(f"{where}: range() step 0")
    return range(*args)


def _numeric(f: PyCallable) -> PyCallable:
    def run(it: Interpreter, where: Location, *args: Any) -> Any:
        for a in args:
            if not is_number(a):
                raise GDScriptError(f"{where}: expected a number, got {type_name(a)}")
        return f(*args)
    return run


def _ints(f: PyCallable) -> PyCallable:
    def run(it: Interpreter, where: Location, *args: Any) -> Any:
        for a in args:
            _need(where, a, int)
        return f(*args)
    return run


def _floats(f: PyCallable) -> PyCallable:
    def run(it: Interpreter, where: Location, *args: Any) -> Any:
        for a in args:
            if not is_number(a):
                raise GDScriptError(f"{where}: expected a number, got {type_name(a)}")
        return f(*[float(a) for a in args])
    return run


def _g_typeof(it: Interpreter, where: Location, value: Any) -> int:
    return TYPE_IDS.get(type_name(value), 24)


def _g_type_string(it: Interpreter, where: Location, type_id: int) -> str:
    return TYPE_NAMES_BY_ID.get(type_id, "Object")


def _g_push_error(it: Interpreter, where: Location, *args: Any) -> None:
    it.errors = getattr(it, "errors", [])
    it.errors.append("".join(a if isinstance(a, str) else repr(a) for a in args))


def _g_print(it: Interpreter, where: Location, *args: Any) -> None:
    print(*args)


def _g_randf(it: Interpreter, where: Location) -> float:
    import random
    return random.random()


def _g_char(it: Interpreter, where: Location, code: int) -> str:
    _need(where, code, int)
    return chr(code)


def _g_error_string(it: Interpreter, where: Location, code: int) -> str:
    return f"error {code}"


def _g_floor(it: Interpreter, where: Location, x: Any) -> Any:
    if isinstance(x, int) and not isinstance(x, bool):
        return x
    return float(math.floor(x))


def _g_min_max(pick: PyCallable) -> PyCallable:
    def run(it: Interpreter, where: Location, *args: Any) -> Any:
        for a in args:
            if not is_number(a):
                raise GDScriptError(f"{where}: min/max of a {type_name(a)}")
        value = pick(args)
        return float(value) if any(isinstance(a, float) for a in args) else value
    return run


GLOBAL_FUNCTIONS: dict[str, PyCallable] = {
    "str": _g_str,
    "int": _g_int,
    "float": _g_float,
    "range": _g_range,
    "typeof": _g_typeof,
    "type_string": _g_type_string,
    "len": lambda it, where, v: len(v),
    "abs": _numeric(lambda x: abs(x)),
    "absi": _ints(lambda x: abs(x)),
    "absf": _floats(lambda x: abs(x)),
    "mini": _ints(lambda *a: min(a)),
    "maxi": _ints(lambda *a: max(a)),
    "minf": _floats(lambda *a: min(a)),
    "maxf": _floats(lambda *a: max(a)),
    "min": _g_min_max(min),
    "max": _g_min_max(max),
    "floor": _g_floor,
    "floorf": _floats(lambda x: float(math.floor(x))),
    "floori": _floats(lambda x: int(math.floor(x))),
    "ceil": _floats(lambda x: float(math.ceil(x))),
    "pow": _floats(lambda x, y: math.pow(x, y)),
    "is_finite": _floats(lambda x: math.isfinite(x)),
    "is_nan": _floats(lambda x: math.isnan(x)),
    "is_inf": _floats(lambda x: math.isinf(x)),
    "randf": _g_randf,
    "char": _g_char,
    "push_error": _g_push_error,
    "print": _g_print,
    "error_string": _g_error_string,
}

GLOBAL_CONSTANTS: dict[str, Any] = {
    "TYPE_NIL": 0, "TYPE_BOOL": 1, "TYPE_INT": 2, "TYPE_FLOAT": 3, "TYPE_STRING": 4, "TYPE_OBJECT": 24,
    "TYPE_CALLABLE": 25, "TYPE_SIGNAL": 26, "TYPE_DICTIONARY": 27, "TYPE_ARRAY": 28,
    "TYPE_PACKED_BYTE_ARRAY": 29, "TYPE_PACKED_FLOAT32_ARRAY": 32, "TYPE_PACKED_STRING_ARRAY": 34,
    "OK": 0, "FAILED": 1, "INF": math.inf, "NAN": math.nan, "PI": math.pi,
    "true": True, "false": False, "null": None,
}

# Methods whose result Godot types as Variant: `var x := d.get("k")` does not compile.
VARIANT_METHODS = {"get", "call", "callv", "pop_back", "pop_front", "back", "front", "pick_random"}

ENGINE_CLASSES = {
    "RefCounted", "Object", "Node", "RegEx", "RegExMatch", "Crypto", "Time", "HTTPRequest", "HTTPClient",
    "FileAccess", "DirAccess", "Resource",
}

ENGINE_CONSTANTS: dict[str, Any] = {}


def _c_packed_string_array(it: Interpreter, where: Location, *args: Any) -> PackedStringArray:
    out = PackedStringArray()
    for a in args:
        for item in a:
            _need(where, item, str)
            out.append(item)
    return out


def _c_packed_byte_array(it: Interpreter, where: Location, *args: Any) -> PackedByteArray:
    return PackedByteArray(*[bytes(a) for a in args])


def _c_packed_float32_array(it: Interpreter, where: Location, source: Any = ()) -> PackedFloat32Array:
    out = PackedFloat32Array()
    for x in source:
        if not is_number(x):
            raise GDScriptError(f"{where}: PackedFloat32Array of a {type_name(x)}")
        try:
            out.append(struct.unpack("<f", struct.pack("<f", float(x)))[0])
        except OverflowError:
            out.append(math.copysign(math.inf, x))
    return out


def _c_callable(it: Interpreter, where: Location, *args: Any) -> GDCallable:
    if args:
        raise Unsupported(f"{where}: Callable(object, name)")
    return GDCallable()


def _c_array(it: Interpreter, where: Location, *args: Any) -> GDArray:
    if args:
        raise Unsupported(f"{where}: Array(...) with arguments")
    return GDArray()


def _c_dictionary(it: Interpreter, where: Location, *args: Any) -> GDDict:
    if args:
        raise Unsupported(f"{where}: Dictionary(...) with arguments")
    return GDDict()


BUILTIN_CONSTRUCTORS: dict[str, PyCallable] = {
    "PackedStringArray": _c_packed_string_array,
    "PackedByteArray": _c_packed_byte_array,
    "PackedFloat32Array": _c_packed_float32_array,
    "Callable": _c_callable,
    "Array": _c_array,
    "Dictionary": _c_dictionary,
}


# String methods -----------------------------------------------------------------------------


def _s_substr(it: Interpreter, where: Location, s: str, start: int, length: int = -1) -> str:
    _need(where, start, int)
    _need(where, length, int)
    if start < 0:
        start = max(0, len(s) + start)
    return s[start:] if length < 0 else s[start:start + length]


def _s_find(it: Interpreter, where: Location, s: str, what: str, start: int = 0) -> int:
    _need(where, what, str)
    return s.find(what, start)


def _s_findn(it: Interpreter, where: Location, s: str, what: str, start: int = 0) -> int:
    _need(where, what, str)
    return s.lower().find(what.lower(), start)


def _s_split(it: Interpreter, where: Location, s: str, delimiter: str = "", allow_empty: bool = True,
             maxsplit: int = 0) -> PackedStringArray:
    if delimiter == "":
        raise Unsupported(f"{where}: split() without a delimiter")
    parts = s.split(delimiter, maxsplit) if maxsplit > 0 else s.split(delimiter)
    return PackedStringArray(p for p in parts if allow_empty or p != "")


def _s_join(it: Interpreter, where: Location, s: str, parts: Any) -> str:
    if not isinstance(parts, PackedStringArray):
        raise GDScriptError(f"{where}: join() takes a PackedStringArray, not a {type_name(parts)} "
                            "(Godot's analyzer may refuse the conversion: make one with PackedStringArray(...))")
    for p in parts:
        if not isinstance(p, str):
            raise GDScriptError(f"{where}: join() of a {type_name(p)}")
    return s.join(parts)


def _s_unicode_at(it: Interpreter, where: Location, s: str, i: int) -> int:
    return ord(s[it.index_of(s, i, where)])


def _s_to_int(it: Interpreter, where: Location, s: str) -> int:
    m = re.match(r"\s*([+-]?\d+)", s)
    if not m:
        return 0
    value = int(m.group(1))
    if value > INT64_MAX or value < INT64_MIN:
        raise GDScriptError(f"{where}: String.to_int() of {s!r} overflows 64 bits")
    return value


def _s_to_float(it: Interpreter, where: Location, s: str) -> float:
    m = re.match(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", s)
    return float(m.group(0)) if m else 0.0


def _s_is_valid_hex_number(it: Interpreter, where: Location, s: str, with_prefix: bool = False) -> bool:
    body = s[1:] if s[:1] in "+-" and s else s
    if with_prefix:
        if not body.startswith("0x"):
            return False
        body = body[2:]
    return re.fullmatch(r"[0-9a-fA-F]+", body) is not None


def _s_hex_to_int(it: Interpreter, where: Location, s: str) -> int:
    body = s[2:] if s.startswith("0x") else s
    if not re.fullmatch(r"[0-9a-fA-F]+", body):
        raise GDScriptError(f"{where}: hex_to_int() of {s!r}")
    return int(body, 16)


def _s_uri_encode(it: Interpreter, where: Location, s: str) -> str:
    from urllib.parse import quote
    return quote(s, safe="-_.~")


def _s_path_join(it: Interpreter, where: Location, s: str, file: str) -> str:
    return (s if s.endswith("/") else s + "/") + file


STRING_METHODS: dict[str, PyCallable] = {
    "length": lambda it, w, s: len(s),
    "is_empty": lambda it, w, s: s == "",
    "substr": _s_substr,
    "begins_with": lambda it, w, s, p: s.startswith(p),
    "ends_with": lambda it, w, s, p: s.endswith(p),
    "find": _s_find,
    "findn": _s_findn,
    "rfind": lambda it, w, s, what: s.rfind(what),
    "replace": lambda it, w, s, a, b: s.replace(a, b),
    "split": _s_split,
    "join": _s_join,
    "unicode_at": _s_unicode_at,
    "to_int": _s_to_int,
    "to_float": _s_to_float,
    "is_valid_hex_number": _s_is_valid_hex_number,
    "hex_to_int": _s_hex_to_int,
    "trim_prefix": lambda it, w, s, p: s[len(p):] if p and s.startswith(p) else s,
    "trim_suffix": lambda it, w, s, p: s[:-len(p)] if p and s.endswith(p) else s,
    "repeat": lambda it, w, s, n: s * max(n, 0),
    "to_utf8_buffer": lambda it, w, s: PackedByteArray(s.encode("utf-8", "surrogatepass")),
    "uri_encode": _s_uri_encode,
    "path_join": _s_path_join,
    "to_lower": lambda it, w, s: s.lower(),
}


# Array methods --------------------------------------------------------------------------------


def _writable(where: Location, a: Any) -> None:
    if getattr(a, "read_only", False):
        raise GDScriptError(f"{where}: a read-only (const) Array cannot change")


def _a_append(it: Interpreter, where: Location, a: Any, value: Any) -> None:
    _writable(where, a)
    if isinstance(a, GDArray) and a.elem is not None:
        value = it.convert(value, a.elem, Frame(None, GDClass("", "", None), None), None, where)
    if isinstance(a, PackedStringArray):
        _need(where, value, str)
    a.append(value)


def _a_pop(end: int) -> PyCallable:
    def run(it: Interpreter, where: Location, a: Any) -> Any:
        _writable(where, a)
        if not a:
            return None
        return a.pop(end)
    return run


def _a_slice(it: Interpreter, where: Location, a: Any, begin: int, end: int = INT64_MAX) -> Any:
    n = len(a)
    b = begin + n if begin < 0 else begin
    e = end + n if end < 0 else end
    out = GDArray(a[max(b, 0):min(e, n)])
    if isinstance(a, GDArray):
        out.elem = a.elem
    return out


def _a_resize(it: Interpreter, where: Location, a: Any, size: int) -> int:
    _writable(where, a)
    if size < len(a):
        del a[size:]
    else:
        filler: Any = 0 if isinstance(a, PackedByteArray) else (
            it.default_of(a.elem, Frame(None, GDClass("", "", None), None)) if isinstance(a, GDArray) else None)
        a.extend([filler] * (size - len(a)))
    return 0


def _a_map(it: Interpreter, where: Location, a: Any, f: GDCallable) -> GDArray:
    return GDArray(it.call_callable(f, [x], where) for x in list(a))


def _a_filter(it: Interpreter, where: Location, a: Any, f: GDCallable) -> GDArray:
    out = GDArray((x for x in list(a) if truthy(it.call_callable(f, [x], where))))
    out.elem = a.elem if isinstance(a, GDArray) else None
    return out


def _a_any(it: Interpreter, where: Location, a: Any, f: GDCallable) -> bool:
    return any(truthy(it.call_callable(f, [x], where)) for x in list(a))


def _a_has(it: Interpreter, where: Location, a: Any, value: Any) -> bool:
    return it.contains(a, value, where)


ARRAY_METHODS: dict[str, PyCallable] = {
    "append": _a_append,
    "push_back": _a_append,
    "pop_back": _a_pop(-1),
    "pop_front": _a_pop(0),
    "size": lambda it, w, a: len(a),
    "is_empty": lambda it, w, a: len(a) == 0,
    "has": _a_has,
    "slice": _a_slice,
    "resize": _a_resize,
    "map": _a_map,
    "filter": _a_filter,
    "any": _a_any,
    "duplicate": lambda it, w, a, deep=False: GDArray(a, a.elem) if not deep else GDArray(a, a.elem),
}


def _d_merge(it: Interpreter, where: Location, d: GDDict, other: GDDict, overwrite: bool = False) -> None:
    for k, v in other.items():
        if overwrite or not d.has(k):
            d.set(k, v, str(where))


def _d_erase(it: Interpreter, where: Location, d: GDDict, key: Any) -> bool:
    if d.read_only:
        raise GDScriptError(f"{where}: a read-only (const) Dictionary cannot change")
    return d.erase(key)


DICT_METHODS: dict[str, PyCallable] = {
    "get": lambda it, w, d, k, default=None: d.get(k, default),
    "has": lambda it, w, d, k: d.has(k),
    "keys": lambda it, w, d: GDArray(d.keys()),
    "values": lambda it, w, d: GDArray(d.values()),
    "size": lambda it, w, d: len(d),
    "is_empty": lambda it, w, d: len(d) == 0,
    "merge": _d_merge,
    "erase": _d_erase,
}


def _b_encode(fmt: str) -> PyCallable:
    def run(it: Interpreter, where: Location, b: PackedByteArray, offset: int, value: Any) -> None:
        if offset < 0 or offset + struct.calcsize(fmt) > len(b):
            raise GDScriptError(f"{where}: encode at {offset} outside the PackedByteArray")
        if fmt == "<q":
            _need(where, value, int)
        struct.pack_into(fmt, b, offset, value)
    return run


def _b_decode(fmt: str) -> PyCallable:
    def run(it: Interpreter, where: Location, b: PackedByteArray, offset: int) -> Any:
        if offset < 0 or offset + struct.calcsize(fmt) > len(b):
            raise GDScriptError(f"{where}: decode at {offset} outside the PackedByteArray")
        return struct.unpack_from(fmt, b, offset)[0]
    return run


BYTES_METHODS: dict[str, PyCallable] = {
    "size": lambda it, w, b: len(b),
    "resize": _a_resize,
    "encode_double": _b_encode("<d"),
    "decode_double": _b_decode("<d"),
    "encode_s64": _b_encode("<q"),
    "decode_s64": _b_decode("<q"),
    "get_string_from_utf8": lambda it, w, b: bytes(b).decode("utf-8", "replace"),
    "hex_encode": lambda it, w, b: bytes(b).hex(),
}

PACKED_STRING_METHODS: dict[str, PyCallable] = {
    "append": _a_append,
    "push_back": _a_append,
    "size": lambda it, w, a: len(a),
    "is_empty": lambda it, w, a: len(a) == 0,
    "has": _a_has,
}

CALLABLE_METHODS: dict[str, PyCallable] = {
    "call": lambda it, w, c, *args: it.call_callable(c, list(args), w),
    "callv": lambda it, w, c, args: it.call_callable(c, list(args), w),
    "bind": lambda it, w, c, *args: c.with_bound(tuple(args)),
    "is_valid": lambda it, w, c: c.is_valid(),
}

BUILTIN_METHODS: dict[str, dict[str, PyCallable]] = {
    "String": STRING_METHODS,
    "Array": ARRAY_METHODS,
    "Dictionary": DICT_METHODS,
    "PackedByteArray": BYTES_METHODS,
    "PackedStringArray": PACKED_STRING_METHODS,
    "PackedFloat32Array": {"size": lambda it, w, a: len(a)},
    "Callable": CALLABLE_METHODS,
}


# Engine classes the interpreter models ------------------------------------------------------------


def _regex_compile(it: Interpreter, where: Location, regex: EngineObject, pattern: str) -> int:
    _need(where, pattern, str)
    try:
        regex.state["re"] = re.compile(pcre_to_python(pattern, str(where)), re.ASCII)
    except re.error as error:
        raise GDScriptError(f"{where}: RegEx.compile({pattern!r}): {error}") from error
    return 0


def _regex_search(it: Interpreter, where: Location, regex: EngineObject, text: str, offset: int = 0,
                  end: int = -1) -> Any:
    compiled = regex.state.get("re")
    if compiled is None:
        raise GDScriptError(f"{where}: RegEx.search() before compile()")
    m = compiled.search(text, offset, len(text) if end < 0 else end)
    return None if m is None else EngineObject("RegExMatch", match=m)


ENGINE_METHODS: dict[str, dict[str, PyCallable]] = {
    "RegEx": {"compile": _regex_compile, "search": _regex_search,
              "is_valid": lambda it, w, r: r.state.get("re") is not None},
    "RegExMatch": {
        "get_start": lambda it, w, m, group=0: m.state["match"].start(group),
        "get_end": lambda it, w, m, group=0: m.state["match"].end(group),
        "get_string": lambda it, w, m, group=0: m.state["match"].group(group) or "",
    },
    "Crypto": {
        "generate_random_bytes": lambda it, w, c, n: PackedByteArray(it.random_bytes(n)),
    },
}

ENGINE_OBJECT_PROPERTIES: dict[str, tuple] = {}


def _time_zone(it: Interpreter, where: Location) -> GDDict:
    return GDDict([("bias", it.zone_bias_minutes), ("name", "test")])


ENGINE_STATICS: dict[str, PyCallable] = {
    "RegEx.new": lambda it, w: EngineObject("RegEx"),
    "Crypto.new": lambda it, w: EngineObject("Crypto"),
    "Time.get_unix_time_from_system": lambda it, w: float(it.clock()),
    "Time.get_time_zone_from_system": _time_zone,
    "Time.get_ticks_msec": lambda it, w: int(time.monotonic() * 1000),
    "String.chr": lambda it, w, code: chr(code),
}


# ----- conversions for hosts (tests) ------------------------------------------------------------


def to_python(value: Any) -> Any:
    """A GDScript value as plain Python (Dictionaries as dicts, Arrays as lists)."""
    if isinstance(value, GDDict):
        return {k: to_python(v) for k, v in value.items()}
    if isinstance(value, (GDArray, PackedStringArray, PackedFloat32Array)):
        return [to_python(v) for v in value]
    if isinstance(value, PackedByteArray):
        return bytes(value)
    return value


def from_python(value: Any) -> Any:
    """Plain Python as GDScript values (dicts become Dictionaries, lists Arrays)."""
    if isinstance(value, dict):
        return GDDict((k, from_python(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return GDArray(from_python(v) for v in value)
    return value
