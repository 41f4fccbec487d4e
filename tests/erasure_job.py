"""The generated erasure job under local Spark + Iceberg (#23): a player forgotten from the
lake the streaming job wrote, with no trace left.

Usage: python tests/erasure_job.py PRIVACY_WORKSPACE

PRIVACY_WORKSPACE is the copy `tests/rebuilt_runtime.sh privacy` builds (tests/privacy/*.yaml:
game_events with a hashed device id, a masked e-mail, dropped free text and the player hashed;
match_events, an upsert table, with its sender hashed). For both contracts, the generated
streaming job writes three players' events (valid, quarantined, refused; match events merged
twice) in several micro-batches into Iceberg tables in a Hadoop catalog, with a compaction
(`rewrite_data_files`) between them, so each player's rows sit in compacted and uncompacted
files under several snapshots. Then the generated erasure job (`erase`) forgets one player,
and:

- no file under the warehouse (Parquet decoded, Avro manifests decompressed, metadata JSON)
  holds that player's id, its hash, or its raw or hashed personal values, while the same scan
  finds another player's (it can see);
- the other players' rows are unchanged, value by value (pyiceberg, before and after);
- the job's receipt counts the rows removed, snapshots expired and files deleted.

Prints one line per check and `erasure job: N passed, M failed`; exits 1 on any failure.
"""

import base64
import collections
import importlib.util
import json
import os
import sys
import tempfile
import time
import uuid

import spark_iceberg
from glue_job import CATALOG, contracts, kinesis_batch
from privacy import KEYS, canonical, hashed, masked, scan, traces

results = []


def check(name, ok, detail=""):
    results.append(ok)
    print("%s %s%s" % ("ok  " if ok else "FAIL", name, (": " + detail) if detail and not ok else ""), flush=True)
    return ok


class Player:
    def __init__(self, name):
        self.name = name
        self.sub = "%s-%s" % (name, uuid.uuid4())
        self.device = "dev-%s-%s" % (name, uuid.uuid4().hex[:12])
        self.email = "%s.%s@example.com" % (name, uuid.uuid4().hex[:8])
        self.text = "diary of %s %s" % (name, uuid.uuid4().hex)

    def traces(self):
        return traces(self.sub, self.device, self.email, self.text)

    def game_events(self):
        def event(**overrides):
            body = {
                "event_id": "e-%s" % uuid.uuid4().hex[:8],
                "event_type": "Login",
                "updated_at": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
                "event_data": self.text,
                "event_uuid": str(uuid.uuid4()),
                "device_id": self.device,
                "email": self.email,
            }
            body.update(overrides)
            return json.dumps(body)

        return [event(), event(), event(email="%s no address" % self.email), event(device_id="!" + self.device)]

    def match_events(self):
        def event(event_id, occurred):
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

        now, event_id = int(time.time()), str(uuid.uuid4())
        return [event(event_id, now - 60), event(event_id, now - 30), event(str(uuid.uuid4()), now - 8 * 86400)]


def envelope(contract, player, body, i):
    now_ms = int(time.time() * 1000)
    record = {
        "contractc": 1,
        "request_id": "r-%s-%d" % (player.name, i),
        "received_at_ms": now_ms,
        "claims": {c: base64.b64encode(player.sub.encode()).decode() for c in contract.claims},
        "body": base64.b64encode(body.encode()).decode(),
    }
    return (json.dumps(record).encode(), player.name, now_ms)


