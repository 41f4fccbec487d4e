"""Reads the runtime's Iceberg tables with pyiceberg (an independent reader) and checks them.

Usage: python tests/pyiceberg_check.py DATA_DIR EXPECTATIONS.json

EXPECTATIONS maps "database.table" to checks:
  {"rows": N}                            total row count
  {"partition_counts": {"Login": 3}}     rows per value of the column named in "partition_by"
  {"exactly_once": ["a", "b"], "column": "event_data"}
                                         each listed value appears in `column` exactly once
  {"at_most_once": true, "column": "event_data"}
                                         no value of `column` appears twice
  {"codes": {"pattern": 2}}              rows of a quarantine table whose violation_codes hold each code
  {"null_counts": {"level": 2}}          rows where a column is null
  {"max_bytes": {"raw_payload": 4096}}   no value of a string column is longer (UTF-8 bytes)
  {"prefix_exactly_once": ["m01"], "prefix_length": 3, "column": "event_data"}
                                         each listed prefix starts exactly one value of `column`
  {"max_files": N, "max_snapshots": M}   data files of the current snapshot / snapshots retained
  {"digest": true}                       prints "digest NAME HEX": a hash of every row's values,
                                         independent of row and file order
Prints what it found; exits 1 if any check fails.
"""

import collections
import hashlib
import json
import sys

from pyiceberg.catalog.sql import SqlCatalog


def main(argv):
    data_dir, expectations_path = argv[1], argv[2]
    with open(expectations_path, encoding="utf-8") as f:
        expectations = json.load(f)
    catalog = SqlCatalog(
        "contractc",
        uri="sqlite:///%s/catalog.db" % data_dir,
        warehouse="file://%s/warehouse" % data_dir,
    )
    failures = []
    for name, checks in expectations.items():
        table = catalog.load_table(name)
        rows = table.scan().to_arrow().to_pylist()
        print("%s: %d rows, field ids %s" % (name, len(rows), [f.field_id for f in table.schema().fields]))
        files = len(list(table.scan().plan_files()))
        snapshots = len(table.metadata.snapshots)
        print("%s: %d data files, %d snapshots" % (name, files, snapshots))
        if "max_files" in checks and files > checks["max_files"]:
            failures.append("%s: %d data files, expected at most %d" % (name, files, checks["max_files"]))
        if "max_snapshots" in checks and snapshots > checks["max_snapshots"]:
            failures.append("%s: %d snapshots, expected at most %d" % (name, snapshots, checks["max_snapshots"]))
        if checks.get("digest"):
            canonical = sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)
            print("digest %s %s" % (name, hashlib.sha256("\n".join(canonical).encode()).hexdigest()))
        if "rows" in checks and len(rows) != checks["rows"]:
            failures.append("%s: %d rows, expected %d" % (name, len(rows), checks["rows"]))
        if "partition_counts" in checks:
            column = checks["partition_by"]
            found = collections.Counter(r[column] for r in rows)
            if dict(found) != checks["partition_counts"]:
                failures.append("%s: per %s %s, expected %s" % (name, column, dict(found), checks["partition_counts"]))
        if "exactly_once" in checks or "at_most_once" in checks:
            column = checks["column"]
            found = collections.Counter(r[column] for r in rows)
            twice = [v for v, n in found.items() if n > 1]
            if twice:
                failures.append("%s: %d values appear more than once, e.g. %s" % (name, len(twice), twice[:5]))
            missing = [v for v in checks.get("exactly_once", []) if found[v] != 1]
            if missing:
                failures.append("%s: %d acknowledged values missing, e.g. %s" % (name, len(missing), missing[:5]))
        if "prefix_exactly_once" in checks:
            column, length = checks["column"], checks["prefix_length"]
            found = collections.Counter((r[column] or "")[:length] for r in rows)
            wrong = [p for p in checks["prefix_exactly_once"] if found[p] != 1]
            if wrong:
                failures.append("%s: %d prefixes not exactly once, e.g. %s" % (name, len(wrong), [(p, found[p]) for p in wrong[:5]]))
            extra = sorted(set(found) - set(checks["prefix_exactly_once"]))
            if extra:
                failures.append("%s: %d unexpected values, e.g. %s" % (name, len(extra), extra[:5]))
        if "null_counts" in checks:
            for column, n in checks["null_counts"].items():
                found = sum(1 for r in rows if r.get(column) is None)
                if found != n:
                    failures.append("%s: %d rows with null %s, expected %d" % (name, found, column, n))
        if "max_bytes" in checks:
            for column, limit in checks["max_bytes"].items():
                longest = max((len((r.get(column) or "").encode()) for r in rows), default=0)
                print("%s: longest %s has %d bytes" % (name, column, longest))
                if longest > limit:
                    failures.append("%s: a %s of %d bytes, over %d" % (name, column, longest, limit))
        if "codes" in checks:
            found = collections.Counter(code for r in rows for code in set(r["violation_codes"]))
            for code, n in checks["codes"].items():
                if found[code] != n:
                    failures.append("%s: %d rows with %s, expected %d" % (name, found[code], code, n))
    for failure in failures:
        print("FAIL " + failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
