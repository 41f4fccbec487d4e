"""Players' privacy on `serve` (#23): personal data stored as declared, and a player forgotten.

Usage: python tests/privacy.py PRIVACY_RUNTIME

PRIVACY_RUNTIME is contract-runtime built from tests/privacy/*.yaml (`tests/rebuilt_runtime.sh
privacy`): game_events with `device_id: pii: hash`, `email: pii: mask`, `event_data: pii: drop`
and the player (jwt.sub) hashed; match_events (an upsert table) with its sender hashed.

Three players send, over several commits: valid events, events quarantined for their e-mail,
refused ones, and match events upserted (the same event id twice). `contract-runtime maintain`
compacts between the commits, so each player's rows sit in compacted and uncompacted files
under several snapshots; a last round is acknowledged and then serve is killed (kill -9), so it
is in the write-ahead log only. Then:

- every table holds personal data as declared: the player and the device as HMAC-SHA256 under
  the given key, the e-mail masked, the free text never; no quarantine payload holds a raw value
  of a hashed or dropped field;
- `contract-runtime forget --subject A` erases player A: afterwards no file under the data
  directory (every Parquet file's decoded values, Avro manifests decompressed, metadata, the
  catalog, the log, the guest store) holds A's id, its hash, or A's raw or hashed personal
  values, while the same scan still finds player B's (the scan can see); the other players'
  rows are unchanged (a digest of every table before and after); the receipt counts what went;
- serve, started again, commits B's logged events and none of A's.

Prints one line per check and `privacy: N passed, M failed`; exits 1 on any failure.
"""

import base64
import collections
import hashlib
import hmac
import json
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
import zlib

from exactly_once import check, free_port, results

SECRET = bytes(range(1, 33))
KEYS = json.dumps({"current": "k-test", "keys": {"k-test": SECRET.hex()}})
GAME = "analytics_events_db.events_table"
MATCH = "multiplayer.match_events"
TABLES = [GAME, GAME + "_quarantine", MATCH, MATCH + "_quarantine"]


def hashed(value):
    return hmac.new(SECRET, value.encode("utf-8"), hashlib.sha256).hexdigest()


def traces(player_id, device, email, text):
    """What no file may hold once this player is forgotten."""
    return {
        "player id": player_id,
        "hashed player id": hashed(player_id),
        "device id": device,
        "hashed device id": hashed(device),
        "e-mail": email,
        "free text": text,
    }


def masked(value):
    kept = 4 if len(value) >= 8 else 0
    return "*" * (len(value) - kept) + value[len(value) - kept:]


class Serve:
    def __init__(self, binary, data_dir, log_path, commit_ms=200):
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.log = open(log_path, "a")
        self.process = subprocess.Popen(
            [binary, "serve", "--listen", "127.0.0.1:%d" % self.port, "--data-dir", data_dir,
             "--commit-interval-ms", str(commit_ms), "--maintenance-interval-s", "0",
             "--dev-mint-scopes", "--guests-per-minute", "0"],
            stdout=subprocess.DEVNULL, stderr=self.log, cwd=tempfile.gettempdir(),
            env=dict(os.environ, CONTRACTC_PII_KEYS=KEYS),
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.base + "/healthz", timeout=2).read()
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        raise RuntimeError("serve did not start; see %s" % log_path)

    def request(self, path, body=None, headers=None):
        data = None if body is None else body.encode("utf-8")
        req = urllib.request.Request(self.base + path, data=data, headers=headers or {}, method="POST" if data is not None else "GET")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=120)
        self.log.close()

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self.log.close()


