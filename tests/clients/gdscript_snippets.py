"""The GDScript snippets of docs/clients.md name only what the generated addon has.

Usage: gdscript_snippets.py SNIPPET.gd...
No Godot runs here, and tests/godot/run.sh parses and lints every snippet; this checks that each
`GameEvents.<name>` (the game_events module), `GameEvents.rt.<name>` (its runtime),
`client.<method>(` (the runtime's ContractClient) and option key a snippet uses is defined there.
Prints `ok - ...` / `FAIL - ...` lines.
"""
import re
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
    failed = 0
    for path in (Path(p) for p in sys.argv[1:]):
        missing = unknown_names(path.read_text(encoding="utf-8"))
        if missing:
            failed += 1
            print(f"FAIL - docs/clients.md {path.name} names what the addon lacks: {', '.join(missing)}")
        else:
            print(f"ok - docs/clients.md {path.name}: every module, runtime and client name it uses exists")
    sys.exit(1 if failed else 0)


main()
