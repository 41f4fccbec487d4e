"""The generated maintenance job under local Spark + Iceberg (#24): a lake the streaming job
wrote in many small micro-batches, compacted without losing, doubling or reordering a thing.

Usage: python tests/maintenance_job.py [WORKSPACE]

WORKSPACE (default: this repository) is where `generated/` is read from. For game_events (an
append table, sorted by `updated_at`) and match_events (an upsert table, sorted by
`occurred_at` descending), the generated `streaming_job.py` writes BATCHES micro-batches (every
variant, accepted, quarantined and refused events; game events without an id, so only the
job's batch markers keep a re-run out) into Iceberg tables in a Hadoop catalog. The tables'
`history.expire.max-snapshot-age-ms` is then set to a second (read at run time), an orphan file
older than the grace period and a younger one are planted, and the generated
`maintenance_job.py` (`maintain`) runs. Then, for each of the four tables:

- the same rows (pyiceberg, value by value, before and after);
- at most one data file per partition, and far fewer snapshots;
- every data file of a sorted table sorted by `sort_by` (the Parquet files read back);
- the newest batch marker kept (the streaming job's restart point), and the receipt's counts;
- the old orphan deleted, the young one kept;

and, for the streaming job afterwards: a re-run of the last committed batch writes nothing,
a new batch is written once; a second maintenance run after it deletes the small files the
first run had to keep for the restart point.

Prints one line per check and `maintenance job: N passed, M failed`; exits 1 on any failure.
"""

import collections
import datetime
import glob
import importlib.util
import os
import random
import sys
import tempfile
import time
import urllib.parse

os.environ["TZ"] = "UTC"
time.tzset()

import spark_iceberg  # noqa: E402 (after the zone is set)
from glue_job import CATALOG, canonical, contracts, kinesis_batch  # noqa: E402
from lake_events import UTC, game_event, match_event  # noqa: E402

BATCHES = 12
# Two matches, two days: four partitions of the match_events table, each in every batch.
MATCHES = ("m-00000000000a", "m-00000000000b")

results = []


def check(name, ok, detail=""):
    results.append(ok)
    print("%s %s%s" % ("ok  " if ok else "FAIL", name, (": " + detail) if detail and not ok else ""), flush=True)
    return ok


