"""Any contract text `contractc check` accepts compiles in every generated language (#25 item 4).

Seeded, deterministic contracts put hostile text everywhere a contract holds text (contract and
field descriptions, owner, tags, rule messages, `one_of` values, variant values and
descriptions, alert and enrichment descriptions, patterns, timestamp format literals, table
property keys and values, audience, scopes, issuer URLs) and keyword names wherever it holds a
name. Each contract goes through `contractc check`, `build` and `corpus`, then through each
generated language's own compiler or parser:

- TypeScript: tsc --strict (run.sh's flags, the browser build), then the emitted module runs in
  Node over the corpus: every message of a rule the corpus breaks comes out of `validate`
  unchanged.
- C#: mcs -langversion:7 -warnaserror+ -warn:4 on the Unity package's Runtime/*.cs.
- C++: g++ -std=c++17 -Wall -Wextra -Werror -fsyntax-only on the core header and the curl
  transport. The Unreal module needs the engine (it holds names, no contract text): not compiled.
- GDScript: gdparse and gdlint (tests/godot/gdlintrc), then the module runs in tests/godot's
  interpreter over the corpus: every broken rule's message comes out of `validate` unchanged.
- Rust: the generated validators crate, type-checked by rustc (--emit=metadata) against the
  workspace's contract-support (cargo builds it once): not linked, not run.
- Python: py_compile of the Glue jobs; every rule message and every variant value the job
  compares is a string constant of the streaming job (read back with `ast`).
- JSON: json.load of every .json. YAML: yaml.safe_load of every .yml; `promtool check rules`
  and `promtool test rules` (tests/alert_rules.py's series): each alert fires with its
  description as written.
- SQL: Spark SQL's parser reads each statement of the Athena DDL and views (Hive's string
  literals, as Athena's DDL); the DDL's comments read back as the descriptions.
- DQDL and Markdown: not parsed here (compiler/src/backend/dqdl.rs tests its literals against
  DQDL's lexer rules).

A sample `check` refuses is counted, not failed; the samples are valid by construction but for
an occasional refused name. A failure prints the contract and the tool's output.
Usage: fuzz_text.py --contractc PATH [--seed N] [--samples N] [--keep DIR]
Tools: the venv's Python (PyYAML, gdtoolkit, pyspark; gdparse and gdlint beside it), tsc from
$CONTRACTC_NODE_CACHE (default ~/.cache/contractc/node), node, mcs, g++, rustc, cargo, java and
promtool on PATH; a missing one is a failure, never a skip.
Prints `ok - ...` / `FAIL - ...` and ends with `fuzz text: N passed, M failed`.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

try:
    import yaml
except ImportError:  # reported as a failure by main()
    yaml = None

ROOT = Path(__file__).resolve().parents[2]
# tests/alert_rules.py (the series that fire each kind of alert) and tests/godot/gdscript.py (the
# GDScript interpreter), imported where used: both need the venv.
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests/godot")]
DEFAULT_SEED = 2029

# ----- hostile text -------------------------------------------------------------------------------

# Each piece breaks some language's literal or comment when written raw.
PIECES = [
    '"', "'", "\\", "\n", "\r", "\r\n", "\t", "\x0b", "\x0c", "\x00", "\x01", "\x1b", "\x7f",
    "\x85", "\x9f", "\u2028", "\u2029", "*/", "/*", "//", "-->", "<!--", "]]>", "${", "${x}", "`",
    "%", "%s", "%d", "%%", "%(x)s", "{", "}", "{{ x }}", "{% if %}", "{#", "#}", "{0}", "#", '"""',
    "'''", "??=", "??/", "?", "<", ">", "&", "&amp;", "\ufeff", "\U0001f422", "\U0001f469\u200d\U0001f4bb",
    "e\u0301", "\u200f", "\u202e", "\u200b", "\ufffd", "\U0010ffff", "$", "\\u0041", "\\n", "\\x41",
    "\\\n", "\\\\", "\\\"", "@", ";", "|", "\\N{BULLET}", "<script>", "');", '");', "*", "!", "\u00a0",
]
WORDS = ["alpha", "beta", "gamma", "score", "end", "game", "x", "ok"]
# A piece no string literal escaping may forget: a backslash right before the end.
TRAILING_BACKSLASH = "\\"

