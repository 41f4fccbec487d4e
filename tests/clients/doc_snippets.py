"""Writes the snippets of docs/clients.md as compilable files (the tests compile them).

Usage: doc_snippets.py DOCS_MD OUT_DIR
Every ts, csharp, cpp and gdscript block belongs to a section below, which has one block per
language (GDScript as a whole script, OUT_DIR/first_event.gd and sign_in.gd, whose names
gdscript_snippets.py checks against the addon):
- "Your first event": OUT_DIR/first_event.ts (a module), FirstEvent.cs (inside an async method,
  with Unity's `Application` stubbed) and first_event.cpp (includes on top, statements in main).
- "Use your game's sign-in": sign_in.ts, SignIn.cs (its classes beside the method, compiled with
  FirstEvent.cs) and sign_in.cpp, likewise.
"""
import re
import sys
from pathlib import Path

SECTIONS = {"Your first event": ("first_event", "FirstEvent"), "Use your game's sign-in": ("sign_in", "SignIn")}


def blocks_by_section(text):
    """{section title: {language: body}}; exits on a block outside the sections or a second one."""
    found = {title: {} for title in SECTIONS}
    for section in re.split(r"^## ", text, flags=re.M)[1:]:
        title = section.splitlines()[0].strip()
        for lang, body in re.findall(r"```(ts|csharp|cpp|gdscript)\n(.*?)```", section, re.S):
            if title not in found:
                sys.exit(f"a {lang} block under '## {title}' is not compiled: put it in one of {sorted(SECTIONS)}")
            if lang in found[title]:
                sys.exit(f"more than one {lang} block under '## {title}'")
            found[title][lang] = body
    for title, blocks in found.items():
        missing = {"ts", "csharp", "cpp", "gdscript"} - blocks.keys()
        if missing:
            sys.exit(f"no {', '.join(sorted(missing))} block under '## {title}'")
    return found


def csharp(body, name, stub_application):
    """Usings on top, top-level classes (from a `class` line to the `}` closing it) beside the
    method, the other statements inside an async method."""
    usings, classes, statements, comments = [], [], [], []
    in_class = False
    for line in body.splitlines():
        if line.startswith("using "):
            usings.append(line)
        elif in_class or re.match(r"(public |internal )?(sealed |static )?class ", line):
            # The comment lines right above a class are its own.
            classes.extend(comments + [line])
            comments, in_class = [], line != "}"
        elif line.startswith("//"):
            comments.append(line)
        else:
            statements.extend(comments + [line])
            comments = []
    statements.extend(comments)
    if "using System.Threading.Tasks;" not in usings:
        usings.append("using System.Threading.Tasks;")
    stub = "static class Application { public static string persistentDataPath = \".\"; }\n\n" if stub_application else ""
    return (
        "\n".join(usings) + "\n\n" + stub + "\n".join(classes) + ("\n\n" if classes else "")
        + f"static class {name}\n{{\n    public static async Task Run()\n    {{\n"
        + "\n".join("        " + l for l in statements)
        + "\n    }\n}\n"
    )


def cpp(body):
    top = [l for l in body.splitlines() if l.startswith(("#include", "namespace "))]
    rest = [l for l in body.splitlines() if not l.startswith(("#include", "namespace "))]
    return "\n".join(top) + "\n\nint main() {\n" + "\n".join("    " + l for l in rest) + "\n    return 0;\n}\n"


def main():
    docs, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    for title, blocks in blocks_by_section(docs.read_text(encoding="utf-8")).items():
        stem, name = SECTIONS[title]
        (out / f"{stem}.ts").write_text(blocks["ts"] + "\nexport {};\n", encoding="utf-8")
        (out / f"{name}.cs").write_text(csharp(blocks["csharp"], name, stem == "first_event"), encoding="utf-8")
        (out / f"{stem}.cpp").write_text(cpp(blocks["cpp"]), encoding="utf-8")
        (out / f"{stem}.gd").write_text(blocks["gdscript"], encoding="utf-8")


main()
