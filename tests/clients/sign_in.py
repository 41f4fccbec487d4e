"""The game's own sign-in, end to end: each generated client with a token provider backed by a
second identity provider (tests/clients/test_idp.py), against `serve --trust-issuer` it.

Usage: python tests/clients/sign_in.py RUNTIME_BINARY [NAME=COMMAND ...]

Each NAME=COMMAND is a client's test program, run as `COMMAND BASE_URL IDP_URL SUBJECT STATE_DIR`:
it signs in through its token provider as SUBJECT (a Steam-like id, one per client), sends single
events, a batch and queued events, and is handed expired tokens by the IdP on the way (serve
answers 401; the client asks again, forced, and retries once; a second 401 fails the flush and
keeps the events queued). It prints its own checks and summary, and writes the `event_uuid` of
every event it sent to STATE_DIR/sent.ndjson. The Godot client's program is always run, last
(unless a `godot=COMMAND` is given): `godot=PYTHON tests/godot/sign_in.py` with this Python
(gdtoolkit, tests/requirements.txt), the generated module and runtime run by the GDScript
interpreter, its token provider GDScript (tests/godot/sign_in.gd), every HTTPRequest real HTTP.

serve's count of 401s is read around each client: it must have grown by exactly the number of
expired tokens the IdP handed that client's subject. Then serve is stopped (everything
acknowledged is committed) and its lake read with pyiceberg: every event a client sent is in the
events table exactly once (by its dedup id), with `player_id` the IdP's subject; and serve counted
a 401 for each expired token handed out.

Prints one line per check and `sign in: N passed, M failed` (the clients' checks included);
exits 1 on any failure. A missing package or toolchain is a failure, never a skip.
"""

import collections
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
GODOT_SIGN_IN = os.path.join(os.path.dirname(HERE), "godot", "sign_in.py")

ID_FIELD = "event_uuid"
EVENTS_TABLE = "analytics_events_db.events_table"
SUMMARY = re.compile(r"^[a-z0-9 #-]*: (\d+) passed, (\d+) failed$")

results = []


def check(name, ok, detail=""):
    results.append(ok)
    print("%s - %s%s" % ("ok" if ok else "FAIL", name, (": " + detail) if detail and not ok else ""), flush=True)
    return ok


def finish():
    passed = sum(1 for r in results if r)
    print("sign in: %d passed, %d failed" % (passed, len(results) - passed))
    return 0 if passed == len(results) else 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve(binary, data_dir, issuer, log):
    """serve trusting `issuer` (its JWKS at the default ISSUER/.well-known/jwks.json)."""
    port = free_port()
    process = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:%d" % port, "--data-dir", data_dir,
         "--commit-interval-ms", "300", "--guests-per-minute", "0", "--trust-issuer", issuer],
        stdout=subprocess.DEVNULL, stderr=log, cwd=tempfile.gettempdir(),
    )
    deadline = time.time() + 60
    while time.time() < deadline and process.poll() is None:
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=2).read()
            return process, "http://127.0.0.1:%d" % port
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("serve did not start; see %s" % log.name)


def unauthorized(base):
    """serve's count of 401s for game_events, from /metrics."""
    with urllib.request.urlopen(base + "/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("contractc_unauthorized_total{") and 'contract="game_events"' in line and 'status="401"' in line:
                return int(float(line.split()[-1]))
    return 0


def run_client(name, command, base_url, issuer, subject, state_dir):
    """Runs one client's program; its checks count as ours. Returns the ids it sent."""
    os.makedirs(state_dir, exist_ok=True)
    try:
        done = subprocess.run(shlex.split(command) + [base_url + "/prod/", issuer, subject, state_dir],
                              capture_output=True, text=True, timeout=300)
        output = done.stdout + done.stderr
    except (OSError, subprocess.TimeoutExpired) as error:
        check("%s: the sign-in program ran" % name, False, str(error))
        return []
    print(output, end="" if output.endswith("\n") else "\n")
    summary = [SUMMARY.match(line) for line in output.splitlines()]
    summary = [m for m in summary if m]
    if not summary:
        check("%s: the sign-in program printed its summary" % name, False, "exit %d" % done.returncode)
    else:
        results.extend([True] * int(summary[-1].group(1)) + [False] * int(summary[-1].group(2)))
    path = os.path.join(state_dir, "sent.ndjson")
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)[ID_FIELD].lower() for line in f if line.strip()]


