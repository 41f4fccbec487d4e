"""Fakes of the engine classes the Godot sender touches, for tests/godot/gdscript.py: FileAccess and
DirAccess over a directory standing for `user://`, and a Node outside any scene tree (the sender
needs none when it is given a `transport` and a `sleep`). Installed as `Interpreter.engine`.
"""

from __future__ import annotations

from pathlib import Path

import gdscript as gd


class Files:
    """FileAccess and DirAccess over a directory standing for `user://`."""

    def __init__(self, root: Path):
        self.root = root

    def path(self, p: str) -> Path:
        assert p.startswith("user://"), f"a path outside user://: {p}"
        return self.root / p[len("user://"):]


class FileAccessFake:
    READ, WRITE, READ_WRITE = 1, 2, 3

    def __init__(self, files: Files):
        self.files = files

    def constant(self, name, where):
        return getattr(self, name)

    def static_file_exists(self, p):
        return self.files.path(p).is_file()

    def static_get_file_as_string(self, p):
        return self.files.path(p).read_text(encoding="utf-8")

    def static_open(self, p, mode):
        path = self.files.path(p)
        if mode == self.READ_WRITE and not path.exists():
            return None
        handle = open(path, "r+" if mode == self.READ_WRITE else "w", encoding="utf-8", newline="")
        return gd.EngineObject("FileAccess", fake=OpenFile(handle))


class OpenFile:
    def __init__(self, handle):
        self.handle = handle

    def seek_end(self, position=0):
        self.handle.seek(0, 2)

    def store_string(self, text):
        self.handle.write(text)

    def flush(self):
        self.handle.flush()

    def close(self):
        self.handle.close()


class DirAccessFake:
    def __init__(self, files: Files):
        self.files = files

    def static_make_dir_recursive_absolute(self, p):
        self.files.path(p).mkdir(parents=True, exist_ok=True)
        return 0

    def static_rename_absolute(self, a, b):
        self.files.path(a).replace(self.files.path(b))
        return 0


class NodeFake:
    """A Node outside any scene tree: the sender needs none with a transport and a sleep."""

    def __init__(self, it, obj):
        self.obj = obj
