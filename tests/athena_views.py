"""The generated Athena views under local Spark SQL (#24): every view of
`generated/<contract>/athena/views.sql`, created as written over tables the generated streaming
job wrote, returns the rows the test expects from the events it sent.

Usage: python tests/athena_views.py [WORKSPACE]

WORKSPACE (default: this repository) is where `generated/` is read from. For game_events and
match_events, the streaming job (`process_batch`) writes known events in two micro-batches:
accepted ones of several variants, quarantined and refused ones, over three days of arrival,
and for match_events (an upsert table) two keys sent twice (a newer version second, and an
older one second). Then each `CREATE OR REPLACE VIEW` statement runs under Spark SQL as written
but for the tables' catalog (the job's tables are `lake.<database>.<table>`; the views land in
Spark's session catalog). Each view must return exactly the rows computed here from the events
sent, not from any SQL: a variant's events with the envelope, its own payload and the
enrichments; per day the accepted, quarantined and refused counts and the bad share; the
latest row per key.

Prints one line per check and `athena views: N passed, M failed`; exits 1 on any failure.
"""

import collections
import datetime
import os
import random
import re
import sys
import tempfile
import time

os.environ["TZ"] = "UTC"
time.tzset()

import spark_iceberg  # noqa: E402 (after the zone is set)
from glue_job import CATALOG, contracts, kinesis_batch  # noqa: E402
from lake_events import UTC, game_event, match_event, norm, stored_rows  # noqa: E402

results = []

# Per day of arrival (0: today): how many events of each kind the test sends.
GAME_DAYS = [
    {"Login": 3, "New Game": 2, "End Game": 1, "quarantine": 1, "reject": 2},
    {"Login": 1, "Killed Enemy": 2, "quarantine": 2},
    {"CollectedItem": 1, "Logout": 1, "reject": 1},
]
MATCH_DAYS = [
    {"match_started": 2, "match_ended": 1, "player_purchased": 1, "quarantine": 1, "reject": 1},
    {"match_ended": 2, "quarantine": 1},
    {"player_purchased": 1, "reject": 2},
]


def check(name, ok, detail=""):
    results.append(ok)
    print("%s %s%s" % ("ok  " if ok else "FAIL", name, (": " + detail) if detail and not ok else ""), flush=True)
    return ok


def snake(value):
    """A variant value as a view name spells it: `New Game` and `NewGame` → `new_game`."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", value)
    return re.sub(r"_+", "_", re.sub(r"[^a-z0-9]", "_", spaced.lower())).strip("_")


def game_events(today, rng):
    events = []
    for days, plan in enumerate(GAME_DAYS):
        at = today - datetime.timedelta(days=days) + datetime.timedelta(hours=1)
        for kind, n in plan.items():
            for i in range(n):
                moment = at + datetime.timedelta(seconds=len(events))
                if kind in ("quarantine", "reject"):
                    events.append(game_event(moment, "Login", kind, rng))
                else:
                    events.append(game_event(moment, kind, rng=rng, sub="player-%d" % i, uuid_field=True))
    return events


def match_events(today, rng):
    events = []
    for days, plan in enumerate(MATCH_DAYS):
        at = today - datetime.timedelta(days=days) + datetime.timedelta(hours=1)
        for kind, n in plan.items():
            for _ in range(n):
                moment = at + datetime.timedelta(seconds=len(events))
                occurred = moment - datetime.timedelta(minutes=rng.randrange(1, 600))
                if kind in ("quarantine", "reject"):
                    events.append(match_event(moment, "match_ended", occurred, kind, rng))
                else:
                    events.append(match_event(moment, kind, occurred, rng=rng))
    # Two keys sent twice, the second time in the second batch: a newer version (it wins) and
    # an older one (the first stays).
    first, second = events[0], events[1]
    later = today + datetime.timedelta(minutes=90)
    events.append(match_event(later, first.body["kind"], first.order + datetime.timedelta(minutes=5), rng=rng, event_id=first.key))
    events.append(match_event(later, second.body["kind"], second.order - datetime.timedelta(minutes=5), rng=rng, event_id=second.key))
    return events


def statements(path):
    """The `;`-ended statements of a views.sql, comments left out."""
    with open(path) as f:
        text = "\n".join(line for line in f.read().splitlines() if not line.startswith("--"))
    return [s.strip() for s in text.split(";") if s.strip()]


def for_spark(statement, database):
    """The statement as this Spark runs it: the job's tables are in the `lake` catalog, and a
    name Athena quotes with double quotes Spark quotes with backticks."""
    statement = re.sub(r"\b(FROM|JOIN)\s+%s\." % re.escape(database), r"\1 %s.%s." % (CATALOG, database), statement)
    return re.sub(r'"([a-z_][a-z0-9_]*)"', r"`\1`", statement)


def view_name(statement):
    match = re.match(r"CREATE OR REPLACE VIEW (\S+)\.(\S+) AS\n", statement)
    return match.group(2) if match else None


def rows_of(spark, database, name):
    df = spark.sql("SELECT * FROM spark_catalog.%s.%s" % (database, name))
    return df.columns, [row.asDict(recursive=True) for row in df.collect()]


def multiset(rows, columns):
    return collections.Counter(tuple(norm(row.get(c)) for c in columns) for row in rows)


def check_variant(contract, name, value, columns, rows, stored, shape):
    discriminator = shape["variants"]["discriminator"]
    cases = shape["variants"]["cases"]
    payload = {f for case in cases.values() for f in case["fields"]} - set(shape["fields"])
    table_columns = [f["name"] for f in contract.events_definition["schema"]["fields"]]
    expected_columns = [c for c in table_columns if c not in payload or c in cases[value]["fields"]]
    check("%s: %s shows the envelope, %s's payload and the enrichments" % (contract.name, name, value), columns == expected_columns, str(columns))
    mine = [r for r in stored if r[discriminator] == value]
    check(
        "%s: %s returns the %d accepted %s events, value by value" % (contract.name, name, len(mine), value),
        multiset(rows, expected_columns) == multiset(mine, expected_columns),
        "%s != %s" % (multiset(rows, expected_columns), multiset(mine, expected_columns)),
    )


def check_daily(contract, name, rows, accepted, events):
    days = collections.defaultdict(lambda: [0, 0, 0])
    for e in accepted:
        days[e.received_at.date().isoformat()][0] += 1
    for e in events:
        if e.verdict != "accepted":
            days[e.received_at.date().isoformat()][1 if e.verdict == "quarantine" else 2] += 1
    expected = {day: (a, q, r, round((q + r) / (a + q + r), 9)) for day, (a, q, r) in days.items()}
    got = {norm(r["day"]): (r["accepted"], r["quarantined"], r["rejected"], round(r["bad_share"], 9)) for r in rows}
    check("%s: %s counts each day's accepted, quarantined and refused events and the bad share" % (contract.name, name), got == expected and len(got) == 3, "%s != %s" % (got, expected))


def check_views(spark, contract, events):
    shape = contract.job.SHAPE
    upsert = bool(contract.job.UPSERT_KEY)
    accepted, stored = stored_rows(events, contract.job.CONTRACT_VERSION, upsert)
    table = contract.events_definition["name"]
    variants = {"%s_%s" % (table, snake(v)): v for v in shape["variants"]["cases"]}
    expected = set(variants) | {table + "_daily_quality"} | ({table + "_latest"} if upsert else set())
    spark.sql("CREATE DATABASE IF NOT EXISTS spark_catalog.%s" % contract.database)
    created = []
    for statement in statements(os.path.join(contract.dir, "athena", "views.sql")):
        spark.sql(for_spark(statement, contract.database))
        created.append(view_name(statement))
    check("%s: views.sql creates every view (%d)" % (contract.name, len(created)), sorted(created) == sorted(expected), str(created))
    for name in created:
        columns, rows = rows_of(spark, contract.database, name)
        if name in variants:
            check_variant(contract, name, variants[name], columns, rows, stored, shape)
        elif name.endswith("_daily_quality"):
            check_daily(contract, name, rows, accepted, events)
    if upsert:
        check_latest(spark, contract, table + "_latest", stored)


def add_older_version(spark, contract):
    """Appends an older version of one key beside the job's row, as another writer could: the
    job's MERGE keeps one row per key, so only this shows the view picking the latest."""
    from pyspark.sql import functions as F

    table = "%s.%s.%s" % (CATALOG, contract.database, contract.events_definition["name"])
    newest = spark.table(table).orderBy(*contract.job.UPSERT_KEY).limit(1)
    older = newest.withColumn(contract.job.LATEST_BY, F.col(contract.job.LATEST_BY) - F.expr("INTERVAL 1 DAY"))
    contract.job._conform(spark, older.withColumn("region", F.lit("us-east")), table).writeTo(table).option(
        "check-nullability", "false"
    ).append()
    return spark.table(table).count()


