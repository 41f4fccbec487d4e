"""The Godot sender against a real `contract-runtime serve`, run by the GDScript interpreter: the
client's own code, HTTPRequest path included, over real HTTP (tests/godot/fakes.py: an
HTTPRequest that sends with Python's urllib; FileAccess on a temporary `user://`): guest login and the returning guest, a single
event (200 "Successfully added event"), a batch (every event accepted), an invalid event refused
locally and refused the same way by the server, queued events sent by the next client, and
match_events (scope `authenticated`) single and batch. Starts its own serve.
Usage: e2e.py CONTRACT_RUNTIME_BINARY
Prints `ok - ...`/`FAIL - ...`, ends with `godot e2e: N passed, M failed`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import gdscript as gd  # noqa: E402
import fakes  # noqa: E402

ROOT = HERE.parents[1]
GAME = ROOT / "generated/game_events/clients/godot/addons/contractc_game_events/game_events.gd"
MATCH = ROOT / "generated/match_events/clients/godot/addons/contractc_match_events/match_events.gd"
passed = 0
failed = 0


def test(name, body) -> None:
    global passed, failed
    try:
        body()
    except AssertionError as error:
        failed += 1
        print(f"FAIL - {name}: {error}")
        return
    except Exception as error:  # noqa: BLE001
        failed += 1
        print(f"FAIL - {name}: {type(error).__name__}: {error}")
        return
    passed += 1
    print(f"ok - {name}")


def eq(got, want, what="") -> None:
    assert got == want, f"{what}: got {got!r}, want {want!r}"


sent: list[dict] = []


def http(method, url, headers, body):
    """The client's transport: a real request; `{status, body}`, status 0 on a network error."""
    h = dict(line.split(": ", 1) for line in headers)
    sent.append({"url": url, "headers": h, "body": body})
    request = urllib.request.Request(url, data=body.encode() if method == "POST" else None, method=method,
                                     headers=h)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return gd.GDDict([("status", answer.status), ("body", answer.read().decode())])
    except urllib.error.HTTPError as error:
        return gd.GDDict([("status", error.code), ("body", error.read().decode())])
    except OSError as error:
        return gd.GDDict([("status", 0), ("error", str(error))])


def unpack(answer):
    return answer.get("status"), answer.get("body", answer.get("error", ""))


class Client:
    def __init__(self, module: Path, state: Path, base_url: str, **options):
        self.it = gd.Interpreter()
        # Through the client's own HTTPRequest path: the fake sends with urllib.
        self.it.engine = fakes.engine(fakes.Files(state), lambda *call: unpack(http(*call)))
        self.module = self.it.load(module)
        opts = {"base_url": base_url, "state_dir": "user://contractc"}
        opts.update(options)
        self.client = self.it.call_static(self.module, "create_client", gd.from_python(opts))

    def make(self, name: str, *args):
        return self.it.call_static(self.module, name, *[gd.from_python(a) for a in args])

    def call(self, name: str, *args):
        args = [gd.GDArray(a) if isinstance(a, list) else a for a in args]
        return gd.to_python(self.it.call_method(self.client, name, args, gd.Location("<e2e>", 0)))