def load_maintenance_job(contract):
    path = os.path.join(contract.dir, "glue", "maintenance_job.py")
    spec = importlib.util.spec_from_file_location("maintenance_" + contract.name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def batch_events(contract, received_at, rng):
    """One micro-batch: events in every partition of the events table, one quarantined and
    one refused."""
    if contract.name == "game_events":
        variants = list(contract.job.SHAPE["variants"]["cases"])
        events = [game_event(received_at, v, rng=rng) for v in variants for _ in range(2)]
        return events + [game_event(received_at, "Login", "quarantine", rng), game_event(received_at, "Logout", "reject", rng)]
    kinds = list(contract.job.SHAPE["variants"]["cases"])
    events = []
    for days in (1, 2):
        midnight = received_at.replace(hour=0, minute=0, second=0, microsecond=0) - datetime.timedelta(days=days)
        for match_id in MATCHES:
            occurred = midnight + datetime.timedelta(seconds=rng.randrange(86400))
            events.append(match_event(received_at, rng.choice(kinds), occurred, rng=rng, match_id=match_id))
    occurred = received_at - datetime.timedelta(hours=1)
    return events + [
        match_event(received_at, kinds[0], occurred, "quarantine", rng),
        match_event(received_at, kinds[1], occurred, "reject", rng),
    ]


def tables(contract):
    return [contract.events_definition, contract.quarantine_definition]


def full_name(contract, definition):
    return "%s.%s.%s" % (CATALOG, contract.database, definition["name"])


def static_table(warehouse, contract, definition):
    from pyiceberg.table import StaticTable

    return StaticTable.from_metadata(spark_iceberg.latest_metadata(warehouse, contract.database, definition["name"]))


def local_path(uri):
    return urllib.parse.urlparse(uri).path


class State:
    """What a table holds, read with pyiceberg (not through Spark's cached catalog)."""

    def __init__(self, warehouse, contract, definition):
        table = static_table(warehouse, contract, definition)
        rows = table.scan().to_arrow().to_pylist()
        self.rows = collections.Counter(canonical(r) for r in rows)
        self.count = len(rows)
        tasks = list(table.scan().plan_files())
        self.files = [local_path(t.file.file_path) for t in tasks]
        self.partitions = {str(t.file.partition) for t in tasks}
        self.snapshots = len(table.metadata.snapshots)
        location = os.path.join(warehouse, contract.database, definition["name"], "data")
        self.on_disk = sorted(glob.glob(os.path.join(location, "**", "*.parquet"), recursive=True))


def restart_point(spark, contract, definition):
    """(batch id, snapshot id) of the newest batch marker of the local stream, or None."""
    best = None
    for row in spark.sql("SELECT snapshot_id, summary FROM %s.snapshots" % full_name(contract, definition)).collect():
        summary = row["summary"] or {}
        if summary.get("contractc.stream") == contract.job.STREAM and "contractc.batch-id" in summary:
            point = (int(summary["contractc.batch-id"]), row["snapshot_id"])
            best = point if best is None or point > best else best
    return best


def snapshot_ids(spark, contract, definition):
    return {r["snapshot_id"] for r in spark.sql("SELECT snapshot_id FROM %s.snapshots" % full_name(contract, definition)).collect()}


def is_sorted(path, column, descending):
    import pyarrow.parquet as pq

    # The file alone: a dataset read would take the partition folders for columns too.
    values = [v for v in pq.ParquetFile(path).read(columns=[column]).column(column).to_pylist() if v is not None]
    pairs = zip(values, values[1:])
    return all((a >= b) if descending else (a <= b) for a, b in pairs)


def write_lake(spark, warehouse, contract, base, rng):
    for definition in tables(contract):
        spark_iceberg.create_table(spark, warehouse, contract.database, definition)
    batches = []
    for batch_id in range(BATCHES):
        events = batch_events(contract, base + datetime.timedelta(seconds=batch_id), rng)
        records = [e.record(contract.claims) for e in events]
        contract.job.process_batch(spark, kinesis_batch(spark, records), batch_id, CATALOG)
        batches.append(records)
    for definition in tables(contract):
        spark.sql(
            "ALTER TABLE %s SET TBLPROPERTIES ('history.expire.max-snapshot-age-ms' = '1000')" % full_name(contract, definition)
        )
    return batches


def plant_orphans(warehouse, contract, definition):
    """An unreferenced file older than the grace period and one younger (a commit in flight)."""
    data = os.path.join(warehouse, contract.database, definition["name"], "data")
    old, young = os.path.join(data, "orphan-old.parquet"), os.path.join(data, "orphan-young.parquet")
    now = time.time()
    for path, age in ((old, 3 * 86400), (young, 3600)):
        with open(path, "wb") as f:
            f.write(b"not referenced by any snapshot")
        os.utime(path, (now - age, now - age))
    return old, young


def check_table(contract, definition, before, after, receipt, orphans):
    name = "%s.%s" % (contract.database, definition["name"])
    check("%s: the same rows after maintenance (%d)" % (name, after.count), after.rows == before.rows and after.count > 0)
    check(
        "%s: at most one data file per partition (%d files in %d partitions, %d before)"
        % (name, len(after.files), len(after.partitions), len(before.files)),
        len(after.files) <= len(after.partitions) < len(before.files),
    )
    check(
        "%s: far fewer snapshots (%d, %d before)" % (name, after.snapshots, before.snapshots),
        after.snapshots <= 3 and after.snapshots * 3 < before.snapshots,
    )
    check(
        "%s: the receipt counts the files and snapshots" % name,
        (receipt["data_files_before"], receipt["data_files_after"], receipt["snapshots_before"], receipt["snapshots_after"])
        == (len(before.files), len(after.files), before.snapshots, after.snapshots)
        and receipt["rewritten_data_files"] >= len(before.files) - len(after.files),
        str(receipt),
    )
    sort = definition.get("write-order", {}).get("fields", [])
    if sort:
        column = next(f["name"] for f in definition["schema"]["fields"] if f["id"] == sort[0]["source-id"])
        descending = sort[0]["direction"] == "desc"
        unsorted = [p for p in after.files if not is_sorted(p, column, descending)]
        check("%s: every data file sorted by %s%s" % (name, column, " desc" if descending else ""), not unsorted, str(unsorted))
    old, young = orphans
    check("%s: the old orphan file deleted, the young one kept" % name, not os.path.exists(old) and os.path.exists(young))


def check_restart(spark, contract, definition, point, receipt):
    name = "%s.%s" % (contract.database, definition["name"])
    if point is None:
        check("%s: no batch marker to keep (upsert writes are idempotent by content)" % name, not receipt["kept_restart_points"])
        return
    kept = [p["snapshot_id"] for p in receipt["kept_restart_points"]]
    check(
        "%s: the newest batch marker kept (batch %d)" % (name, point[0]),
        point[1] in snapshot_ids(spark, contract, definition) and kept == [point[1]]
        and contract.job._committed_batch(spark, full_name(contract, definition)) == point[0],
        str(receipt["kept_restart_points"]),
    )


def after_maintenance(spark, warehouse, contract, batches, base, rng, maintenance):
    """The streaming job after maintenance: a committed batch again adds nothing, a new one is
    written once; a second maintenance run then deletes the files the restart point pinned."""
    counts = [State(warehouse, contract, d).count for d in tables(contract)]
    job = contract.job
    job.process_batch(spark, kinesis_batch(spark, batches[-1]), BATCHES - 1, CATALOG)
    again = [State(warehouse, contract, d).count for d in tables(contract)]
    check("%s: re-running the last committed batch after maintenance adds nothing" % contract.name, again == counts, "%s then %s" % (counts, again))
    events = batch_events(contract, base + datetime.timedelta(seconds=BATCHES), rng)
    job.process_batch(spark, kinesis_batch(spark, [e.record(contract.claims) for e in events]), BATCHES, CATALOG)
    job.process_batch(spark, kinesis_batch(spark, [e.record(contract.claims) for e in events]), BATCHES, CATALOG)
    expected = [
        counts[0] + sum(1 for e in events if e.verdict == "accepted"),
        counts[1] + sum(1 for e in events if e.verdict != "accepted"),
    ]
    new = [State(warehouse, contract, d).count for d in tables(contract)]
    check("%s: a new batch after maintenance is written once" % contract.name, new == expected, "%s, expected %s" % (new, expected))
    disk_before = [len(State(warehouse, contract, d).on_disk) for d in tables(contract)]
    time.sleep(1.1)
    maintenance.maintain(spark, CATALOG)
    for definition, disk in zip(tables(contract), disk_before):
        state = State(warehouse, contract, definition)
        live = {local_path(r["file_path"]) for r in spark.sql("SELECT file_path FROM %s.all_data_files" % full_name(contract, definition)).collect()}
        extra = sorted(set(state.on_disk) - live)
        check(
            "%s.%s: a second run deletes the small files the restart point kept (%d files on disk, %d before)"
            % (contract.database, definition["name"], len(state.on_disk), disk),
            len(state.on_disk) < disk and [os.path.basename(p) for p in extra] == ["orphan-young.parquet"],
            str(extra[:5]),
        )


def run_contract(spark, warehouse, contract, base, rng):
    maintenance = load_maintenance_job(contract)
    check("%s: the maintenance job carries the contract's fingerprint" % contract.name, maintenance.FINGERPRINT == contract.job.FINGERPRINT)
    started = time.time()
    batches = write_lake(spark, warehouse, contract, base, rng)
    written = time.time()
    before = [State(warehouse, contract, d) for d in tables(contract)]
    points = [restart_point(spark, contract, d) for d in tables(contract)]
    orphans = [plant_orphans(warehouse, contract, d) for d in tables(contract)]
    time.sleep(1.1)
    receipt = maintenance.maintain(spark, CATALOG)
    print("   %s: %d batches written in %.0f s, maintained in %.0f s" % (contract.name, BATCHES, written - started, time.time() - written))
    by_table = {t["table"]: t for t in receipt["tables"]}
    for definition, state, point, planted in zip(tables(contract), before, points, orphans):
        table_receipt = by_table["%s.%s" % (contract.database, definition["name"])]
        check_table(contract, definition, state, State(warehouse, contract, definition), table_receipt, planted)
        check_restart(spark, contract, definition, point, table_receipt)
    after_maintenance(spark, warehouse, contract, batches, base, rng, maintenance)


def main(argv):
    if len(argv) > 2:
        print(__doc__)
        return 2
    root = os.path.abspath(argv[1]) if len(argv) == 2 else None
    found = contracts(root) if root else contracts()
    all_contracts = [c for c in found if c.name in ("game_events", "match_events") and c.served]
    check("the workspace has both contracts", len(all_contracts) == 2)
    work = tempfile.mkdtemp(prefix="contractc-maintenance-")
    warehouse = os.path.join(work, "warehouse")
    # Every batch arrives within one UTC day, in the past: the quarantine tables' day partition
    # is one.
    now = datetime.datetime.now(UTC)
    base = (now - datetime.timedelta(hours=1)).replace(hour=1, minute=0, second=0, microsecond=0)
    rng = random.Random(24)
    spark = spark_iceberg.session(warehouse, CATALOG, dict(all_contracts[0].job.SESSION_SETTINGS))
    try:
        for contract in all_contracts:
            run_contract(spark, warehouse, contract, base, rng)
    finally:
        spark.stop()
    passed = sum(1 for r in results if r)
    print("maintenance job: %d passed, %d failed" % (passed, len(results) - passed))
    return 1 if passed != len(results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
