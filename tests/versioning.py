"""Many builds at once (#20): old clients against a server at a new major version.

Usage: python tests/versioning.py VERSIONED_RUNTIME [NAME=COMMAND ...]

VERSIONED_RUNTIME is contract-runtime built with game_events at 2.0.0
(tests/versioned/game_events.yaml; `tests/rebuilt_runtime.sh versioned` builds it), whose
releases are 1.1.1 (retired), 1.2.0 (the version this repository's generated clients are at) and
1.3.0 (a session length in seconds, in milliseconds since 2.0.0: a unit change).
Each NAME=COMMAND is one of those 1.2.0 clients' producers (`COMMAND BASE_URL STATE_DIR COUNT`,
as tests/exactly_once.py runs them): it sends Login events declaring X-Contract-Version 1.2.0.

Sends, to one serve:
- events as the reference's test client sends them (a guest login per event, the raw token, no
  version header, 1.2.0's shape with its `Killed Enemy` and free text): all answered 200;
- each old client's events; 2.0.0 events declaring 2.0.0; a retired 1.1.1 event; an event of an
  unknown version; a 1.2.0 event 1.2.0 refuses.
Then reads serve's lake with pyiceberg: every old event is upcast as the migration says
(category derived from the event type, platform defaulted, `Killed Enemy` renamed, event_data
gone) and records the version it arrived as; the retired event is in quarantine with its code.

Prints one line per check and `versioning: N passed, M failed`; exits 1 on any failure.
"""

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from exactly_once import Serve, check, results

CONTRACT = "game_events"
REFERENCE_TYPES = ["Login", "Logout", "New Game", "Resume Game", "End Game", "CollectedItem", "Killed Enemy"]
# The migration in tests/versioned/game_events.yaml, as a reader expects its rows.
CATEGORY = {"Login": "session", "Logout": "session", "New Game": "session", "Resume Game": "session", "CollectedItem": "progress"}
RENAMED = {"Killed Enemy": "Enemy Killed"}
PER_CLIENT = 25


def request(url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, headers=headers or {}, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def guest_token(base):
    status, body = request(base + "/prod/login-as-guest")
    assert status == 200, body
    return json.loads(body)["auth_token"]


def post(base, event, version=None, token=None):
    headers = {"Authorization": token or guest_token(base), "Content-Type": "application/json"}
    if version is not None:
        headers["X-Contract-Version"] = version
    return request(base + "/prod/put-record", json.dumps(event).encode(), headers)


def now():
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())


def send_reference_events(base, count):
    """As the reference's test client: a login per event, no version header, its event shape."""
    sent = []
    for i in range(count):
        event = {
            "event_id": "ref%02d" % i,
            "event_type": REFERENCE_TYPES[i % len(REFERENCE_TYPES)],
            "updated_at": now(),
            "event_data": "Quote \"%d\" with 'apostrophes' and *stars*" % i,
        }
        status, body = post(base, event)
        check("reference client event %s (%s): 200" % (event["event_id"], event["event_type"]), status == 200, "%d %s" % (status, body))
        sent.append(event)
    return sent


def run_producers(base, producers, work):
    made = {}
    for name, command in producers:
        state = os.path.join(work, name)
        os.makedirs(state, exist_ok=True)
        with open(state + ".log", "w") as log:
            code = subprocess.call(shlex.split(command) + [base + "/prod/", state, str(PER_CLIENT)], stdout=log, stderr=log, timeout=600)
        with open(os.path.join(state, "produced.ndjson"), encoding="utf-8") as f:
            ids = [json.loads(line)["event_uuid"].lower() for line in f if line.strip()]
        check("old 1.2.0 %s client: every event sent and answered (exit 0, %d made)" % (name, len(ids)), code == 0 and len(ids) == PER_CLIENT, "exit %d, see %s.log" % (code, state))
        made[name] = ids
    return made