def check_latest(spark, contract, name, stored):
    held = add_older_version(spark, contract)
    columns, rows = rows_of(spark, contract.database, name)
    every = [f["name"] for f in contract.events_definition["schema"]["fields"]]
    keys = collections.Counter(tuple(r[k] for k in contract.job.UPSERT_KEY) for r in rows)
    check(
        "%s: %s returns the latest version of each of %d keys (of %d rows), value by value" % (contract.name, name, len(stored), held),
        held == len(stored) + 1 and columns == every and max(keys.values()) == 1 and multiset(rows, every) == multiset(stored, every),
        "%s != %s" % (multiset(rows, every), multiset(stored, every)),
    )


def write(spark, warehouse, contract, events):
    for definition in (contract.events_definition, contract.quarantine_definition):
        spark_iceberg.create_table(spark, warehouse, contract.database, definition)
    if contract.name == "match_events":
        # The repeated keys' second versions (the last two) come in the second batch.
        batches = [events[:-2], events[-2:]]
    else:
        batches = [events[: len(events) // 2], events[len(events) // 2:]]
    for batch_id, batch in enumerate(batches):
        records = [e.record(contract.claims) for e in batch]
        contract.job.process_batch(spark, kinesis_batch(spark, records), batch_id, CATALOG)


def main(argv):
    if len(argv) > 2:
        print(__doc__)
        return 2
    found = contracts(os.path.abspath(argv[1])) if len(argv) == 2 else contracts()
    all_contracts = [c for c in found if c.name in ("game_events", "match_events") and c.served]
    check("the workspace has both contracts", len(all_contracts) == 2)
    warehouse = os.path.join(tempfile.mkdtemp(prefix="contractc-views-"), "warehouse")
    # Three days of arrival, all in the past: day 0 starts at least two hours ago.
    today = (datetime.datetime.now(UTC) - datetime.timedelta(hours=2)).replace(hour=0, minute=0, second=0, microsecond=0)
    rng = random.Random(3)
    spark = spark_iceberg.session(warehouse, CATALOG, dict(all_contracts[0].job.SESSION_SETTINGS))
    try:
        for contract in all_contracts:
            started = time.time()
            events = game_events(today, rng) if contract.name == "game_events" else match_events(today, rng)
            write(spark, warehouse, contract, events)
            check_views(spark, contract, events)
            print("   %s: %d events written and its views checked in %.0f s" % (contract.name, len(events), time.time() - started))
    finally:
        spark.stop()
    passed = sum(1 for r in results if r)
    print("athena views: %d passed, %d failed" % (passed, len(results) - passed))
    return 1 if passed != len(results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