# Names `check` accepts that are keywords or builtins somewhere generated code goes.
NAMES = [
    # TypeScript / JavaScript
    "function", "delete", "typeof", "var", "let", "const", "enum", "export", "import", "new",
    "this", "void", "yield", "await", "async", "interface", "type", "namespace", "declare", "any",
    "number", "string", "boolean", "object", "symbol", "unknown", "never", "constructor",
    "prototype", "instanceof", "arguments", "eval", "undefined", "null", "true", "false",
    # C#
    "base", "checked", "decimal", "event", "explicit", "fixed", "implicit", "internal", "lock",
    "operator", "out", "override", "params", "readonly", "ref", "sbyte", "sealed", "stackalloc",
    "unchecked", "unsafe", "ushort", "virtual", "volatile", "value", "get", "set", "default",
    "class", "struct", "is", "as", "in", "foreach", "using", "static", "public", "private",
    # C++
    "register", "alignas", "char8_t", "co_await", "requires", "concept", "signed", "typename",
    "nullptr", "auto", "and", "or", "not", "xor", "bitand", "compl", "template", "mutable",
    "friend", "union", "goto", "int", "long", "char", "double", "float", "bool", "std",
    # GDScript
    "func", "signal", "onready", "tool", "extends", "class_name", "preload", "pass", "match",
    "when", "breakpoint", "self_", "assert", "inf", "nan", "variant", "node",
    # Rust
    "fn", "impl", "mod", "mut", "pub", "trait", "unsafe", "use", "where", "loop", "move", "dyn",
    "gen", "box", "try", "macro", "abstract", "become", "final", "priv", "unsized", "do", "crate_",
    # SQL, Python
    "select", "from", "table", "order", "group", "partition", "date", "timestamp", "user",
    "limit", "key", "values", "row", "interval", "def", "lambda", "none", "print", "list",
    "dict", "str", "len", "json", "re", "spark", "global", "nonlocal", "with", "raise", "del",
    # names the generated code itself uses
    "validate", "encode", "decode", "cx", "now", "rt", "o", "parts", "result", "errors", "path",
    "code", "policy", "message", "name", "version", "fingerprint", "contract", "client", "kind",
    "event_type", "payload", "violations", "equals", "to_string", "hash_code", "get_type",
    "init", "free", "call", "connect", "make", "check", "write", "read", "item", "items",
    "optional",
    # shapes of identifier `check` accepts that some languages' style rules do not
    "trailing_", "a__b", "_lead", "x9", "_1",
]
# Variant values whose identifiers (their letters and digits) are type names some generated
# code or runtime already has.
TYPE_WORDS = ["Self", "Event", "Variant", "Spec", "Policy", "Schema", "Client", "Date", "Read", "Option",
              "Contract", "String", "Json", "Checker", "Object", "Error", "Record", "Task", "System"]
# A few names `check` refuses: those samples are counted as rejected, never failed.
REFUSED_NAMES = ["self", "super", "crate", "_", "__proto__"]


class Texts:
    """Hostile strings from one seeded generator."""

    def __init__(self, rng: random.Random, everything: bool):
        self.rng = rng
        # The first sample puts every piece into every text; the others mix a few.
        self.everything = everything

    def text(self) -> str:
        if self.everything:
            pieces = PIECES[:]
            self.rng.shuffle(pieces)
        else:
            pieces = self.rng.sample(PIECES, self.rng.randint(3, 9))
        out = []
        for piece in pieces:
            out.append(piece)
            if self.rng.random() < 0.5:
                out.append(self.rng.choice(WORDS))
        text = "".join(out)
        if self.everything or self.rng.random() < 0.5:
            text += TRAILING_BACKSLASH
        return "x" + text

    def words(self) -> str:
        """Text without control characters or edge spaces (variant values, scopes)."""
        pieces = [p for p in PIECES if not any(c.isspace() or ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f for c in p)]
        chosen = pieces if self.everything else self.rng.sample(pieces, self.rng.randint(2, 6))
        if self.everything:
            chosen = chosen[:]
            self.rng.shuffle(chosen)
        return "v" + "".join(chosen) + self.rng.choice(["", TRAILING_BACKSLASH])