def send_edge_cases(base):
    current = {"event_id": "new1", "event_type": "Enemy Killed", "updated_at": now(), "category": "gameplay", "platform": "switch"}
    status, body = post(base, current, "2.0.0")
    check("a 2.0.0 event declaring 2.0.0: 200", status == 200, body)
    status, body = post(base, {"event_id": "new2", "event_type": "Killed Enemy", "updated_at": now()}, "2.0.0")
    codes = sorted(v["code"] for v in json.loads(body).get("violations", [])) if status == 400 else []
    check("a 1.2.0-shaped event declaring 2.0.0: 400, judged as 2.0.0", status == 400 and codes == ["missing", "missing", "one_of"], "%d %s" % (status, body))
    status, body = post(base, {"event_id": "old1", "event_type": "Login", "updated_at": now(), "event_data": "x"}, "1.1.1")
    check("a retired 1.1.1 event: acknowledged (kept in quarantine)", status == 200, body)
    status, body = post(base, {"event_id": "unk1", "event_type": "Login", "updated_at": now()}, "3.0.0")
    violation = json.loads(body)["violations"][0] if status == 400 else {}
    check(
        "an unknown version 3.0.0: 400 unknown_version naming the supported versions",
        status == 400 and violation.get("code") == "unknown_version" and "1.2.0, 1.3.0, 2.0.0" in violation.get("message", ""),
        body,
    )
    status, body = post(base, {"event_id": "mid1", "event_type": "Logout", "updated_at": now(), "session_length": 42}, "1.3.0")
    check("a 1.3.0 event (session length in seconds): 200", status == 200, body)
    status, body = post(base, {"event_id": "bad1", "event_type": "Enemy Killed", "updated_at": now()}, "1.2.0")
    codes = [v["code"] for v in json.loads(body).get("violations", [])] if status == 400 else []
    check("a 2.0.0 variant declaring 1.2.0: 400 one_of, judged by 1.2.0's validator", status == 400 and codes == ["one_of"], body)
    return current


def run_synth(binary, base, work):
    """`synth --versions`: each event made for its version and declaring it, single and batched."""
    out = os.path.join(work, "synth.ndjson")
    for batch in ([], ["--batch", "10"]):
        command = [binary, "synth", "--contract", CONTRACT, "--login-endpoint", base + "/prod/",
                   "--backend-endpoint", base + "/prod/put-record", "--max-count", "60",
                   "--versions", "1.2.0=50%,2.0.0=50%", "--invalid-ratio", "0.2", "--seed", "5",
                   "--out", out + str(len(batch))] + batch
        run = subprocess.run(command, capture_output=True, text=True, cwd=tempfile.gettempdir(), timeout=300)
        summary = next((line for line in (run.stdout + run.stderr).splitlines() if line.startswith("sent ")), "")
        check("synth --versions 1.2.0=50%%,2.0.0=50%%%s: every answer as labelled (%s)" % (" --batch 10" if batch else "", summary),
              run.returncode == 0 and " failed 0 " in summary + " ", run.stdout + run.stderr)
    sent = []
    for suffix in ("0", "2"):
        with open(out + suffix, encoding="utf-8") as f:
            sent += [json.loads(line) for line in f if line.strip()]
    versions = {e["version"] for e in sent}
    check("synth made events of both versions (%s)" % sorted(versions), versions == {"1.2.0", "2.0.0"})
    return sent


def read_lake(data_dir):
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog(
        "contractc",
        uri="sqlite:///" + os.path.join(data_dir, "catalog.db"),
        warehouse="file://" + os.path.join(data_dir, "warehouse"),
    )
    events = catalog.load_table("analytics_events_db.events_table").scan().to_arrow().to_pylist()
    quarantine = catalog.load_table("analytics_events_db.events_table_quarantine").scan().to_arrow().to_pylist()
    return events, quarantine


