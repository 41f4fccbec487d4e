"""The GDScript snippets of docs/clients.md name only what the generated addon has.

Usage: gdscript_snippets.py VENV_BIN SNIPPET.gd...
No Godot runs here: each snippet is parsed and linted by gdtoolkit (tests/godot/gdlintrc), and
every `GameEvents.<name>` (the game_events module), `GameEvents.rt.<name>` (its runtime),
`client.<method>(` (the runtime's ContractClient) and option key it uses must be defined there.
Prints `ok - ...` / `FAIL - ...` lines.
"""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ADDON = ROOT / "generated/game_events/clients/godot/addons/contractc_game_events"


def defined(text, pattern):
    return set(re.findall(pattern, text, re.M))


def unknown_names(snippet):
    module = (ADDON / "game_events.gd").read_text(encoding="utf-8")
    runtime = (ADDON / "contractc_runtime.gd").read_text(encoding="utf-8")
    module_names = defined(module, r"^(?:static func|const|static var) (\w+)") | {"rt"}
    runtime_names = defined(runtime, r"^static func (\w+)")
    client_methods = defined(runtime, r"^\tfunc (\w+)\(")
    options = defined(runtime, r'options\.get\("(\w+)"') | {"base_url"}
    missing = [f"GameEvents.{n}" for n in re.findall(r"GameEvents\.(\w+)", snippet) if n not in module_names]
    missing += [f"GameEvents.rt.{n}" for n in re.findall(r"GameEvents\.rt\.(\w+)", snippet) if n not in runtime_names]
    missing += [f"client.{n}" for n in re.findall(r"\bclient\.(\w+)\(", snippet) if n not in client_methods]
    for call in re.findall(r"create_client\(\s*(\{.*?\})", snippet, re.S):
        missing += [f"option {k}" for k in re.findall(r'"(\w+)":', call) if k not in options]
    return missing


def main():
    venv_bin, snippets = Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]
    failed = 0
    for path in snippets:
        for tool in ("gdparse", "gdlint"):
            run = subprocess.run([str(venv_bin / tool), str(path)], cwd=ROOT / "tests/godot",
                                 capture_output=True, text=True)
            if run.returncode == 0:
                print(f"ok - docs/clients.md {path.name}: {tool} passes")
            else:
                failed += 1
                print(f"FAIL - docs/clients.md {path.name}: {tool}: {run.stdout}{run.stderr}")
        missing = unknown_names(path.read_text(encoding="utf-8"))
        if missing:
            failed += 1
            print(f"FAIL - docs/clients.md {path.name} names what the addon lacks: {', '.join(missing)}")
        else:
            print(f"ok - docs/clients.md {path.name}: every module, runtime and client name it uses exists")
    sys.exit(1 if failed else 0)


main()