# Regular expressions `check` accepts whose text is hostile to a string literal.
PATTERNS = [
    r'[^"\\]*',
    r"\\",
    r'(\*/|/\*|"|\x27|`|\$\{|#|%|\{\{|\}\}|<|>|&)*',
    r"a{1,3}\$?",
    r"[{}$]+",
    r".*\\",
    r'"?[a-z]+"?',
    "[\u2028\u2029\u0085\ufeff\U0001f422]*",
    "a\nb|\r|\t",
    r"(\?\?=|\?\?/)?x",
    r"[\\/]*",
    r"'''|\"\"\"|--",
    # Escaped punctuation Rust accepts and JavaScript's `u` mode refuses.
    r"\#\&\~\'\%\@\`\=\!\,\:\;\_\-\/\ [\-\"a]",
]
# Timestamp formats `check` accepts whose literals are hostile, all down to the second: for a
# date-only format the corpus's late value (the bound plus an hour, written as its day) reads as
# midnight, which is not late, though the corpus labels it `not_after` (not a text problem).
FORMATS = [
    '%Y"%m\\%d\\%H\\%M\\%S',
    "%Y-%m-%d %H:%M:%S\\",
    "%Y*/%m/*%d${%H}{{%M}}%S#%%",
    "%Y\u2028%m\u2029%d\ufeff%H\U0001f422%M\u200f%S",
    "%d`%m?%Y??=%H:%M:%S%.f",
    "%Y<%m>%d&%H;%M|%S",
]


