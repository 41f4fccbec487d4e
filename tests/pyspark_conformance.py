"""PySpark conformance: the generated Glue scripts judge the labelled corpus as labelled.

Usage: python tests/pyspark_conformance.py CORPUS_DIR SCRIPT.py [SCRIPT.py ...]

CORPUS_DIR holds `<contract>.ndjson` from `contractc corpus`; each script is a generated
`glue/streaming_job.py`. Every case's violation codes (structure + Spark rules) must equal its
label, and `transform` must split the batch into events and quarantine rows. Exits 1 on any
disagreement, printing each.
"""

import importlib.util
import json
import os
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

# 2024-02-22T12:00:00Z, the ingest time the labels assume.
REFERENCE_TIME_MICROS = 1708603200000000


def load(path):
    spec = importlib.util.spec_from_file_location("job_%d" % abs(hash(path)), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv):
    corpus_dir, scripts = argv[1], argv[2:]
    if not scripts:
        print(__doc__)
        return 2
    spark = (
        SparkSession.builder.master("local[1]")
        .appName("contractc-conformance")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.legacy.timeParserPolicy", "CORRECTED")
        .config("spark.sql.ansi.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    failures = []
    total = 0
    for script in scripts:
        module = load(script)
        with open(os.path.join(corpus_dir, module.CONTRACT + ".ndjson"), encoding="utf-8") as f:
            cases = [json.loads(line) for line in f if line.strip()]
        records = (
            spark.createDataFrame([(i, c["body"]) for i, c in enumerate(cases)], "i int, raw string")
            .withColumn("ingest_time", F.timestamp_micros(F.lit(REFERENCE_TIME_MICROS)))
            .withColumn("request_id", F.lit("conformance"))
        )
        judged = (
            module.judge(records)
            .select("i", F.array_sort(F.array_distinct(F.transform("_violations", lambda v: v["code"]))).alias("codes"))
            .collect()
        )
        for row in judged:
            case = cases[row["i"]]
            total += 1
            if list(row["codes"]) != case["codes"]:
                failures.append(
                    "%s / %s: expected %s, got %s\n    %s"
                    % (module.CONTRACT, case["name"], case["codes"], list(row["codes"]), case["body"])
                )
        events, quarantine = module.transform(records)
        n_events, n_quarantine = events.count(), quarantine.count()
        if n_events + n_quarantine != len(cases):
            failures.append("%s: %d events + %d quarantined != %d records" % (module.CONTRACT, n_events, n_quarantine, len(cases)))
        valid = sum(1 for c in cases if not c["codes"])
        if n_events < valid:
            failures.append("%s: only %d events for %d valid cases" % (module.CONTRACT, n_events, valid))
        print("%s: %d cases, %d events, %d quarantined" % (module.CONTRACT, len(cases), n_events, n_quarantine))
    spark.stop()
    for failure in failures:
        print("DISAGREE " + failure)
    print("pyspark conformance: %d cases, %d disagreements" % (total, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