class Player:
    """A guest, and the personal values its events carry."""

    def __init__(self, serve, name):
        status, body = serve.request("/prod/login-as-guest")
        assert status == 200, body
        login = json.loads(body)
        self.user_id, self.secret = login["user_id"], login["guest_secret"]
        self.name = name
        self.device = "dev-%s-%s" % (name, uuid.uuid4().hex[:12])
        self.email = "%s.%s@example.com" % (name, uuid.uuid4().hex[:8])
        self.text = "diary of %s %s" % (name, uuid.uuid4().hex)
        self.tokens(serve)

    def tokens(self, serve):
        """A guest token and an `authenticated` one, both of this guest."""
        query = "user_id=%s&guest_secret=%s" % (self.user_id, self.secret)
        status, body = serve.request("/prod/login-as-guest?" + query)
        assert status == 200, body
        self.guest = json.loads(body)["auth_token"]
        status, body = serve.request("/prod/login-as-guest?scope=authenticated&" + query)
        assert status == 200, body
        self.authenticated = json.loads(body)["auth_token"]

    def traces(self):
        return traces(self.user_id, self.device, self.email, self.text)

    def game_event(self, email=None, device=None):
        return json.dumps({
            "event_id": "e-%s" % uuid.uuid4().hex[:8],
            "event_type": "Login",
            "updated_at": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
            "event_data": self.text,
            "event_uuid": str(uuid.uuid4()),
            "device_id": device or self.device,
            "email": email or self.email,
        })

    def match_event(self, event_id, occurred):
        return json.dumps({
            "event_id": event_id,
            "kind": "match_ended",
            "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(occurred)),
            "match_id": "m-%012x" % (abs(hash(self.name)) % 16 ** 12),
            "region": "eu-west",
            "build": {"version": "1.2.3"},
            "duration_s": 100,
            "scores": {self.name: 1},
        })


def send_round(serve, players, round_number):
    """Each player: valid events, one quarantined for its e-mail, one refused for its device id,
    a match event sent twice (the later one wins the upsert) and a late one (quarantined)."""
    statuses = collections.Counter()
    for player in players:
        headers = {"Authorization": player.guest, "Content-Type": "application/json"}
        for _ in range(3):
            statuses[serve.request("/prod/put-record", player.game_event(), headers)[0]] += 1
        bad_email = "%s-no-address %s" % (player.email, player.name)
        statuses[serve.request("/prod/put-record", player.game_event(email=bad_email), headers)[0]] += 1
        statuses[serve.request("/prod/put-record", player.game_event(device="!" + player.device), headers)[0]] += 1
        match_headers = {"Authorization": player.authenticated, "Content-Type": "application/json"}
        event_id = str(uuid.uuid4())
        now = int(time.time())
        for occurred in (now - 60, now - 30):
            statuses[serve.request("/prod/match-events", player.match_event(event_id, occurred), match_headers)[0]] += 1
        # Eight days old: quarantined (acknowledged) by match_events' not_before rule.
        late = player.match_event(str(uuid.uuid4()), now - 8 * 86400)
        statuses[serve.request("/prod/match-events", late, match_headers)[0]] += 1
    expected = {200: 7 * len(players), 400: len(players)}
    check("round %d: every event answered as expected (%s)" % (round_number, dict(statuses)), dict(statuses) == expected)


def catalog(data_dir):
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog(
        "contractc",
        uri="sqlite:///" + os.path.join(data_dir, "catalog.db"),
        warehouse="file://" + os.path.join(data_dir, "warehouse"),
    )


def rows(data_dir, table):
    return catalog(data_dir).load_table(table).scan().to_arrow().to_pylist()