def load_erasure_job(contract):
    path = os.path.join(contract.dir, "glue", "erasure_job.py")
    spec = importlib.util.spec_from_file_location("erasure_" + contract.name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def table_rows(warehouse, contract, definition):
    from pyiceberg.table import StaticTable

    table = StaticTable.from_metadata(spark_iceberg.latest_metadata(warehouse, contract.database, definition["name"]))
    return table.scan().to_arrow().to_pylist()


def digest(warehouse, all_contracts, players):
    """Every table's rows of `players` (by the column the erasure job matches), as a multiset."""
    ids = {hashed(p.sub) for p in players}
    out = {}
    for contract in all_contracts:
        column = {table: column for table, column, _, _ in contract.erasure.TARGETS}
        for definition in (contract.events_definition, contract.quarantine_definition):
            rows = table_rows(warehouse, contract, definition)
            out[definition["name"]] = collections.Counter(canonical(r) for r in rows if r[column[definition["name"]]] in ids)
    return out


def write_lake(spark, warehouse, all_contracts, players):
    for contract in all_contracts:
        for definition in (contract.events_definition, contract.quarantine_definition):
            spark_iceberg.create_table(spark, warehouse, contract.database, definition)
        for batch_id in range(6):
            records = []
            for player in players:
                bodies = player.game_events() if contract.name == "game_events" else player.match_events()
                records += [envelope(contract, player, body, batch_id * 10 + i) for i, body in enumerate(bodies)]
            contract.job.process_batch(spark, kinesis_batch(spark, records), batch_id, CATALOG)
            if batch_id == 3:
                for definition in (contract.events_definition, contract.quarantine_definition):
                    name = "%s.%s" % (contract.database, definition["name"])
                    spark.sql("CALL %s.system.rewrite_data_files(table => '%s', options => map('min-input-files', '2'))" % (CATALOG, name)).collect()


def main(argv):
    if len(argv) != 2:
        print(__doc__)
        return 2
    root = os.path.abspath(argv[1])
    all_contracts = [c for c in contracts(root) if c.name in ("game_events", "match_events")]
    check("the privacy workspace has both contracts", len(all_contracts) == 2)
    for contract in all_contracts:
        contract.job.set_pii_keys(KEYS)
        contract.erasure = load_erasure_job(contract)
        contract.erasure.set_pii_keys(KEYS)
    work = tempfile.mkdtemp(prefix="contractc-erasure-")
    warehouse = os.path.join(work, "warehouse")
    players = [Player(name) for name in ("alice", "bob", "carol")]
    target, others = players[0], players[1:]
    settings = dict(all_contracts[0].job.SESSION_SETTINGS)
    spark = spark_iceberg.session(warehouse, CATALOG, settings)
    try:
        write_lake(spark, warehouse, all_contracts, players)
        game = table_rows(warehouse, all_contracts[0], all_contracts[0].events_definition)
        mine = [r for r in game if r["player_id"] == hashed(target.sub)]
        check(
            "the streaming job stored alice's events as declared (%d rows)" % len(mine),
            len(mine) == 12 and all(r["device_id"] == hashed(target.device) and r["email"] == masked(target.email) and r["event_data"] is None for r in mine),
            str(mine[:1]),
        )
        before, files = scan(warehouse, target.traces())
        check("before erasure the scan finds alice's traces (%d files)" % files, {"hashed player id", "hashed device id"} <= set(before), str(dict(before)))
        others_before = digest(warehouse, all_contracts, others)
        receipts = [c.erasure.erase(spark, CATALOG, [target.sub]) for c in all_contracts]
    finally:
        spark.stop()
    tables = {t["table"]: t for r in receipts for t in r["tables"]}
    check(
        "the receipts count rows removed, snapshots expired and files deleted in all four tables",
        len(tables) == 4 and all(t["rows_removed"] > 0 and t["snapshots_expired"] > 0 and t["files_deleted"] > 0 for t in tables.values()),
        json.dumps(receipts),
    )
    check("the receipts name no subject", target.sub not in json.dumps(receipts) and hashed(target.sub) not in json.dumps(receipts))
    after, files = scan(warehouse, target.traces())
    check("after erasure no file under the warehouse holds a trace of alice (%d files)" % files, not after, str(dict(after)))
    seen, _ = scan(warehouse, others[0].traces())
    check("the same scan still finds bob's traces (it can see)", {"hashed player id", "hashed device id"} <= set(seen), str(dict(seen)))
    check("the other players' rows are unchanged in every table", digest(warehouse, all_contracts, others) == others_before)

    passed = sum(1 for r in results if r)
    print("erasure job: %d passed, %d failed" % (passed, len(results) - passed))
    return 1 if passed != len(results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
