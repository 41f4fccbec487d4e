"""The Godot sender (`ContractClient` in the runtime), executed by the GDScript interpreter over
fakes (tests/godot/fakes.py): a scripted server behind the client's `transport` Callable with a
`sleep` that records the backoff, or behind a fake HTTPRequest and SceneTree timers (the default
path), a fixed clock, and FileAccess/DirAccess on a temporary directory standing for `user://`. Mirrors tests/clients/typescript/unit.ts: retry and backoff, no retry on 4xx, giving
up, refusing an invalid event without a request, guest login and the returning guest, refresh
and its fallback, the version header, the token provider and 401s, batches within the limits
with verdicts mapped back, the deployed API's failed records, the bounded persistent queue (and
a torn journal line). Prints `ok - ...`/`FAIL - ...`, ends with `godot sender: N passed, M failed`.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import gdscript as gd  # noqa: E402
import fakes  # noqa: E402

ROOT = HERE.parents[1]
MODULE = ROOT / "generated/game_events/clients/godot/addons/contractc_game_events/game_events.gd"
NOW_MS = 1_708_603_200_000
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


# ----- the scripted server ----------------------------------------------------------------------


class Server:
    """A scripted server: `answer(call)` → (status, body); every call recorded."""

    def __init__(self, answer):
        self.answer = answer
        self.calls: list[dict] = []
        self.issued = 0

    def __call__(self, method, url, headers, body):
        h = {line.split(": ", 1)[0].lower(): line.split(": ", 1)[1] for line in headers}
        call = {"method": method, "url": url, "path": urlsplit(url).path, "query": parse_qs(urlsplit(url).query),
                "headers": h, "body": body}
        self.calls.append(call)
        status, answer = self.answer(call)
        if status == 0:
            return gd.GDDict([("status", 0), ("error", answer)])
        text = answer if isinstance(answer, str) else json.dumps(answer)
        return gd.GDDict([("status", status), ("body", text)])

    def sent(self, path="/prod/put-records"):
        return [c for c in self.calls if c["path"] == path]


def login_answer(server: Server, call: dict):
    server.issued += 1
    return 200, {"user_id": "u1", "guest_secret": "s1", "auth_token": f"t{server.issued}",
                 "refresh_token": f"r{server.issued}", "auth_token_expires_in": 900,
                 "refresh_token_expires_in": 86400}


def routes(**by_path):
    """An answer function: login/refresh handled, other paths by `by_path` (default 200 "ok")."""
    def answer(call):
        if call["path"].endswith("/login-as-guest"):
            return login_answer(server_of[0], call)
        handler = by_path.get(call["path"].rsplit("/", 1)[-1].replace("-", "_"))
        if handler is not None:
            return handler(call)
        if call["path"].endswith("/put-records"):
            return serve_verdicts(call)
        return 200, "Successfully added event"
    server_of: list[Server] = []
    server = Server(answer)
    server_of.append(server)
    return server


def serve_verdicts(call):
    events = json.loads(call["body"])
    return 200, {"results": [{"index": i, "verdict": "accept"} for i in range(len(events))]}


class Harness:
    """A client of game_events over `server`: through its `transport` option and a recorded
    `sleep`, or (`through_engine`) through the HTTPRequest and timer fakes, as in a game."""

    def __init__(self, server: Server, state: Path | None = None, through_engine: bool = False, **options):
        self.state = state or Path(tempfile.mkdtemp(prefix="godot-sender-"))
        self.it = gd.Interpreter()
        files = fakes.Files(self.state)

        def send(method, url, headers, body):
            answer = server(method, url, headers, body)
            return answer.get("status"), answer.get("body", "")

        self.it.engine = fakes.engine(files, send if through_engine else None)
        self.module = self.it.load(MODULE)
        self.rt = self.it.get(self.module, "rt")
        self.sleeps: list[int] = []
        self.clock = [NOW_MS]
        defaults = {"base_url": "https://api.example.com/prod/", "state_dir": "user://contractc",
                    "transport": gd.GDCallable(builtin=server, name="transport"),
                    "sleep": gd.GDCallable(builtin=lambda ms: self.sleeps.append(ms), name="sleep"),
                    "random": gd.GDCallable(builtin=lambda: 0.5, name="random"),
                    "now_ms": gd.GDCallable(builtin=lambda: self.clock[0], name="now_ms")}
        if through_engine:
            del defaults["transport"], defaults["sleep"]
        defaults.update(options)
        self.options = gd.GDDict(defaults.items())
        self.client = self.it.call_static(self.module, "create_client", self.options)

    def new_client(self, contract: dict | None = None):
        if contract is None:
            return self.it.call_static(self.module, "create_client", self.options)
        info = gd.from_python(contract)
        validate = self.it.get(self.module, "validate")
        encode = self.it.get(self.module, "encode")
        return self.it.new(self.it.get(self.rt, "ContractClient"), info, validate, encode, self.options)

    def event(self, event_id: str):
        return self.it.call_static(self.module, "make_login_event", event_id, self.clock[0] * 1000)

    def call(self, name: str, *args, client=None):
        target = client if client is not None else self.client
        args = [gd.GDArray(a) if isinstance(a, list) else a for a in args]
        return gd.to_python(self.it.call_method(target, name, args, gd.Location("<test>", 0)))


def ids(call) -> list[str]:
    return [e["event_id"] for e in json.loads(call["body"])]


# ----- tests ----------------------------------------------------------------------------------------


def retries_then_succeeds():
    answers = iter([(0, "connection reset"), (503, "busy"), (429, "slow down"), (200, "Successfully added event")])
    server = routes(put_record=lambda call: next(answers))
    h = Harness(server)
    result = h.call("send", h.event("e1"))
    eq((result["status"], result["error"]), (200, ""), "answer")
    eq(len(server.sent("/prod/put-record")), 4, "attempts")
    eq(h.sleeps, [100, 200, 400], "backoff: half of 200, 400, 800 ms (random 0.5)")


test("retries network errors, 5xx and 429 with growing jittered backoff, then succeeds", retries_then_succeeds)


def through_the_engine():
    answers = iter([(0, "connection refused"), (503, "busy"), (200, "Successfully added event")])
    server = routes(put_record=lambda call: next(answers))
    fakes.NodeFake.waits.clear()
    h = Harness(server, through_engine=True, timeout_ms=5000)
    result = h.call("send", h.event("e1"))
    eq((result["status"], result["body"]), (200, "Successfully added event"), "answer")
    eq(fakes.NodeFake.waits, [0.1, 0.2], "timers: the backoff in seconds")
    requests = h.it.engine["HTTPRequest"].requests
    eq({r["timeout"] for r in requests}, {5.0}, "HTTPRequest.timeout from timeout_ms")
    eq(len(requests), 4, "the login, then three tries")


test("the default transport: an HTTPRequest child per request and SceneTree timers for the backoff",
     through_the_engine)


def never_retries_4xx():
    server = routes(put_record=lambda call: (400, {"message": "bad"}))
    h = Harness(server)
    result = h.call("send", h.event("e1"))
    eq(result["status"], 400, "status")
    eq(result["error"], 'HTTP 400: {"message":"bad"}', "error")
    eq(len(server.sent("/prod/put-record")), 1, "one request")


test("never retries a 4xx", never_retries_4xx)


def gives_up():
    server = routes(put_record=lambda call: (500, "down"))
    h = Harness(server, max_attempts=3)
    result = h.call("send", h.event("e1"))
    eq((result["status"], result["error"]), (500, "HTTP 500: down"), "answer")
    eq(len(server.sent("/prod/put-record")), 3, "attempts")


test("gives up after max_attempts on a persistent 5xx", gives_up)


def refuses_invalid():
    server = routes()
    h = Harness(server)
    bad = h.it.call_static(h.module, "make_login_event", "not valid!", NOW_MS * 1000)
    result = h.call("send", bad)
    eq(result["status"], 0, "not sent")
    assert result["error"].startswith("contract violation: $.event_id: pattern"), result["error"]
    eq(server.calls, [], "no request, not even a login")
    eq([v["code"] for v in h.call("enqueue", bad)], ["pattern"], "enqueue's violations")
    eq(h.call("queued"), 0, "not queued")


test("an invalid event is refused locally and never sent", refuses_invalid)


def guest_identity():
    server = routes()
    h = Harness(server)
    h.call("send", h.event("e1"))
    h.call("send", h.event("e2"))
    logins = server.sent("/prod/login-as-guest")
    eq(len(logins), 1, "one login for two sends")
    eq(h.call("user_id"), "u1", "user id kept")
    eq([c["headers"]["authorization"] for c in server.sent("/prod/put-record")], ["t1", "t1"], "token sent")
    h.clock[0] += 3 * 86400 * 1000  # both tokens expired: a new client logs the same guest in
    again = h.new_client()
    h.call("send", h.event("e3"), client=again)
    second = server.sent("/prod/login-as-guest")[1]
    eq((second["query"]["user_id"], second["query"]["guest_secret"]), (["u1"], ["s1"]), "returning guest")
    assert all(c["headers"]["x-contract-version"] == "1.2.0" for c in server.calls), "X-Contract-Version"


test("logs in as a guest once, keeps the identity in user://, and a new client logs the same guest in; "
     "every request carries X-Contract-Version", guest_identity)


def refresh():
    refused = [False]
    server = routes(refresh_access_token=lambda call: (401, "no") if refused[0] else
                    (200, {"auth_token": "refreshed", "auth_token_expires_in": 900}))
    h = Harness(server)
    h.call("send", h.event("e1"))
    h.clock[0] += 850_000  # 50 s before expiry: inside the 60 s margin
    h.call("send", h.event("e2"))
    eq(server.sent("/prod/refresh-access-token")[0]["query"]["refresh_token"], ["r1"], "refresh token")
    h.clock[0] += 850_000
    refused[0] = True
    h.call("send", h.event("e3"))
    eq([c["headers"]["authorization"] for c in server.sent("/prod/put-record")], ["t1", "refreshed", "t2"],
       "tokens: the first, the refreshed one, a new login after a refused refresh")


test("refreshes the token before it expires; logs in again when the refresh is refused", refresh)


def unauthorized_once():
    server = routes(put_record=lambda call: (401, "expired") if call["headers"]["authorization"] == "t1" else (200, "ok"))
    h = Harness(server)
    eq(h.call("send", h.event("e1"))["status"], 200, "sent after signing in again")
    eq(len(server.sent("/prod/login-as-guest")), 2, "a second login")
    server.answer = lambda call: (401, "no") if not call["path"].endswith("login-as-guest") else login_answer(server, call)
    eq(h.call("send", h.event("e2"))["status"], 401, "a second 401 is the answer")


test("a 401 logs in again once, then gives the 401", unauthorized_once)


def token_provider():
    asked: list[bool] = []

    def provide(force):
        asked.append(force)
        return gd.GDDict([("token", f"game-{len(asked)}"), ("expires_at_unix", (h.clock[0] + 900_000) / 1000.0)])

    refused: set[str] = set()
    server = routes(put_record=lambda call: (401, "x") if call["headers"]["authorization"] in refused else (200, "ok"))
    h = Harness(server, token_provider=gd.GDCallable(builtin=provide, name="provider"))
    h.call("send", h.event("e1"))
    h.clock[0] += 800_000  # 100 s before expiry: kept
    h.call("send", h.event("e2"))
    h.clock[0] += 45_000  # 55 s before: asked again, not forced
    h.call("send", h.event("e3"))
    refused.add("game-2")
    h.call("send", h.event("e4"))
    eq([c["headers"]["authorization"] for c in server.sent("/prod/put-record")],
       ["game-1", "game-1", "game-2", "game-2", "game-3"], "tokens sent")
    eq(asked, [False, False, True], "force_refresh")
    eq(server.sent("/prod/login-as-guest"), [], "no guest login")
    eq(h.call("user_id"), "", "no guest identity")


test("a token provider replaces the guest login; within the margin it is asked again; a 401 forces it",
     token_provider)


def provider_failure():
    server = routes()
    h = Harness(server, max_attempts=2,
                token_provider=gd.GDCallable(builtin=lambda force: gd.GDDict(), name="provider"))
    h.call("enqueue", h.event("e1"))
    result = h.call("flush")
    eq(result["error"], "the token provider gave no token", "error")
    eq((h.call("queued"), len(h.sleeps)), (1, 1), "still queued, retried once as a network error")


test("a provider that gives no token is retried as a network error; the event stays queued", provider_failure)


def batches_split():
    server = routes()
    h = Harness(server)
    client = h.new_client({"name": "game_events", "version": "1.2.0", "route": "/prod/put-record",
                           "batch_route": "/prod/put-records", "max_body_bytes": 65536, "max_batch_events": 2})
    result = h.call("send_batch", [h.event(f"e{i}") for i in range(5)], client=client)
    eq([ids(c) for c in server.sent()], [["e0", "e1"], ["e2", "e3"], ["e4"]], "requests")
    eq(server.sent()[0]["headers"]["content-type"], "application/json", "content type")
    eq((result["sent"], result["accepted"], result["failed"], result["error"]), (5, 5, 0, ""), "counts")
    eq([r["outcome"] for r in result["results"]], ["accepted"] * 5, "per event")


test("a batch goes out as JSON arrays of at most max_batch_events; verdicts map back to their events",
     batches_split)


def batch_limits():
    server = routes()
    h = Harness(server)
    contract = {"name": "game_events", "version": "1.2.0", "route": "/prod/put-record",
                "batch_route": "/prod/put-records", "max_body_bytes": 65536, "max_batch_events": 900}
    h.call("send_batch", [h.event(f"m{i}") for i in range(501)], client=h.new_client(contract))
    eq([len(json.loads(c["body"])) for c in server.sent()], [500, 1], "never more than 500 per request")
    server.calls.clear()
    events = [h.it.call_static(h.module, "make_login_event", f"e{i}", NOW_MS * 1000,
                               gd.GDDict([("event_data", "x" * 350)])) for i in range(3)]
    small = dict(contract, max_body_bytes=300, max_batch_events=2)
    h.call("send_batch", events, client=h.new_client(small))
    eq([len(json.loads(c["body"])) for c in server.sent()], [1, 1, 1],
       "events of 450 bytes go one by one when max_body_bytes × max_batch_events is 600")


test("never more than 500 events per request, whatever the contract allows; nor more bytes than "
     "max_body_bytes × max_batch_events", batch_limits)


def deployed_api():
    tries: dict[str, int] = {}

    def answer(call):
        events = json.loads(call["body"])
        results = []
        for i, e in enumerate(events):
            tries[e["event_id"]] = tries.get(e["event_id"], 0) + 1
            if e["event_id"] == "bad" or (e["event_id"] == "late" and tries["late"] == 1):
                results.append({"index": i, "result": "failed", "error": "ProvisionedThroughputExceeded",
                                "message": "slow down"})
            else:
                results.append({"index": i, "result": "added"})
        failures = sum(r["result"] == "failed" for r in results)
        return (500 if failures else 200), {"request_id": "r", "added": len(results) - failures,
                                            "failed": failures, "results": results}

    server = routes(put_records=answer)
    h = Harness(server, max_attempts=3)
    result = h.call("send_batch", [h.event("ok"), h.event("late"), h.event("bad")])
    eq([ids(c) for c in server.sent()], [["ok", "late", "bad"], ["late", "bad"], ["bad"]], "resent alone")
    eq([r["outcome"] for r in result["results"]], ["added", "added", "failed"], "outcomes")
    eq(result["results"][2]["error"], "ProvisionedThroughputExceeded: slow down", "the failed record's error")
    assert result["error"].startswith("HTTP 500"), result["error"]
    for e in ["ok", "late", "bad"]:
        h.call("enqueue", h.event(e))
    server.calls.clear()
    flushed = h.call("flush")
    eq((flushed["added"], flushed["remaining"]), (2, 1), "added events leave the queue, the failing one stays")


test("the deployed API's answer: a failed record is sent again alone, an added one never", deployed_api)


def whole_resend():
    answers = iter([(500, "Failed to add events"), (200, None)])

    def answer(call):
        status, body = next(answers)
        return (status, body) if body is not None else serve_verdicts(call)

    server = routes(put_records=answer)
    h = Harness(server)
    result = h.call("send_batch", [h.event("a"), h.event("b")])
    eq([ids(c) for c in server.sent()], [["a", "b"], ["a", "b"]], "the whole request again")
    eq(result["accepted"], 2, "accepted")


test("a 5xx without results (\"Failed to add events\") sends the whole batch again", whole_resend)


def queue_bounded_and_persistent():
    server = routes()
    h = Harness(server, max_queued_events=3)
    for i in range(5):
        h.call("enqueue", h.event(f"e{i}"))
    eq((h.call("queued"), h.it.get(h.client, "dropped")), (3, 2), "queued, dropped")
    # A crash mid-write leaves a torn record: the next client skips it whole.
    journal = h.state / "contractc/contractc.game_events.queue"
    with open(journal, "a", encoding="utf-8") as f:
        f.write('+99 {"event_id":"torn"')
    again = h.new_client()
    eq(h.call("queued", client=again), 3, "the next client finds the queue, not the torn record")
    result = h.call("flush", client=again)
    eq([ids(c) for c in server.sent()], [["e2", "e3", "e4"]], "the newest three, in order")
    eq((result["accepted"], result["remaining"], result["error"]), (3, 0, ""), "flushed")
    eq(h.call("queued", client=h.new_client()), 0, "nothing left after a restart")


test("the queue is bounded (the oldest dropped and counted), survives a restart, skips a torn record",
     queue_bounded_and_persistent)


def failed_flush_keeps():
    down = [True]
    server = routes(put_records=lambda call: (503, "down") if down[0] else serve_verdicts(call))
    h = Harness(server, max_attempts=2)
    h.call("enqueue", h.event("a"))
    h.call("enqueue", h.event("b"))
    first = h.call("flush")
    eq((first["remaining"], first["error"]), (2, "HTTP 503: down"), "kept")
    down[0] = False
    second = h.call("flush")
    eq((second["accepted"], second["remaining"]), (2, 0), "sent by the next flush")
    dedup = [json.loads(c["body"])[0]["event_uuid"] for c in server.sent()]
    eq(len(set(dedup)), 1, "every retry carries the same event_uuid")


test("a failed flush keeps the events for the next one, with the same event_uuid", failed_flush_keeps)

print(f"godot sender: {passed} passed, {failed} failed")
sys.exit(0 if failed == 0 else 1)