def canonical(value):
    if isinstance(value, dict):
        return tuple(sorted((k, canonical(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(canonical(v) for v in value)
    return value if isinstance(value, (int, float, str, bool)) or value is None else str(value)


def digest(data_dir, players):
    """Every table's rows of `players` (by their hashed id), as a multiset."""
    ids = {hashed(p.user_id) for p in players}
    out = {}
    for table in TABLES:
        column = "server_id" if table == MATCH else "player_id"
        out[table] = collections.Counter(canonical(r) for r in rows(data_dir, table) if r[column] in ids)
    return out


def check_stored_as_declared(data_dir, players):
    game = rows(data_dir, GAME)
    by_player = collections.defaultdict(list)
    for row in game:
        by_player[row["player_id"]].append(row)
    for p in players:
        mine = by_player.get(hashed(p.user_id), [])
        check(
            "%s: events rows hold the player and the device hashed, the e-mail masked, no free text (%d rows)" % (p.name, len(mine)),
            len(mine) > 0 and all(r["device_id"] == hashed(p.device) and r["email"] == masked(p.email) and r["event_data"] is None for r in mine),
            str(mine[:1]),
        )
    check("no events row holds a raw player id", not ({r["player_id"] for r in game} & {p.user_id for p in players}))
    quarantine = rows(data_dir, GAME + "_quarantine")
    raw = [p.device for p in players] + [p.text for p in players] + [p.user_id for p in players]
    leaks = [r["raw_payload"] for r in quarantine if any(v in (r["raw_payload"] or "") for v in raw)]
    check("no quarantine payload holds a raw hashed or dropped value (%d rows)" % len(quarantine), len(quarantine) >= 2 * len(players) and not leaks, str(leaks[:2]))
    players_q = {r["player_id"] for r in quarantine}
    check("quarantine rows hold the player hashed", players_q <= {hashed(p.user_id) for p in players}, str(players_q))
    summaries = [s.summary.additional_properties for s in catalog(data_dir).load_table(GAME).metadata.snapshots]
    check("ingest commits record the key id", any(s.get("contractc.pii-key-id") == "k-test" for s in summaries))
    match = rows(data_dir, MATCH)
    check(
        "match events: one row per event id, the sender hashed (%d rows)" % len(match),
        len(match) == len({r["event_id"] for r in match}) >= len(players) and all(r["server_id"] in {hashed(p.user_id) for p in players} for r in match),
    )


def avro_blocks(data):
    """The decompressed data blocks of an Avro object container file (manifests)."""
    def long_at(at):
        shift = result = 0
        while True:
            byte = data[at]
            at += 1
            result |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return (result >> 1) ^ -(result & 1), at

    at, meta = 4, {}
    while True:
        count, at = long_at(at)
        if count == 0:
            break
        if count < 0:
            _, at = long_at(at)
            count = -count
        for _ in range(count):
            size, at = long_at(at)
            key = data[at:at + size].decode()
            at += size
            size, at = long_at(at)
            meta[key] = data[at:at + size]
            at += size
    codec = meta.get("avro.codec", b"null").decode()
    at += 16  # sync marker
    blocks = []
    while at < len(data):
        _, at = long_at(at)
        size, at = long_at(at)
        block = data[at:at + size]
        at += size + 16
        if codec == "deflate":
            block = zlib.decompress(block, -15)
        elif codec != "null":
            raise ValueError("an Avro codec this scan cannot read: " + codec)
        blocks.append(block)
    return blocks


def file_texts(path):
    """Every readable form of a file: its bytes, and for Parquet its decoded values, for Avro its
    decompressed blocks."""
    with open(path, "rb") as f:
        data = f.read()
    texts = [data]
    if data[:4] == b"PAR1":
        import pyarrow.parquet as pq

        table = pq.ParquetFile(path).read()
        texts.append(json.dumps(table.to_pylist(), default=str).encode("utf-8"))
        texts.append(str(pq.ParquetFile(path).metadata.to_dict()).encode("utf-8"))
    elif data[:4] == b"Obj\x01":
        texts.extend(avro_blocks(data))
    return texts


def scan(data_dir, traces):
    """{trace name: [files holding it]} over every file under `data_dir`."""
    found = collections.defaultdict(list)
    files = 0
    for root, _, names in os.walk(data_dir):
        for name in names:
            path = os.path.join(root, name)
            files += 1
            texts = file_texts(path)
            for trace, value in traces.items():
                needle = value.encode("utf-8")
                if any(needle in text for text in texts):
                    found[trace].append(os.path.relpath(path, data_dir))
    return found, files


def forget_beside_serve(binary, data_dir, log, players):
    """`forget --server`: the running serve erases between its commits, its log included, and
    goes on serving."""
    target, other = players
    before = digest(data_dir, [other])
    serve = Serve(binary, data_dir, log, commit_ms=600000)
    for p in players:
        p.tokens(serve)
    send_round(serve, players, 9)  # acknowledged, in the log only (no commit for 10 minutes)
    logged, _ = scan(os.path.join(data_dir, "wal"), target.traces())
    check("beside serve: %s's last round is in the log before forget" % target.name, "device id" in logged, str(dict(logged)))
    forgot = subprocess.run(
        [binary, "forget", "--server", serve.base, "--data-dir", data_dir, "--subject", target.user_id,
         "--receipt", os.path.join(data_dir, "..", "online-receipt.json")],
        capture_output=True, text=True, timeout=120,
    )
    check("beside serve: forget --server succeeds", forgot.returncode == 0, forgot.stdout + forgot.stderr)
    receipt = json.load(open(os.path.join(data_dir, "..", "online-receipt.json"))) if forgot.returncode == 0 else {}
    tables = {t["table"]: t for t in receipt.get("tables", [])}
    check(
        "beside serve: the receipt counts the rows and the 8 logged records of the round",
        tables.get(GAME, {}).get("rows_removed", 0) > 0 and receipt.get("log_records_removed") == 8 and receipt.get("guests_removed") == 1,
        json.dumps(receipt),
    )
    after, files = scan(data_dir, target.traces())
    check("beside serve: no file holds a trace of %s while serve runs (%d files)" % (target.name, files), not after, str(dict(after)))
    status, _ = serve.request("/prod/put-record", other.game_event(), {"Authorization": other.guest, "Content-Type": "application/json"})
    check("beside serve: serve goes on accepting events", status == 200)
    wrong = os.path.join(data_dir, "..", "wrong-token")
    with open(wrong, "w") as f:
        f.write("not-the-console-token\n")
    refused = subprocess.run(
        [binary, "forget", "--server", serve.base, "--subject", other.user_id, "--console-token-file", wrong],
        capture_output=True, text=True, timeout=60,
    )
    check("beside serve: an erasure without the console's token is refused", refused.returncode != 0 and "401" in refused.stderr, refused.stderr)
    serve.stop()
    now = digest(data_dir, [other])
    kept = all(not (before[t] - now[t]) for t in TABLES)
    check("beside serve: %s's earlier rows are all still there, and the new ones added" % other.name,
          kept and sum(now[GAME].values()) == sum(before[GAME].values()) + 4)
    game = rows(data_dir, GAME)
    check("beside serve: none of %s's rows came back after the stop" % target.name, not any(r["player_id"] == hashed(target.user_id) for r in game))
    again, _ = scan(data_dir, target.traces())
    check("beside serve: and no trace of %s after the stop" % target.name, not again, str(dict(again)))


def main(argv):
    if len(argv) != 2:
        print(__doc__)
        return 2
    binary = os.path.abspath(argv[1])
    work = tempfile.mkdtemp(prefix="contractc-privacy-")
    data_dir = os.path.join(work, "data")
    log = os.path.join(work, "serve.log")

    serve = Serve(binary, data_dir, log)
    players = [Player(serve, name) for name in ("alice", "bob", "carol")]
    target, others = players[0], players[1:]
    for round_number in (1, 2, 3, 4, 5, 6):
        send_round(serve, players, round_number)
        time.sleep(0.6)  # a commit (a file per partition) per round
    serve.stop()
    maintained = subprocess.run([binary, "maintain", "--data-dir", data_dir, "--orphan-grace-s", "0"], capture_output=True, text=True)
    compacted = re.search(r"^%s: compacted (\d+) files" % re.escape(GAME), maintained.stdout, re.M)
    check("maintain compacts the rounds' small files", maintained.returncode == 0 and compacted is not None and int(compacted.group(1)) > 0, maintained.stdout + maintained.stderr)
    serve = Serve(binary, data_dir, log)
    for p in players:
        p.tokens(serve)
    send_round(serve, players, 7)
    time.sleep(0.6)
    serve.stop()
    check_stored_as_declared(data_dir, players)
    snapshots = len(catalog(data_dir).load_table(GAME).metadata.snapshots)
    check("the events table has several snapshots before forget (%d)" % snapshots, snapshots >= 3)

    # A last round acknowledged but never committed: only the log holds it.
    serve = Serve(binary, data_dir, log, commit_ms=600000)
    for p in players:
        p.tokens(serve)
    send_round(serve, players, 8)
    beside = subprocess.run(
        [binary, "forget", "--data-dir", data_dir, "--subject", target.user_id],
        capture_output=True, text=True, env=dict(os.environ, CONTRACTC_PII_KEYS=KEYS),
    )
    check("forget refuses to run beside serve, naming why", beside.returncode != 0 and "is in use" in beside.stderr, beside.stderr)
    serve.kill()

    before, files = scan(data_dir, target.traces())
    check("before forget the scan finds %s's traces in the lake and the log (%d files)" % (target.name, files), {"hashed player id", "hashed device id", "player id"} <= set(before) and any(p.startswith("wal") for p in before["device id"]), str(dict(before)))
    others_before = digest(data_dir, others)

    receipt_path = os.path.join(work, "receipt.json")
    forgot = subprocess.run(
        [binary, "forget", "--data-dir", data_dir, "--subject", target.user_id, "--receipt", receipt_path],
        capture_output=True, text=True, env=dict(os.environ, CONTRACTC_PII_KEYS=KEYS),
    )
    check("forget succeeds", forgot.returncode == 0, forgot.stdout + forgot.stderr)
    receipt = json.load(open(receipt_path)) if os.path.exists(receipt_path) else {}
    tables = {t["table"]: t for t in receipt.get("tables", [])}
    check(
        "the receipt counts rows removed from every table, snapshots expired, files deleted, log records and the guest",
        all(tables.get(t, {}).get("rows_removed", 0) > 0 for t in TABLES)
        and all(tables[t]["snapshots_expired"] > 0 and tables[t]["files_deleted"] > 0 for t in (GAME, MATCH))
        and receipt.get("log_records_removed", 0) >= 7 and receipt.get("guests_removed") == 1 and receipt.get("subjects") == 1,
        json.dumps(receipt),
    )
    check("the receipt names no subject", target.user_id not in json.dumps(receipt) and hashed(target.user_id) not in json.dumps(receipt))

    after, files = scan(data_dir, target.traces())
    check("after forget no file under the data directory holds a trace of %s (%d files)" % (target.name, files), not after, str(dict(after)))
    seen, _ = scan(data_dir, others[0].traces())
    check("the same scan still finds %s's traces (it can see)" % others[0].name, {"hashed player id", "hashed device id", "player id", "device id"} <= set(seen), str(dict(seen)))
    check("the other players' rows are unchanged in every table", digest(data_dir, others) == others_before)

    serve = Serve(binary, data_dir, log)
    serve.stop()
    game = rows(data_dir, GAME)
    counts = collections.Counter(r["player_id"] for r in game)
    check(
        "started again, serve commits the others' logged events and none of %s's (%s)" % (target.name, dict(counts)),
        counts.get(hashed(target.user_id), 0) == 0 and all(counts.get(hashed(p.user_id), 0) == 8 * 3 for p in others),
    )
    again, _ = scan(data_dir, target.traces())
    check("and still no trace of %s" % target.name, not again, str(dict(again)))
    # Bob stays; Carol is forgotten by the running serve.
    forget_beside_serve(binary, data_dir, log, [others[1], others[0]])

    passed = sum(1 for r in results if r)
    print("privacy: %d passed, %d failed" % (passed, len(results) - passed))
    return 1 if passed != len(results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