def stored_rows(data_dir):
    """(event id, player_id) of every row of the events table."""
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog(
        "contractc",
        uri="sqlite:///" + os.path.join(data_dir, "catalog.db"),
        warehouse="file://" + os.path.join(data_dir, "warehouse"),
    )
    rows = catalog.load_table(EVENTS_TABLE).scan().to_arrow().to_pylist()
    return [(str(r[ID_FIELD]).lower() if r[ID_FIELD] is not None else None, r["player_id"]) for r in rows]


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    try:
        import pyiceberg.catalog.sql  # noqa: F401
        from test_idp import TestIdp
    except ImportError as error:
        check("the test's Python packages are installed (tests/requirements.txt)", False, str(error))
        return finish()
    binary = os.path.abspath(argv[1])
    clients = [a.split("=", 1) for a in argv[2:]]
    if "godot" not in [name for name, _ in clients]:
        clients.append(["godot", shlex.join([sys.executable, GODOT_SIGN_IN])])
    work = tempfile.mkdtemp(prefix="contractc-sign-in-")
    data_dir = os.path.join(work, "data")
    idp = TestIdp().start()
    log = open(os.path.join(work, "serve.log"), "a")
    subjects = {name: "steam:765611900000001%02d" % i for i, (name, _) in enumerate(clients)}
    sent, refused = {}, 0
    serve = None
    try:
        serve, base = start_serve(binary, data_dir, idp.issuer, log)
        for name, command in clients:
            before, expired_before = unauthorized(base), idp.stats()["expired"].get(subjects[name], 0)
            sent[name] = run_client(name, command, base, idp.issuer, subjects[name], os.path.join(work, name))
            grew, expired = unauthorized(base) - before, idp.stats()["expired"].get(subjects[name], 0) - expired_before
            check("%s: serve answered 401 once per expired token of %s (%d)" % (name, subjects[name], expired),
                  expired > 0 and grew == expired, "%d expired tokens, %d refusals" % (expired, grew))
        refused = unauthorized(base)
    except RuntimeError as error:
        check("serve started with --trust-issuer", False, str(error))
    finally:
        if serve is not None:
            serve.send_signal(signal.SIGTERM)
            code = serve.wait(timeout=120)
            check("serve stopped cleanly", code == 0, "exit %d; see %s" % (code, log.name))
        idp.stop()
        log.close()
    if serve is None:
        return finish()

    stats = idp.stats()
    print("# the IdP issued %s, of them already expired %s; serve answered %d with 401"
          % (json.dumps(stats["issued"], sort_keys=True), json.dumps(stats["expired"], sort_keys=True), refused))
    expired = sum(stats["expired"].values())
    check("serve refused every expired token with 401 (%d)" % expired, expired > 0 and refused >= expired,
          "%d expired tokens, %d refusals" % (expired, refused))
    rows = stored_rows(data_dir)
    per_id = collections.Counter(i for i, _ in rows)
    players = {i: p for i, p in rows}
    for name, ids in sent.items():
        subject = subjects[name]
        copies = collections.Counter(per_id[i] for i in ids)
        check("%s: every event sent (%d) is stored exactly once" % (name, len(ids)), len(ids) > 0 and set(copies) == {1},
              "rows per id %s" % dict(copies))
        wrong = sorted({players.get(i) for i in ids} - {subject})
        check("%s: player_id is the IdP's subject %s" % (name, subject), not wrong, "found %s" % wrong)
        extra = sum(1 for i, p in rows if p == subject and i not in set(ids))
        check("%s: no other row carries the subject" % name, extra == 0, "%d rows" % extra)
    return finish()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