def yaml_str(text: str) -> str:
    """A YAML double-quoted scalar holding exactly `text` (every unusual character escaped)."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif code < 0x20 or 0x7F <= code <= 0x9F or code in (0x2028, 0x2029, 0xFEFF):
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def to_yaml(value, indent: int = 0) -> str:
    """Block YAML with every string double-quoted (keys too)."""
    pad = "  " * indent
    if isinstance(value, dict):
        if not value:
            return "{}"
        lines = []
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{yaml_str(key)}:\n{to_yaml(item, indent + 1)}")
            else:
                lines.append(f"{pad}{yaml_str(key)}: {to_yaml(item, indent + 1)}")
        return "\n".join(lines)
    if isinstance(value, list):
        if not value:
            return "[]"
        lines = []
        for item in value:
            if isinstance(item, dict) and item:
                body = to_yaml(item, indent + 1).lstrip()
                lines.append(f"{pad}- {body}")
            elif isinstance(item, list) and item:
                lines.append(f"{pad}-\n{to_yaml(item, indent + 1)}")
            else:
                lines.append(f"{pad}- {to_yaml(item, indent + 1)}")
        return "\n".join(lines)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    return yaml_str(value)


# ----- contracts ----------------------------------------------------------------------------------


class Sample:
    """One generated contract: its document and the texts to find again in generated code."""

    def __init__(self, index: int, rng: random.Random):
        self.index = index
        self.rng = rng
        self.texts = Texts(rng, everything=index == 0)
        self.names = list(dict.fromkeys(NAMES))  # some are keywords in several languages
        rng.shuffle(self.names)
        self.next_id = 1
        self.variant_values: list[str] = []
        self.doc = self.contract()

    def name(self) -> str:
        return self.names.pop()

    def id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def message(self) -> str:
        return self.texts.text()

    def field(self, ftype: str, **extra) -> dict:
        field = {"name": self.name(), "id": self.id(), "type": ftype, "description": self.texts.text()}
        field.update(extra)
        return field

    def string_field(self) -> dict:
        pattern = self.rng.choice(PATTERNS)
        return self.field("string", rules=[
            {"pattern": pattern, "message": self.message(), "policy": "quarantine"},
            {"max_length": 500, "message": self.message()},
        ])

    def one_of_field(self) -> dict:
        values = []
        for _ in range(self.rng.randint(3, 6)):
            values.append(self.texts.text())
        # Values whose identifiers collide in languages that make enums of them.
        values += ["", " ", "a b", "a_b", "A-B", "1", "_", "\u2028"]
        values = list(dict.fromkeys(values))
        return self.field("string", rules=[{"one_of": values, "message": self.message()}])

    def contract(self) -> dict:
        rng = self.rng
        contract_name = self.name()
        fields = [self.string_field(), self.one_of_field()]
        discriminator = self.field("string", required=True)
        fields.append(discriminator)
        fields.append(self.field("timestamp", required=True, format=rng.choice(FORMATS), rules=[
            {"not_after": {"skew": "14h"}, "message": self.message()},
        ]))
        fields.append(self.field("int", rules=[{"min": -5, "message": self.message()},
                                               {"max": 5, "message": self.message(), "policy": "warn"}]))
        fields.append(self.field("long", rules=[{"one_of": [1, 2, 3], "message": self.message()}]))
        fields.append(self.field("list", items={"id": self.id(), "type": "string", "rules": [
            {"pattern": rng.choice(PATTERNS), "message": self.message()}]},
            rules=[{"max_length": 4, "message": self.message()}]))
        fields.append(self.field("map", keys={"id": self.id(), "type": "string"},
                                 values={"id": self.id(), "type": "string", "required": False}))
        nested = [self.field("double", required=True), self.string_field(),
                  self.field("timestamptz")]
        fields.append(self.field("struct", fields=nested))
        fields.append(self.field("uuid"))
        fields.append(self.field("date"))
        fields.append(self.field("decimal(10, 2)", rules=[{"max": 100, "message": self.message()}]))
        cases = {}
        for k in range(rng.randint(2, 3)):
            value = self.texts.words() + str(k)
            if k == 1:
                # Its identifier is a type name the generated code already uses.
                value = rng.choice(TYPE_WORDS) + ' "*/\u2028${`\\'

            if k == 0:
                cases[value] = None
                continue
            case = {"description": self.texts.text(), "fields": [self.string_field(), self.one_of_field()]}
            case["rules"] = {fields[0]["name"]: [{"max_length": 100, "message": self.message()}]}
            case["require"] = [fields[4]["name"]]
            cases[value] = case
            # The Glue job compares the discriminator with each value that has rules.
            self.variant_values.append(value)
        enrich_sub = {"name": self.name(), "id": 100, "from": "jwt.sub", "description": self.texts.text()}
        enrich_claim = {"name": self.name(), "id": 101, "from": "jwt." + self.name(),
                        "description": self.texts.text()}
        alerts = []
        for when, extra in [("bad_share", {"over": "5%"}), ("no_events", {}),
                            ("quarantine_growth", {"over": 500})]:
            alert = {"name": self.name(), "description": self.texts.text(), "when": when, "for": "10m"}
            alert.update(extra)
            alerts.append(alert)
        issuer = rng.choice(["dev", "https://id.example.com/${x}/{{y}}/*/%25/`#", "https://a.example/??=/&amp;"])
        doc = {
            "contract": contract_name,
            "version": "1.0.0",
            "owner": self.texts.text(),
            "description": self.texts.text(),
            "tags": [self.texts.text(), self.texts.text()],
            "fields": fields,
            "variants": {"discriminator": discriminator["name"], "cases": cases},
            "table": {
                "database": self.name(), "name": self.name(),
                "partition_by": [{"field": discriminator["name"]}],
                "properties": {self.texts.text(): self.texts.text(), "commit.retry.num-retries": "3"},
            },
            "ingest": {
                "route": f"/fuzz/{self.index}/one",
                "batch_route": f"/fuzz/{self.index}/many",
                "auth": {"issuer": issuer, "audience": self.texts.text(),
                         "scopes": [self.texts.words(), "guest"]},
            },
            "enrich": [enrich_sub, enrich_claim],
            "quality": {"alerts": alerts},
        }
        if self.index and rng.random() < 0.15:
            # Now and then a name `check` refuses: counted as rejected, never failed.
            fields[-1]["name"] = rng.choice(REFUSED_NAMES)
        return doc

    def rule_messages(self) -> list[tuple[str, str, str]]:
        """(field, rule, message) of every rule with a message: `field` names a top-level or
        payload field as corpus case names do (`<field>: breaks <rule>`), or is empty for the
        rules of list items and struct members."""
        found = []

        def rules(field: str, entries: list[dict]):
            for rule in entries:
                kind = next(k for k in rule if k not in ("message", "policy"))
                found.append((field, kind, rule["message"]))

        def inner(shape: dict):
            for key in ("items", "keys", "values"):
                if key in shape:
                    rules("", shape[key].get("rules", []))
                    inner(shape[key])
            for member in shape.get("fields", []):
                rules("", member.get("rules", []))
                inner(member)

        cases = [c or {} for c in self.doc["variants"]["cases"].values()]
        for field in self.doc["fields"] + [f for c in cases for f in c.get("fields", [])]:
            rules(field["name"], field.get("rules", []))
            inner(field)
        for case in cases:
            for name, entries in case.get("rules", {}).items():
                rules(name, entries)
        return found

    def yaml(self) -> str:
        return "# fuzz_text.py sample %d\n%s\n" % (self.index, to_yaml(self.doc))


# ----- running ------------------------------------------------------------------------------------

# contract_corpus::REFERENCE_TIME_MICROS: the ingest time the corpus labels assume.
REFERENCE_TIME_MS = 1_708_603_200_000
TS_STRICT = ["--strict", "--noUnusedLocals", "--noUnusedParameters", "--noImplicitReturns",
             "--noFallthroughCasesInSwitch", "--noImplicitOverride", "--forceConsistentCasingInFileNames"]
GXX_STRICT = ["-std=c++17", "-Wall", "-Wextra", "-Werror"]
MCS_STRICT = ["-langversion:7", "-warnaserror+", "-warn:4", "-target:library", "-r:System.Net.Http.dll"]
# Prints the set of violation messages `validate` reports over a corpus (emitted module, Node).
TS_MESSAGES = """import * as fs from "node:fs";
import * as m from "./%s.js";
const seen = new Set();
for (const line of fs.readFileSync(process.argv[2], "utf8").split("\\n")) {
  if (line === "") continue;
  let event;
  try { event = m.decode(JSON.parse(line).body); } catch { continue; }
  for (const v of m.validate(event, new Date(%d))) seen.add(v.message);
}
process.stdout.write(JSON.stringify([...seen]));
"""
SHOWN_LINES = 80


class Tools:
    """Where each toolchain is; a missing one is reported once and fails every use."""

    def __init__(self, contractc: str):
        node_cache = Path(os.environ.get("CONTRACTC_NODE_CACHE", Path.home() / ".cache/contractc/node"))
        bin_dir = Path(sys.executable).parent
        self.paths = {
            "contractc": contractc,
            "tsc": str(node_cache / "node_modules/.bin/tsc"),
            "node": shutil.which("node"),
            "mcs": shutil.which("mcs"),
            "g++": shutil.which("g++"),
            "gdparse": str(bin_dir / "gdparse"),
            "gdlint": str(bin_dir / "gdlint"),
            "rustc": shutil.which("rustc"),
            "cargo": shutil.which("cargo"),
            "promtool": shutil.which("promtool"),
            "java": shutil.which("java"),
        }
        self.missing = {name for name, path in self.paths.items() if not path or not os.access(path, os.X_OK)}
        self.support: str | None = None
        self.spark_session = None

    def spark_parser(self):
        """Spark SQL's parser (one local session, started on first use): it reads Hive's DDL
        string literals as Athena's DDL does, and the views' SQL."""
        if self.spark_session is None:
            from pyspark.sql import SparkSession  # the venv's (tests/requirements.txt)

            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            self.spark_session = (SparkSession.builder.master("local[1]")
                                  .config("spark.ui.enabled", "false")
                                  .config("spark.ui.showConsoleProgress", "false").getOrCreate())
            self.spark_session.sparkContext.setLogLevel("ERROR")
        return self.spark_session._jsparkSession.sessionState().sqlParser()

    def __getitem__(self, name: str) -> str:
        return self.paths[name]

    def contract_support(self) -> tuple[str | None, str]:
        """The workspace's contract-support library (rmeta), built by cargo if needed."""
        env = dict(os.environ)
        proc = subprocess.run([self["cargo"], "build", "-p", "contract-support", "--message-format=json"],
                              cwd=ROOT, capture_output=True, text=True, env=env)
        for line in proc.stdout.splitlines():
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue
            if message.get("reason") == "compiler-artifact" and message["target"]["name"] == "contract_support":
                for name in message["filenames"]:
                    if name.endswith(".rmeta") and "/deps/" in name:
                        return name, ""
        return None, proc.stderr[-3000:]


