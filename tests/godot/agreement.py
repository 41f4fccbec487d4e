"""The Godot client's verdicts agree with the server's, case by case over the labelled corpus.

For each contract with a GDScript module (generated, `generated/<c>/clients/godot/addons/
contractc_<c>/<c>.gd` or a fixture's expected output), every corpus case's body is
given to the module's `decode` in the GDScript interpreter (tests/godot/gdscript.py), running the
real text of the module and of the runtime beside it:

- when `decode` refuses the body, its labels must all be about JSON shape (the rule of
  tests/clients/typescript/conformance.ts: wrong types, unknown or duplicate keys, missing fields,
  invalid JSON; `one_of` too when the error starts `unknown ` (an unknown variant), and
  `invalid_format` when it names a `timestamp`); a valid case must always decode;
- else `validate(event, REFERENCE_TIME_MICROS)` gives exactly the labelled codes (as a set), and
  so does the event after `decode(encode(event))`.

Usage: agreement.py CORPUS_DIR [MODULE.gd ...]   (default: every module found, see `modules()`)
Prints `ok - ...` / `FAIL - ...` per case and ends with `godot agreement: N passed, M failed`.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gdscript as gd  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = ROOT / "compiler/templates/godot/contractc_runtime.gd"
# contract_corpus::REFERENCE_TIME_MICROS: the ingest time the labels assume.
REFERENCE_TIME_MICROS = 1_708_603_200_000_000
SHAPE_CODES = {"missing", "wrong_type", "unknown_field", "duplicate_field", "invalid_json"}


def modules() -> dict[str, Path]:
    """Contract name → module: the generated ones, then the fixtures' expected ones."""
    found: dict[str, Path] = {}
    patterns = ["generated/*/clients/godot/addons/contractc_*/*.gd",
                "tests/fixtures/*/expected/*/clients/godot/addons/contractc_*/*.gd"]
    for pattern in patterns:
        for path in sorted(ROOT.glob(pattern)):
            if path.name != "contractc_runtime.gd":
                found.setdefault(path.stem, path)
    return found


def shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def staged(module: Path, work: Path) -> Path:
    """The module with a runtime beside it: its own (generated), else the template's."""
    if (module.parent / "contractc_runtime.gd").exists():
        return module
    target = work / module.stem
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(module, target / module.name)
    shutil.copy(RUNTIME, target / "contractc_runtime.gd")
    return target / module.name


class Report:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def ok(self, name: str) -> None:
        self.passed += 1
        print(f"ok - {name}")

    def fail(self, name: str, why: str) -> None:
        self.failed += 1
        print(f"FAIL - {name}: {why}")


def codes(it: gd.Interpreter, script: gd.GDClass, event: object) -> list[str]:
    violations = it.call_static(script, "validate", event, REFERENCE_TIME_MICROS)
    return sorted({v.get("code") for v in violations})


def decode(it: gd.Interpreter, script: gd.GDClass, body: str) -> tuple[object, str]:
    decoded = it.call_static(script, "decode", body)
    return it.get(decoded, "event"), it.get(decoded, "error")


def check_case(it: gd.Interpreter, script: gd.GDClass, case: dict) -> tuple[bool, str | None]:
    """(expressible, None when it agrees else why)."""
    labels = sorted(set(case["codes"]))
    event, error = decode(it, script, case["body"])
    if error != "":
        if not labels:
            return False, f"a valid event does not decode ({error})"
        allowed = set(SHAPE_CODES)
        if error.startswith("unknown "):
            allowed.add("one_of")
        if "timestamp" in error:
            allowed.add("invalid_format")
        other = [c for c in labels if c not in allowed]
        if other:
            return False, f"labels {','.join(labels)} are not shape errors ({error})"
        return False, None
    got = codes(it, script, event)
    if got != labels:
        return True, f"codes {got}, labelled {labels}"
    text = it.call_static(script, "encode", event)
    again, error = decode(it, script, text)
    if error != "":
        return True, f"its encoding {text!r} does not decode: {error}"
    got = codes(it, script, again)
    if got != labels:
        return True, f"codes after encode/decode {got}, labelled {labels} (encoded {text!r})"
    return True, None


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: agreement.py CORPUS_DIR [MODULE.gd ...]", file=sys.stderr)
        return 2
    corpus = Path(argv[1])
    chosen = {Path(p).stem: Path(p) for p in argv[2:]} or modules()
    report = Report()
    summary = []
    with tempfile.TemporaryDirectory() as tmp:
        for contract, module in sorted(chosen.items()):
            cases_file = corpus / f"{contract}.ndjson"
            if not cases_file.exists():
                report.fail(f"{contract}", f"no corpus {cases_file} for the module {module}")
                continue
            it = gd.Interpreter()
            try:
                script = it.load(staged(module, Path(tmp)))
            except gd.GDScriptError as error:
                report.fail(f"{contract}: load {shown(module)}", str(error))
                continue
            cases = [json.loads(line) for line in cases_file.read_text(encoding="utf-8").splitlines() if line]
            expressible = 0
            for case in cases:
                name = f"{contract}: {case['name']}"
                try:
                    decoded, why = check_case(it, script, case)
                except gd.GDScriptError as error:
                    report.fail(name, f"{type(error).__name__}: {error}")
                    continue
                except Exception:  # an interpreter bug: say where
                    report.fail(name, traceback.format_exc(limit=3).replace("\n", " | "))
                    continue
                expressible += decoded
                if why is None:
                    report.ok(name)
                else:
                    report.fail(name, why)
            summary.append(f"{contract}: {expressible} of {len(cases)} cases expressible "
                           f"({shown(module)})")
    for line in summary:
        print(f"# {line}")
    print(f"godot agreement: {report.passed} passed, {report.failed} failed")
    return 0 if report.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
