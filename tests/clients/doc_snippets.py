"""Writes the first-event snippets of docs/clients.md as compilable files (the tests compile them).

Usage: doc_snippets.py DOCS_MD OUT_DIR
Writes OUT_DIR/first_event.ts (a module), FirstEvent.cs (inside an async method, with Unity's
`Application` stubbed) and first_event.cpp (includes on top, statements inside main).
"""
import re
import sys
from pathlib import Path

docs, out = Path(sys.argv[1]), Path(sys.argv[2])
blocks = dict()
for lang, body in re.findall(r"```(ts|csharp|cpp)\n(.*?)```", docs.read_text(encoding="utf-8"), re.S):
    if lang in blocks:
        sys.exit(f"more than one {lang} block in {docs}")
    blocks[lang] = body
missing = {"ts", "csharp", "cpp"} - blocks.keys()
if missing:
    sys.exit(f"no {', '.join(sorted(missing))} block in {docs}")
out.mkdir(parents=True, exist_ok=True)
(out / "first_event.ts").write_text(blocks["ts"] + "\nexport {};\n", encoding="utf-8")

usings = [l for l in blocks["csharp"].splitlines() if l.startswith("using ")]
statements = [l for l in blocks["csharp"].splitlines() if not l.startswith("using ")]
(out / "FirstEvent.cs").write_text(
    "\n".join(usings)
    + "\nusing System.Threading.Tasks;\n\nstatic class Application { public static string persistentDataPath = \".\"; }\n\n"
    + "static class FirstEvent\n{\n    public static async Task Run()\n    {\n"
    + "\n".join("        " + l for l in statements)
    + "\n    }\n}\n",
    encoding="utf-8",
)

top = [l for l in blocks["cpp"].splitlines() if l.startswith(("#include", "namespace "))]
body = [l for l in blocks["cpp"].splitlines() if not l.startswith(("#include", "namespace "))]
(out / "first_event.cpp").write_text(
    "\n".join(top) + "\n\nint main() {\n" + "\n".join("    " + l for l in body) + "\n    return 0;\n}\n",
    encoding="utf-8",
)