def start_serve(binary: str, work: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (work / "serve").mkdir()
    log = open(work / "serve.log", "w")
    process = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(work / "serve/data"),
                                "--commit-interval-ms", "300", "--dev-mint-scopes", "--guests-per-minute", "0"],
                               cwd=work / "serve", stdout=log, stderr=subprocess.STDOUT)
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).close()
            return process, f"http://127.0.0.1:{port}/prod/"
        except OSError:
            time.sleep(0.1)
    process.terminate()
    raise SystemExit(f"serve did not start: {(work / 'serve.log').read_text()[-500:]}")


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: e2e.py CONTRACT_RUNTIME_BINARY", file=sys.stderr)
        return 2
    binary = sys.argv[1]
    if not os.access(binary, os.X_OK):
        print(f"FAIL - no contract-runtime binary at {binary}")
        print("godot e2e: 0 passed, 1 failed")
        return 1
    work = Path(tempfile.mkdtemp(prefix="godot-e2e-"))
    serve, base = start_serve(binary, work)
    try:
        run(work, base)
    finally:
        serve.terminate()
        serve.wait(timeout=30)
    print(f"godot e2e: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def run(work: Path, base: str) -> None:
    state = work / "state"
    state.mkdir()

    def wall_clock(c: Client) -> int:
        return gd.to_python(c.it.call_static(c.it.get(c.module, "rt"), "local_wall_clock"))

    def login():
        first = Client(GAME, state / "login", base)
        eq(first.call("login")["error"], "", "login")
        user = first.call("user_id")
        assert len(user) == 36, f"user_id {user!r}"
        again = Client(GAME, state / "login", base)
        again.call("login")
        eq(again.call("user_id"), user, "returning guest")
        assert f"user_id={user}" in sent[-1]["url"], sent[-1]["url"]

    test("guest login keeps user_id and guest_secret in user://; a returning guest gets the same user", login)

    game = Client(GAME, state / "game", base)
    clock = wall_clock(game)

    def single():
        answer = game.call("send", game.make("make_new_game_event", "gd-single", clock, {"event_data": "first é 🐢"}))
        eq((answer["status"], answer["body"], answer["error"]), (200, "Successfully added event", ""), "answer")

    test('a single event lands: 200 "Successfully added event"', single)

    def batch():
        events = [game.make("make_login_event", f"gd-{i}", clock, {"event_data": f'godot "client" {i}'}) for i in range(3)]
        answer = game.call("send_batch", events)
        eq([answer["accepted"], answer["quarantined"], answer["rejected"], answer["failed"]], [3, 0, 0, 0], "counts")
        last = [s for s in sent if s["url"].endswith("/prod/put-records")][-1]
        eq(last["headers"]["Content-Type"], "application/json", "content type")
        eq(len(json.loads(last["body"])), 3, "a JSON array")

    test("a batch lands as a JSON array: every event accepted", batch)

    def invalid():
        before = len(sent)
        bad = game.make("make_end_game_event", "not valid!", clock)
        answer = game.call("send", bad)
        eq([(v["code"], v["path"]) for v in answer["violations"]], [("pattern", "$.event_id")], "violations")
        eq(len(sent), before, "nothing sent")
        tokens = json.loads((state / "game/contractc/contractc.game_events.tokens.json").read_text())
        body = gd.to_python(game.it.call_static(game.module, "encode", bad))
        request = urllib.request.Request(base + "put-record", data=body.encode(), method="POST",
                                         headers={"Authorization": tokens["auth_token"], "Content-Type": "application/json"})
        try:
            urllib.request.urlopen(request, timeout=30)
            raise AssertionError("the server took the invalid event")
        except urllib.error.HTTPError as error:
            eq(error.code, 400, "server status")
            server = json.loads(error.read().decode())
            eq([(v["code"], v["path"]) for v in server["violations"]], [("pattern", "$.event_id")], "server violations")

    test("an invalid event is refused locally with the server's code and path, and never sent", invalid)

    def queue():
        dying = Client(GAME, state / "queue", base)
        for i in range(5):
            dying.call("enqueue", dying.make("make_login_event", f"gd-q{i}", clock))
        eq(dying.call("queued"), 5, "queued")
        revived = Client(GAME, state / "queue", base)
        eq(revived.call("queued"), 5, "queued after a restart")
        result = revived.call("close")
        eq([result["sent"], result["accepted"], result["remaining"], result["error"]], [5, 5, 0, ""], "flushed")

    test("queued events survive a client that dies without flushing", queue)

    def match_events():
        m = Client(MATCH, state / "match", base, login_query={"scope": "authenticated"})
        now = gd.to_python(m.it.call_static(m.it.get(m.module, "rt"), "now_micros"))
        players = [{"player_id": "123e4567-e89b-12d3-a456-426614174000", "skill": 1200.5},
                   {"player_id": "123e4567-e89b-12d3-a456-426614174001"}]

        def started(event_id):
            return m.make("make_match_started_event", event_id, now, "m-0123456789ab", "eu-west",
                          {"version": "1.2.3", "platform": "pc"}, "harbour", players)

        eq(m.call("send", started("6f1c2d3e-0000-4000-8000-00000000a001"))["status"], 200, "single")
        ended = m.make("make_match_ended_event", "6f1c2d3e-0000-4000-8000-00000000a003", now, "m-0123456789ab",
                       "us-east", {"version": "1.2.3"}, 1800, {"alice": 10, "bob": 12}, {"prize_pool": "1500.25"})
        answer = m.call("send_batch", [started("6f1c2d3e-0000-4000-8000-00000000a002"), ended])
        eq([answer["sent"], answer["accepted"], answer["quarantined"], answer["rejected"]], [2, 2, 0, 0], "batch")

    test("match_events (scope authenticated): single and batch", match_events)

    def versions():
        assert sent, "no requests"
        for s in sent:
            is_match = "scope=authenticated" in s["url"] or "match_id" in s["body"]
            eq(s["headers"].get("X-Contract-Version"), "2.1.0" if is_match else "1.2.0", f"header on {s['url']}")

    test("every request carried X-Contract-Version", versions)


if __name__ == "__main__":
    sys.exit(main())