def check_lake(events, quarantine, reference, made, current, synth):
    columns = set(events[0]) if events else set()
    check("the events table is 2.0.0's: category and platform, no event_data", {"category", "platform"} <= columns and "event_data" not in columns, str(sorted(columns)))
    by_id = {row["event_id"]: row for row in events}
    for event in reference:
        row = by_id.get(event["event_id"])
        expected_type = RENAMED.get(event["event_type"], event["event_type"])
        ok = (
            row is not None
            and row["event_type"] == expected_type
            and row["category"] == CATEGORY.get(event["event_type"], "gameplay")
            and row["platform"] == "unknown"
            and row["client_version"] == "1.2.0"
            and row["contract_version"] == "2.0.0"
        )
        check("reference event %s upcast: %s, category %s, platform unknown, client_version 1.2.0" % (event["event_id"], expected_type, CATEGORY.get(event["event_type"], "gameplay")), ok, str(row))
    stored = {}
    for row in events:
        if row.get("event_uuid") is not None:
            stored.setdefault(str(row["event_uuid"]).lower(), []).append(row)
    for name, ids in made.items():
        rows = [stored.get(i, []) for i in ids]
        once = all(len(r) == 1 for r in rows)
        upcast = once and all(r[0]["category"] == "session" and r[0]["platform"] == "unknown" and r[0]["client_version"] == "1.2.0" for r in rows)
        check("old %s client: each of its %d events stored once, upcast (session, unknown, client_version 1.2.0)" % (name, len(ids)), upcast, "%d of %d stored once" % (sum(len(r) == 1 for r in rows), len(ids)))
    row = by_id.get("mid1")
    check(
        "the 1.3.0 event upcast through 2.0.0's migration: seconds scaled to milliseconds, client_version 1.3.0",
        row is not None and row["session_length"] == 42000 and row["category"] == "session" and row["client_version"] == "1.3.0",
        str(row),
    )
    row = by_id.get(current["event_id"])
    check("the 2.0.0 event stored as sent, client_version 2.0.0", row is not None and row["platform"] == "switch" and row["client_version"] == "2.0.0", str(row))
    retired = [q for q in quarantine if '"old1"' in q["raw_payload"]]
    check(
        "the retired event is in quarantine with retired_version, as sent",
        len(retired) == 1 and retired[0]["verdict"] == "quarantine" and list(retired[0]["violation_codes"]) == ["retired_version"] and '"event_data": "x"' in retired[0]["raw_payload"],
        str(retired),
    )
    synth_valid = {json.loads(e["body"])["event_uuid"].lower(): e["version"] for e in synth if not e["expect"]}
    rows = {str(r["event_uuid"]).lower(): r for r in events if r.get("event_uuid") is not None}
    landed = [i for i, v in synth_valid.items() if i in rows and rows[i]["client_version"] == v]
    check("synth's valid events are in the events table, each recording its version (%d of %d)" % (len(landed), len(synth_valid)), len(landed) == len(synth_valid) > 0)
    check("nothing of the refused versions reached the events table", not ({"new2", "unk1", "bad1", "old1"} & set(by_id)), str(sorted(set(by_id) & {"new2", "unk1", "bad1", "old1"})))


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    binary = os.path.abspath(argv[1])
    producers = [a.split("=", 1) for a in argv[2:]]
    work = tempfile.mkdtemp(prefix="versioning-")
    data_dir = os.path.join(work, "data")
    serve = Serve(binary, data_dir, os.path.join(work, "serve.log"))
    base = "http://127.0.0.1:%d" % serve.port
    try:
        reference = send_reference_events(base, 21)
        made = run_producers(base, producers, work)
        current = send_edge_cases(base)
        synth_out = run_synth(binary, base, work)
    finally:
        code = serve.stop()
    check("serve stopped cleanly", code == 0, "exit %d, see %s/serve.log" % (code, work))
    events, quarantine = read_lake(data_dir)
    check_lake(events, quarantine, reference, made, current, synth_out)
    passed, failed = results.count(True), results.count(False)
    print("versioning: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