class Report:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def ok(self, what: str):
        self.passed += 1
        print(f"ok - {what}", flush=True)

    def fail(self, what: str, detail: str = "", context: str = ""):
        """A failure, with `context` shown whole and `detail` (compiler output) cut short."""
        self.failed += 1
        print(f"FAIL - {what}", flush=True)
        for line in context.rstrip("\n").splitlines():
            print(f"    {line}")
        if detail:
            lines = detail.rstrip("\n").splitlines()
            for line in lines[:SHOWN_LINES]:
                print(f"    {line}")
            if len(lines) > SHOWN_LINES:
                print(f"    ... {len(lines) - SHOWN_LINES} more lines")


def run(argv: list[str], cwd: Path | None = None, timeout: int = 300) -> tuple[bool, str]:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, timeout=timeout)
    output = (proc.stdout + proc.stderr).decode("utf-8", "backslashreplace")
    return proc.returncode == 0, output


class Checks:
    """The languages of one built sample; each returns (passed, what went wrong)."""

    def __init__(self, sample: Sample, tools: Tools, work: Path, out: Path, corpus: Path):
        self.sample = sample
        self.tools = tools
        self.work = work
        self.out = out
        self.corpus = corpus
        self.name = sample.doc["contract"]
        self.dir = out / self.name

    def typescript(self) -> tuple[bool, str]:
        modules = sorted(str(p) for p in (self.dir / "clients/typescript").glob("*.ts"))
        emitted = self.work / "ts"
        no_types = self.work / "no-types"
        no_types.mkdir(exist_ok=True)
        passed, output = run([self.tools["tsc"], *TS_STRICT, "--target", "es2020", "--module", "es2020",
                              "--moduleResolution", "bundler", "--lib", "es2020,dom", "--typeRoots",
                              str(no_types), "--outDir", str(emitted), *modules])
        if not passed:
            return False, "tsc:\n" + output
        (emitted / "package.json").write_text('{"type": "module"}\n')
        (emitted / "messages.mjs").write_text(TS_MESSAGES % (self.name, REFERENCE_TIME_MS))
        passed, output = run([self.tools["node"], str(emitted / "messages.mjs"),
                              str(self.corpus / f"{self.name}.ndjson")])
        if not passed:
            return False, "node (the emitted module, over the corpus):\n" + output
        return self.messages_reached(set(json.loads(output)), "validate", self.broken_messages())

    def cases(self) -> list[dict]:
        """The contract's corpus (one JSON object a line; a body may hold U+2028)."""
        text = (self.corpus / f"{self.name}.ndjson").read_text(encoding="utf-8")
        return [json.loads(line) for line in text.split("\n") if line]

    def broken_messages(self) -> list[str]:
        """The messages of the rules the corpus breaks (by its cases' names)."""
        names = [case["name"] for case in self.cases()]
        return [m for field, kind, m in self.sample.rule_messages()
                if field and any(n.endswith(f"{field}: breaks {kind}") for n in names)]

    @staticmethod
    def messages_reached(seen: set[str], where: str, messages: list[str]) -> tuple[bool, str]:
        missing = [m for m in messages if m not in seen]
        if missing:
            return False, f"rule messages {where} never reported unchanged:\n" + "\n".join(
                json.dumps(m) for m in missing) + "\nreported:\n" + "\n".join(json.dumps(m) for m in sorted(seen))
        return True, ""

    def csharp(self) -> tuple[bool, str]:
        sources = sorted(str(p) for p in (self.dir / "clients/unity/Runtime").glob("*.cs"))
        return run([self.tools["mcs"], *MCS_STRICT, f"-out:{self.work / 'unity.dll'}", *sources])

    def cpp(self) -> tuple[bool, str]:
        core = self.dir / "clients/unreal/core"
        main = self.work / "core.cpp"
        main.write_text(f'#include "{self.name}.hpp"\n#include "contractc_curl.hpp"\n')
        return run([self.tools["g++"], *GXX_STRICT, "-fsyntax-only", "-I", str(core), str(main)])

    def godot(self) -> tuple[bool, str]:
        module = self.dir / f"clients/godot/addons/contractc_{self.name}/{self.name}.gd"
        passed, output = run([self.tools["gdparse"], str(module)])
        if not passed:
            return False, "gdparse:\n" + output
        # gdlint reads tests/godot/gdlintrc from its working directory.
        passed, output = run([self.tools["gdlint"], str(module)], cwd=ROOT / "tests/godot")
        if not passed:
            return False, "gdlint:\n" + output
        # The module run by tests/godot's GDScript interpreter over the corpus.
        import gdscript

        it = gdscript.Interpreter()
        script = it.load(module)
        seen = set()
        for case in self.cases():
            decoded = it.call_static(script, "decode", case["body"])
            if it.get(decoded, "error") == "":
                event = it.get(decoded, "event")
                seen |= {v.get("message") for v in it.call_static(script, "validate", event, REFERENCE_TIME_MS * 1000)}
        return self.messages_reached(seen, "validate (GDScript interpreter)", self.broken_messages())

    def rust(self) -> tuple[bool, str]:
        support = self.tools.support
        deps = str(Path(support).parent)
        return run([self.tools["rustc"], "--edition", "2024", "--crate-type", "lib", "--crate-name",
                    "contract_validators", "--emit=metadata", "-o", str(self.work / "validators.rmeta"),
                    "-L", f"dependency={deps}", "--extern", f"contract_support={support}",
                    str(self.out / "validators/src/lib.rs")])

    def python(self) -> tuple[bool, str]:
        constants: set[str] = set()
        for script in sorted((self.dir / "glue").glob("*.py")):
            passed, output = run([sys.executable, "-m", "py_compile", str(script)])
            if not passed:
                return False, f"py_compile {script.name}:\n{output}"
            if script.name == "streaming_job.py":
                tree = ast.parse(script.read_text(encoding="utf-8"))
                constants |= {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        missing = [v for v in self.sample.variant_values if v not in constants]
        if missing:
            return False, "variant values not in streaming_job.py unchanged:\n" + "\n".join(map(json.dumps, missing))
        return self.messages_reached(constants, "streaming_job.py's constants",
                                     [m for _, _, m in self.sample.rule_messages()])

    def sql(self) -> tuple[bool, str]:
        """Each statement of the Athena DDL and views parses; the DDL's comments read back as
        the contract's description and fields' descriptions."""
        parser = self.tools.spark_parser()
        comments = []
        for name in ("create-tables.sql", "views.sql"):
            text = (self.dir / "athena" / name).read_text(encoding="utf-8")
            # Literals hold no raw line break (`quote`), so a statement ends at `;` + newline.
            for statement in text.split(";\n"):
                if not statement.strip() or all(line.startswith("--") or not line.strip()
                                                for line in statement.splitlines()):
                    continue
                if name == "views.sql":
                    # Reserved names are double-quoted, Athena's way; Spark takes them in
                    # backquotes (as tests/athena_views.py runs the views).
                    statement = re.sub(r'"([a-z_][a-z0-9_]*)"', r"`\1`", statement)
                try:
                    plan = parser.parsePlan(statement)
                except Exception as error:  # noqa: BLE001  (py4j's ParseException)
                    return False, f"{name}: Spark SQL does not parse:\n{statement}\n{error}"
                if name == "create-tables.sql":
                    spec = plan.tableSpec().comment()
                    comments.append(spec.get() if spec.isDefined() else None)
                    for field in plan.tableSchema().fields():
                        comment = field.getComment()
                        comments.append(comment.get() if comment.isDefined() else None)
        wanted = [self.sample.doc["description"]] + [f["description"] for f in self.sample.doc["fields"]]
        missing = [w for w in wanted if not any(c is not None and c.startswith(w) for c in comments)]
        if missing:
            return False, "descriptions not read back from the DDL's comments:\n" + "\n".join(
                map(json.dumps, missing)) + "\nread:\n" + "\n".join(map(json.dumps, comments))
        return True, ""

    def data(self) -> tuple[bool, str]:
        """JSON and YAML files load; the Prometheus rules pass promtool and keep the descriptions."""
        for path in sorted(self.out.rglob("*.json")):
            try:
                json.loads(path.read_text(encoding="utf-8"))
            except ValueError as error:
                return False, f"{path.relative_to(self.out)}: {error}"
        for path in sorted(self.out.rglob("*.yml")) + sorted(self.out.rglob("*.yaml")):
            try:
                yaml.safe_load(path.read_text(encoding="utf-8"))
            except yaml.YAMLError as error:
                return False, f"{path.relative_to(self.out)}: {error}"
        rules = self.dir / "prometheus/alerts.yml"
        passed, output = run([self.tools["promtool"], "check", "rules", str(rules)])
        if not passed:
            return False, "promtool check rules:\n" + output
        return self.alerts_fire_with_their_text(rules)

    def alerts_fire_with_their_text(self, rules: Path) -> tuple[bool, str]:
        """`promtool test rules`: each alert, fired by tests/alert_rules.py's series, carries its
        description as the contract wrote it (annotations are templates, expanded when firing)."""
        import alert_rules

        loaded = {r["alert"]: r for g in yaml.safe_load(rules.read_text(encoding="utf-8"))["groups"]
                  for r in g["rules"]}
        tests = []
        for alert in self.sample.doc["quality"]["alerts"]:
            name = f"{self.name}_{alert['name']}"
            if name not in loaded:
                return False, f"no rule {name} in {rules}"
            firing, _ = alert_rules.scenarios(self.name, alert)
            annotations = dict(loaded[name]["annotations"], description=alert["description"])
            tests.append({"interval": "1m", "input_series": firing, "alert_rule_test": [{
                "eval_time": "%dm" % (alert_rules.minutes(alert["for"]) * 2), "alertname": name,
                "exp_alerts": [{"exp_labels": loaded[name]["labels"], "exp_annotations": annotations}],
            }]})
        spec = self.work / "alerts-test.yml"
        spec.write_text(yaml.safe_dump({"rule_files": [str(rules)], "evaluation_interval": "1m",
                                        "tests": tests}), encoding="utf-8")
        passed, output = run([self.tools["promtool"], "test", "rules", str(spec)])
        return passed, "" if passed else "promtool test rules:\n" + output


LANGUAGES = [
    ("typescript", "tsc --strict, then every rule message from validate in Node", ["tsc", "node"]),
    ("csharp", "mcs -warnaserror+", ["mcs"]),
    ("cpp", "g++ -std=c++17 -Wall -Wextra -Werror -fsyntax-only", ["g++"]),
    ("godot", "gdparse + gdlint, then every rule message from validate in the interpreter", ["gdparse", "gdlint"]),
    ("rust", "rustc --emit=metadata against contract-support", ["rustc", "cargo"]),
    ("python", "py_compile, messages and variant values as constants", []),
    ("data", "json.load, yaml.safe_load, promtool check rules + test rules (descriptions)", ["promtool"]),
    ("sql", "Spark SQL parses the Athena DDL (comments read back) and views", ["java"]),
]


def test_sample(sample: Sample, tools: Tools, work: Path, report: Report) -> bool:
    """Checks and builds one sample and compiles what it generates; False when check refuses it."""
    contract = work / "contracts" / "fuzz.yaml"
    contract.parent.mkdir(parents=True)
    text = sample.yaml()
    contract.write_text(text, encoding="utf-8")
    label = f"sample {sample.index} (contract {sample.doc['contract']})"
    shown = [False]

    def fail(what: str, detail: str):
        context = "" if shown[0] else f"the contract ({contract}):\n{text}"
        shown[0] = True
        report.fail(f"{label}: {what}", detail, context)

    proc = subprocess.run([tools["contractc"], "check", str(contract)], capture_output=True, text=True)
    if proc.returncode != 0:
        errors = [line for line in proc.stdout.splitlines() + proc.stderr.splitlines() if line.startswith("error[")]
        if proc.returncode == 1 and errors:
            print(f"# {label}: check refuses it: {errors[0]}")
            return False
        fail("contractc check crashed", proc.stdout + proc.stderr)
        return True
    out = work / "out"
    for argv in ([tools["contractc"], "build", str(contract), "--out", str(out)],
                 [tools["contractc"], "corpus", str(contract), "--out", str(work / "corpus")]):
        passed, output = run(argv)
        if not passed:
            fail(f"contractc {argv[1]} fails on a contract check accepts", output)
            return True
    checks = Checks(sample, tools, work, out, work / "corpus")

    def check(language: str) -> tuple[bool, str, float]:
        started = time.monotonic()
        try:
            passed, detail = getattr(checks, language)()
        except Exception:  # noqa: BLE001  (a bug of this test is a failure too, with its trace)
            passed, detail = False, traceback.format_exc()
        return passed, detail, time.monotonic() - started

    # Two at a time (two cores): the compilers wait on subprocesses, the GDScript interpreter
    # runs here. Reported in a fixed order.
    with ThreadPoolExecutor(max_workers=2) as pool:
        running = {}
        for language, _, needs in LANGUAGES:
            if not [tool for tool in needs if tool in tools.missing] and (language != "rust" or tools.support):
                running[language] = pool.submit(check, language)
        for language, how, needs in LANGUAGES:
            if language not in running:
                missing = [tool for tool in needs if tool in tools.missing]
                fail(f"{language}: cannot run ({', '.join(missing) or 'contract-support did not build'})", "")
                continue
            passed, detail, took = running[language].result()
            if passed:
                report.ok(f"{label}: {language}: {how} ({took:.1f} s)")
            else:
                fail(f"{language}: {how}", detail)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contractc", required=True)
    parser.add_argument("--seed", type=int, default=int(os.environ.get("FUZZ_TEXT_SEED", DEFAULT_SEED)))
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--keep", help="keep each sample's files under this directory")
    args = parser.parse_args()
    started = time.monotonic()
    report = Report()
    print(f"# fuzz text: seed {args.seed} (FUZZ_TEXT_SEED or --seed to replay), {args.samples} samples")
    tools = Tools(args.contractc)
    if yaml is None:
        report.fail(f"toolchain: PyYAML is missing from {sys.executable} (pip install -r tests/requirements.txt)")
        print(f"fuzz text: {report.passed} passed, {report.failed} failed")
        return 1
    for name in sorted(tools.missing):
        report.fail(f"toolchain: {name} is missing ({tools[name] or 'not on PATH'}); see tests/clients/run.sh")
    if "cargo" not in tools.missing:
        tools.support, error = tools.contract_support()
        if tools.support is None:
            report.fail("toolchain: cargo build -p contract-support failed", error)
    rejected = 0
    with tempfile.TemporaryDirectory(prefix="fuzz-text-") as scratch:
        base = Path(args.keep) if args.keep else Path(scratch)
        for index in range(args.samples):
            sample = Sample(index, random.Random(f"{args.seed}-{index}"))
            work = base / f"sample{index}"
            if work.exists():
                shutil.rmtree(work)
            if not test_sample(sample, tools, work, report):
                rejected += 1
    print(f"# {args.samples - rejected} samples built, {rejected} refused by check, "
          f"{time.monotonic() - started:.0f} s")
    print(f"fuzz text: {report.passed} passed, {report.failed} failed")
    return 0 if report.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
