"""The Godot client's part of the game's own sign-in end to end (tests/clients/sign_in.py runs it
beside the TypeScript, C# and C++ ones, against the same `serve --trust-issuer IDP`).

The generated game_events module and its runtime run in the GDScript interpreter
(tests/godot/gdscript.py) with engine fakes (tests/godot/fakes.py): every HTTPRequest, the
client's to serve and the token provider's to the IdP, is real HTTP (urllib); `user://` is
STATE_DIR. The token provider is GDScript (tests/godot/sign_in.gd): it asks the test IdP
(tests/clients/test_idp.py) for SUBJECT's token through an HTTPRequest it awaits, and the client
awaits it. The client's clock is the test's, to enter the refresh margin at once. As
tests/clients/typescript/sign_in.ts: an expired first token costs one 401, one forced ask and one
retry; a batch asks nothing more; queued events flushed once the clock is within the margin ask
again; two 401s in a row fail the flush and keep the events queued for the next one.

Usage: python tests/godot/sign_in.py BASE_URL IDP_URL SUBJECT STATE_DIR
Prints `ok - ...`/`FAIL - ...`, ends with `godot sign-in: N passed, M failed`; writes
STATE_DIR/sent.ndjson, the `event_uuid` of every event made to be sent (sign_in.py finds each in
the lake once, with player_id SUBJECT).
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

passed = 0
failed = 0


def test(name, body) -> None:
    global passed, failed
    try:
        body()
    except AssertionError as error:
        failed += 1
        print(f"FAIL - {name}: {error}", flush=True)
        return
    except Exception as error:  # noqa: BLE001: a test that crashed is a failure
        failed += 1
        print(f"FAIL - {name}: {type(error).__name__}: {error}", flush=True)
        return
    passed += 1
    print(f"ok - {name}", flush=True)


def eq(got, want, what="") -> None:
    assert got == want, f"{what}: got {got!r}, want {want!r}"


def finish() -> int:
    print(f"godot sign-in: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def main(argv) -> int:
    global failed
    if len(argv) != 5:
        print("usage: sign_in.py BASE_URL IDP_URL SUBJECT STATE_DIR", file=sys.stderr)
        return 2
    base_url, idp_url, subject, state_dir = argv[1:]
    try:
        import gdscript as gd
        import fakes
    except ImportError as error:  # gdtoolkit missing: a failure, never a skip
        failed += 1
        print(f"FAIL - the GDScript interpreter loads (gdtoolkit, tests/requirements.txt): {error}")
        return finish()
    run(gd, fakes, base_url, idp_url, subject, Path(state_dir))
    return finish()


def run(gd, fakes, base_url: str, idp_url: str, subject: str, state: Path) -> None:
    state.mkdir(parents=True, exist_ok=True)
    sent_path = state / "sent.ndjson"
    requests: list[dict] = []  # every HTTP request the interpreter made, with its answer's status

    def http(method, url, headers, body):
        """The fake HTTPRequest's sender: a real request; (status, body), status 0 on a network error."""
        h = dict(line.split(": ", 1) for line in headers)
        request = urllib.request.Request(url, data=body.encode() if method == "POST" else None, method=method,
                                         headers=h)
        record = {"method": method, "url": url, "headers": h, "status": 0}
        requests.append(record)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                record["status"] = answer.status
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            record["status"] = error.code
            return error.code, error.read().decode()
        except OSError as error:
            return 0, str(error)

    def to_serve():
        return [r for r in requests if r["url"].startswith(base_url)]

    def expire_next(count: int) -> None:
        """The IdP's next `count` tokens of the subject are already expired (the test's doing, not
        the client's: as sign_in.ts, straight to the IdP)."""
        query = urllib.parse.urlencode({"sub": subject, "count": count})
        with urllib.request.urlopen(urllib.request.Request(f"{idp_url}/expire-next?{query}", method="POST"),
                                    timeout=10) as answer:
            eq(answer.status, 204, "expire-next")

    it = gd.Interpreter()
    it.engine = fakes.engine(fakes.Files(state), http)
    game = it.load(HERE / "sign_in.gd")
    node = it.new(game)
    node.fields["idp_url"] = idp_url
    node.fields["subject"] = subject
    node.fields["clock_ms"] = int(time.time() * 1000)
    client = it.call_method(node, "create_client", [base_url, "user://contractc"], gd.Location("<sign-in>", 0))
    module = it.get(game, "GameEvents")
    rt = it.get(module, "rt")

    def call(name, *args):
        args = [gd.GDArray(a) if isinstance(a, list) else a for a in args]
        return gd.to_python(it.call_method(client, name, args, gd.Location("<sign-in>", 0)))

    def asked():
        return gd.to_python(node.fields["asked"])

    def advance(seconds: int) -> None:
        node.fields["clock_ms"] += seconds * 1000

    made = [0]

    def event():
        made[0] += 1
        wall_clock = it.call_static(rt, "local_wall_clock")
        e = it.call_static(module, "make_login_event", f"gd-sign-in-{made[0]}", wall_clock,
                           gd.from_python({"event_data": "signed in by the game"}))
        with open(sent_path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"event_uuid": e.get("event_uuid")}) + "\n")
        return e

    def provider_ok():
        assert node.fields["failure"] == "", f"the token provider failed: {node.fields['failure']}"

    def expired_first():
        expire_next(1)
        answer = call("send", event())
        provider_ok()
        eq((answer["status"], answer["error"]), (200, ""), "status, error")
        eq(asked(), [False, True], "force_refresh")
        eq([r["status"] for r in to_serve()], [401, 200], "serve's answers")
        eq(call("user_id"), "", "no guest identity")

    test("an expired first token: serve answers 401, the provider is forced once and the event lands", expired_first)

    def batch():
        advance(50)  # 70 s before the token's expiry: outside the 60 s margin, kept
        before = len(to_serve())
        result = call("send_batch", [event(), event(), event()])
        eq([result["accepted"], result["failed"], result["error"]], [3, 0, ""], "accepted, failed, error")
        eq(len(asked()), 2, "provider calls")
        eq([r["status"] for r in to_serve()[before:]], [200], "one batch request")

    test("a batch lands with the game's token, asking nothing more", batch)

    def within_margin():
        for _ in range(5):
            eq(call("enqueue", event()), [], "violations")
        expire_next(1)
        advance(20)  # 50 s before the token's expiry: inside the margin
        before = len(to_serve())
        result = call("flush")
        provider_ok()
        eq([result["accepted"], result["remaining"], result["error"]], [5, 0, ""], "accepted, remaining, error")
        eq(asked()[2:], [False, True], "force_refresh")
        eq([r["status"] for r in to_serve()[before:]], [401, 200], "serve's answers")

    test("within the refresh margin the provider is asked again; its expired token costs one forced retry",
         within_margin)

    def twice_refused():
        for _ in range(3):
            eq(call("enqueue", event()), [], "violations")
        expire_next(2)
        advance(70)
        before = len(to_serve())
        result = call("flush")
        assert result["error"].startswith("HTTP 401"), f"the flush's error: {result['error']!r}"
        eq((result["accepted"], result["remaining"], call("queued")), (0, 3, 3), "accepted, remaining, queued")
        eq([r["status"] for r in to_serve()[before:]], [401, 401], "serve's answers")
        result = call("flush")
        provider_ok()
        eq([result["accepted"], result["remaining"], result["error"]], [3, 0, ""], "accepted, remaining, error")
        eq(asked()[4:], [False, True, False], "force_refresh")

    test("a second 401 fails the flush and keeps the events queued; the next flush sends them", twice_refused)

    def requests_seen():
        guests = [r["url"] for r in requests if "login-as-guest" in r["url"] or "refresh-access-token" in r["url"]]
        eq(guests, [], "guest logins")
        with urllib.request.urlopen(f"{idp_url}/stats", timeout=10) as answer:
            stats = json.loads(answer.read())
        expired = stats["expired"].get(subject, 0)
        eq((expired, sum(1 for r in to_serve() if r["status"] == 401)), (4, 4), "expired tokens, 401s from serve")
        eq(stats["issued"].get(subject, 0), len(asked()), "tokens issued, provider calls")
        idp = [r for r in requests if r["url"].startswith(idp_url)]
        eq(len(idp), len(asked()), "the provider's requests to the IdP (its HTTPRequest)")
        assert all(r["headers"].get("Authorization", "").count(".") == 2 for r in to_serve()), "a request without the IdP's JWT"

    test("each expired token cost exactly one 401; no guest login; every request carried the IdP's token",
         requests_seen)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
