"""Fakes of the engine classes the Godot sender touches, for tests/godot/gdscript.py: FileAccess and
DirAccess over a directory standing for `user://`; a Node whose `get_tree().create_timer(s)`
records the wait and times out at once, and whose `add_child` takes an HTTPRequest that sends
through a Python function (`request_completed` emitted with Godot's arguments: result, response
code, headers, body bytes). Installed as `Interpreter.engine` (`engine(files, http)`).
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
    """A Node: `add_child`, `get_tree().create_timer(seconds).timeout` (recorded in `waits`)."""

    waits: list[float] = []

    def __init__(self, it, obj):
        self.obj = obj
        self.children: list = []

    def add_child(self, child):
        self.children.append(child)

    def get_tree(self):
        return gd.EngineObject("SceneTree", fake=SceneTreeFake())


class SceneTreeFake:
    def create_timer(self, seconds, *flags):
        NodeFake.waits.append(seconds)
        source = SignalSource({"timeout": []})
        source.owner = gd.EngineObject("SceneTreeTimer", fake=source)
        return source.owner


class SignalSource:
    """An engine object whose signals have fired already: awaiting one gives its arguments."""

    def __init__(self, fired: dict):
        self.fired = fired

    def member(self, name, where):
        if name in self.fired:
            return gd.Signal(self.owner, name)
        raise gd.NotExecuted(f"{where}: {name} on a fake")

    def awaited(self, name, where):
        args = self.fired[name]
        if not args:
            return None
        return args[0] if len(args) == 1 else gd.GDArray(args)


class HTTPRequestFake:
    """HTTPRequest: `request(url, headers, method, body)` sends through `send(method, url, headers,
    body) -> (status, body)` (status 0: a connection error, result RESULT_CANT_CONNECT)."""

    RESULT_SUCCESS = 0
    RESULT_CANT_CONNECT = 4

    def __init__(self, send):
        self.send = send
        self.requests: list = []

    def constant(self, name, where):
        return getattr(self, name)

    def static_new(self):
        request = HTTPRequestObject(self)
        obj = gd.EngineObject("HTTPRequest", fake=request)
        request.owner = obj
        return obj


class HTTPRequestObject(SignalSource):
    def __init__(self, engine: HTTPRequestFake):
        super().__init__({})
        self.engine = engine
        self.timeout = 0.0
        self.freed = False

    def set_property(self, name, value, where):
        if name != "timeout":
            raise gd.NotExecuted(f"{where}: HTTPRequest.{name}")
        self.timeout = value

    def member(self, name, where):
        if name == "request_completed":
            return gd.Signal(self.owner, name)
        raise gd.NotExecuted(f"{where}: HTTPRequest.{name}")

    def request(self, url, headers, method, body):
        verb = {HTTPClientFake.METHOD_GET: "GET", HTTPClientFake.METHOD_POST: "POST"}[method]
        self.engine.requests.append({"url": url, "timeout": self.timeout})
        status, answer = self.engine.send(verb, url, list(headers), body)
        result = HTTPRequestFake.RESULT_SUCCESS if status else HTTPRequestFake.RESULT_CANT_CONNECT
        self.fired["request_completed"] = [result, status, gd.PackedStringArray(),
                                           gd.PackedByteArray(answer.encode("utf-8"))]
        return 0

    def queue_free(self):
        self.freed = True


class HTTPClientFake:
    METHOD_GET = 0
    METHOD_POST = 2

    def constant(self, name, where):
        return getattr(self, name)


def engine(files: Files, send=None) -> dict:
    """The fakes to install as `Interpreter.engine`."""
    fakes = {"Node": NodeFake, "FileAccess": FileAccessFake(files), "DirAccess": DirAccessFake(files),
             "HTTPClient": HTTPClientFake()}
    if send is not None:
        fakes["HTTPRequest"] = HTTPRequestFake(send)
    return fakes
