"""The generated Glue job, executed: one lake, two engines, same rows.

Usage: python tests/glue_job.py RUNTIME_BINARY CORPUS_DIR [WORKSPACE]

WORKSPACE (default: this repository) is where `generated/` is read from: the versioned copy
`tests/rebuilt_runtime.sh versioned` builds, with RUNTIME_BINARY its runtime and CORPUS_DIR its
`contractc corpus`, runs the same comparison for a contract with released versions (#20). Its
traffic then also holds every supported release's corpus (declaring that version), the default
version's corpus without a version header (as the reference's test client sends), a retired and
an unknown version: both engines judge each event as its version, upcast the same rows.

For every contract in contracts/ (served by `contract-runtime serve`, built from them) and in
tests/fixtures/ (job only), this test:

1. makes the traffic: the labelled corpus (`contractc corpus` into CORPUS_DIR) plus events
   `synth` generates valid for now;
2. sends each event to `serve` with one guest token, and renders the API Gateway mapping
   template the contract's OpenAPI carries (VTL, with airspeed) for the same request as the JWT
   front door forwards it (claim headers overwritten with the token's, the front door's secret):
   the rendered `PutRecord` data is the stream record;
3. runs the generated `streaming_job.py` under local PySpark with Iceberg: tables created from
   the generated definitions by Iceberg's own parsers, the records fed to the job's
   `process_batch` in micro-batches exactly as the streaming query would (only the Kinesis
   source is replaced), with a re-run of a complete batch and a failure between the events and
   the quarantine writes followed by Spark's retry of the batch;
4. reads both lakes with pyiceberg and compares them: schemas with field ids, partition specs,
   accepted rows value by value (enrichments from the same claims), quarantine rows with their
   codes, paths and messages. Fixtures, which `serve` does not hold, are checked against their
   labels. Upsert tables must hold one row per key, the latest.

The template rendering is checked on its own too: a forged claim header is overwritten by the
front door, and a request without the front door's secret renders no record.

Prints one line per check and `glue job: N passed, M failed`; exits 1 on any failure.
"""

import base64
import collections
import datetime
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

import airspeed

import spark_iceberg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CATALOG = "lake"
EDGE_SECRET = "front-door-secret"
# Columns whose values are per request (each engine saw its own request): compared for
# presence, not value.
PER_REQUEST = {"ingest_time", "request_id", "received_at"}

results = []


def check(name, ok, detail=""):
    results.append(ok)
    print("%s %s%s" % ("ok  " if ok else "FAIL", name, (": " + detail) if detail and not ok else ""))
    return ok


# ------------------------------------------------------------------------------------------
# Contracts as generated
# ------------------------------------------------------------------------------------------


class Generated:
    """One contract's generated artefacts."""

    def __init__(self, directory, served):
        self.dir = directory
        self.served = served
        self.script = os.path.join(directory, "glue", "streaming_job.py")
        spec = importlib.util.spec_from_file_location("job_" + os.path.basename(directory) + str(id(self)), self.script)
        self.job = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.job)
        self.name = self.job.CONTRACT
        with open(os.path.join(directory, "iceberg", "events-table.json")) as f:
            self.events_definition = json.load(f)
        with open(os.path.join(directory, "iceberg", "quarantine-table.json")) as f:
            self.quarantine_definition = json.load(f)
        with open(os.path.join(directory, "apigateway", "openapi.json")) as f:
            openapi = json.load(f)
        self.route, path = next(iter(openapi["paths"].items()))
        integration = path["post"]["x-amazon-apigateway-integration"]
        # deploy fills ${stream_name}; the rest is the template API Gateway runs.
        self.template = integration["requestTemplates"]["application/json"].replace(
            "${stream_name}", "stream-" + self.name
        )
        self.claims = sorted(
            {
                name[len("x-contractc-claim-"):]
                for name in re.findall(r"x-contractc-claim-[a-z0-9_]+", self.template)
            }
        )

    @property
    def database(self):
        return self.job.DATABASE


def contracts(root=ROOT):
    found = [Generated(d, True) for d in sorted(glob_dirs(os.path.join(root, "generated")))]
    if root != ROOT:
        return found
    fixtures = os.path.join(ROOT, "tests", "fixtures")
    for fixture in sorted(os.listdir(fixtures)):
        expected = os.path.join(fixtures, fixture, "expected")
        if os.path.isdir(expected):
            found.extend(Generated(d, False) for d in sorted(glob_dirs(expected)))
    return found


def glob_dirs(parent):
    return [
        os.path.join(parent, d)
        for d in os.listdir(parent)
        if os.path.exists(os.path.join(parent, d, "glue", "streaming_job.py"))
    ]


# ------------------------------------------------------------------------------------------
# API Gateway's mapping template, rendered as API Gateway would
# ------------------------------------------------------------------------------------------


class Util:
    """`$util` of API Gateway's VTL."""

    def base64Encode(self, text):  # noqa: N802 (API Gateway's name)
        return base64.b64encode((text or "").encode("utf-8")).decode("ascii")


class Input:
    """`$input` of a request: the raw body and the headers the integration receives."""

    def __init__(self, body, headers):
        self.body = body
        self._headers = {k.lower(): v for k, v in headers.items()}

    def params(self, name=None):
        if name is None:
            return {"header": self._headers, "querystring": {}, "path": {}}
        return self._headers.get(name.lower(), "")

    def path(self, expression):
        try:
            value = json.loads(self.body)
        except ValueError:
            return ""
        for part in expression.lstrip("$").strip(".").split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return "" if value is None else value


def front_door(contract, client_headers, claims):
    """The headers the JWT front door forwards: the client's, with every claim header the
    contract reads overwritten by the verified token's claim (or removed), and its secret."""
    headers = {k.lower(): v for k, v in client_headers.items() if not k.lower().startswith("x-contractc-")}
    for claim in contract.claims:
        if claims.get(claim) is not None:
            headers["x-contractc-claim-" + claim] = claims[claim]
    headers["x-contractc-edge"] = EDGE_SECRET
    return headers


def render(contract, body, headers, request_id, time_ms, secret=EDGE_SECRET):
    """The rendered `PutRecord` request, as JSON."""
    context = {
        "util": Util(),
        "input": Input(body, headers),
        "context": {"requestId": request_id, "requestTimeEpoch": time_ms},
        "stageVariables": {"contractc_edge_secret": secret},
    }
    return json.loads(airspeed.Template(contract.template).merge(context))


def check_rendering(contract):
    body = '{"x": "it\'s \\"quoted\\" \\\\ é"}'
    forged = front_door(contract, {"X-Contractc-Claim-Sub": "forged", "x-contractc-edge": "guess"}, {"sub": "real"})
    put = render(contract, body, forged, "r-1", 1700000000000)
    record = json.loads(base64.b64decode(put["Data"]))
    decoded_claims = {k: base64.b64decode(v).decode() for k, v in record["claims"].items()}
    check(
        "%s: template wraps the body verbatim with request id, time and claims" % contract.name,
        base64.b64decode(record["body"]).decode() == body
        and record["request_id"] == "r-1"
        and record["received_at_ms"] == 1700000000000
        and set(decoded_claims) == set(contract.claims)
        and all(v == ("real" if k == "sub" else "") for k, v in decoded_claims.items()),
        json.dumps(record),
    )
    around = render(contract, body, {"X-Contractc-Claim-Sub": "forged", "x-contractc-edge": "guess"}, "r-2", 1)
    check("%s: a request around the front door puts no record" % contract.name, "Data" not in around, json.dumps(around))
    unset = render(contract, body, {"x-contractc-edge": ""}, "r-3", 1, secret="")
    check("%s: no record while the API has no secret configured" % contract.name, "Data" not in unset, json.dumps(unset))


# ------------------------------------------------------------------------------------------
# serve
# ------------------------------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Serve:
    def __init__(self, binary, data_dir):
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.data_dir = data_dir
        self.log = open(data_dir + ".log", "w")
        self.process = subprocess.Popen(
            [binary, "serve", "--listen", "127.0.0.1:%d" % self.port, "--data-dir", data_dir, "--commit-interval-ms", "200", "--dev-mint-scopes", "--guests-per-minute", "0"],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            cwd=tempfile.gettempdir(),
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.base + "/healthz", timeout=2).read()
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        raise RuntimeError("serve did not start; see %s.log" % data_dir)

    def login(self, scope):
        with urllib.request.urlopen(self.base + "/prod/login-as-guest?scope=" + scope, timeout=10) as r:
            token = json.load(r)["auth_token"]
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return token, claims

    def post(self, route, body, token, version=None):
        headers = {"Authorization": token, "Content-Type": "application/json"}
        if version is not None:
            headers["X-Contract-Version"] = version
        request = urllib.request.Request(self.base + route, data=body.encode("utf-8"), method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as error:
            return error.code

    def event_counts(self):
        """`contractc_events_total` from /metrics: {(contract, verdict): count}."""
        with urllib.request.urlopen(self.base + "/metrics", timeout=10) as r:
            text = r.read().decode()
        counts = {}
        for line in text.splitlines():
            match = re.match(r'contractc_events_total\{contract="([^"]+)",verdict="([^"]+)"\} (\d+)', line)
            if match:
                counts[(match.group(1), match.group(2))] = int(match.group(3))
        return counts

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)
        self.log.close()


# ------------------------------------------------------------------------------------------
# The job, under local Spark
# ------------------------------------------------------------------------------------------


def kinesis_batch(spark, records):
    """A DataFrame shaped like Glue's Kinesis source."""
    from pyspark.sql import types as T

    schema = T.StructType(
        [
            T.StructField("data", T.BinaryType()),
            T.StructField("partitionKey", T.StringType()),
            T.StructField("sequenceNumber", T.StringType()),
            T.StructField("approximateArrivalTimestamp", T.TimestampType()),
        ]
    )
    import datetime

    rows = [
        (bytearray(data), key, str(i), datetime.datetime.fromtimestamp(time_ms / 1000, datetime.timezone.utc))
        for i, (data, key, time_ms) in enumerate(records)
    ]
    return spark.createDataFrame(rows, schema)


def table_rows(spark, contract, table):
    return spark.table("%s.%s.%s" % (CATALOG, contract.database, table)).count()


def run_job(spark, warehouse, contract, records, published=None):
    """Feeds `records` to the job in two micro-batches, with a re-run of the first and a failure
    between the writes of the second (then Spark's retry). What the job publishes for CloudWatch
    is appended to `published` (one list of MetricData per call)."""
    job = contract.job
    publish = (lambda data: published.append(list(data))) if published is not None else None
    for definition in (contract.events_definition, contract.quarantine_definition):
        spark_iceberg.create_table(spark, warehouse, contract.database, definition)
    half = len(records) // 2
    first, second = kinesis_batch(spark, records[:half]), kinesis_batch(spark, records[half:])
    events_table = contract.events_definition["name"]
    quarantine_table = contract.quarantine_definition["name"]

    job.process_batch(spark, first, 0, CATALOG, publish)
    counts = (table_rows(spark, contract, events_table), table_rows(spark, contract, quarantine_table))
    before = len(published or [])
    job.process_batch(spark, first, 0, CATALOG, publish)
    if published is not None:
        check("%s: metrics: a re-run of a written batch publishes nothing" % contract.name, len(published) == before)
    again = (table_rows(spark, contract, events_table), table_rows(spark, contract, quarantine_table))
    check("%s: re-running a complete batch adds nothing" % contract.name, again == counts, "%s then %s" % (counts, again))

    write_quarantine = job._write_quarantine

    def fail(*_):
        raise RuntimeError("simulated failure between the events and the quarantine writes")

    job._write_quarantine = fail
    try:
        job.process_batch(spark, second, 1, CATALOG, publish)
        check("%s: the simulated failure happened" % contract.name, False)
    except RuntimeError:
        pass
    finally:
        job._write_quarantine = write_quarantine
    job.process_batch(spark, second, 1, CATALOG, publish)
    before = len(published or [])
    job.process_batch(spark, second, 1, CATALOG, publish)
    if published is not None:
        check("%s: metrics: a re-run after the retry publishes nothing" % contract.name, len(published) == before)

    if not job.UPSERT_KEY:
        summaries = [
            row["summary"]
            for row in spark.sql("SELECT summary FROM %s.%s.%s.snapshots" % (CATALOG, contract.database, events_table)).collect()
        ]
        batches = sorted(int(s["contractc.batch-id"]) for s in summaries if s and "contractc.batch-id" in s)
        check("%s: snapshots record the batches they hold" % contract.name, batches == [0, 1], str(batches))


def check_metrics(contract, published, served):
    """The job's CloudWatch counts (#24): each batch counted once, a failure published once,
    and over both batches the same accepted / quarantined / refused figures as serve's /metrics
    for the same events."""
    job = contract.job
    failures = [d for d in published if d and d[0]["MetricName"] == job.METRIC_BATCH_FAILURES]
    counted = [d for d in published if d and d[0]["MetricName"] != job.METRIC_BATCH_FAILURES]
    check("%s: metrics: the failed batch published one failure" % contract.name, len(failures) == 1, str(failures))
    totals = collections.Counter()
    versions = collections.Counter()
    codes = collections.Counter()
    for data in counted:
        for d in data:
            names = {x["Name"] for x in d["Dimensions"]}
            if names == {job.METRIC_CONTRACT}:
                totals[d["MetricName"]] += d["Value"]
            elif job.METRIC_CLIENT_VERSION in names:
                versions[d["MetricName"]] += d["Value"]
            elif job.METRIC_CODE in names:
                codes[d["MetricName"]] += d["Value"]
    serve_counts = {
        job.METRIC_ACCEPTED: served.get((contract.name, "accept"), 0),
        job.METRIC_QUARANTINED: served.get((contract.name, "quarantine"), 0),
        job.METRIC_REFUSED: served.get((contract.name, "reject"), 0),
    }
    check(
        "%s: metrics: the job's counts equal serve's /metrics %s" % (contract.name, serve_counts),
        {k: int(totals[k]) for k in serve_counts} == serve_counts,
        str(dict(totals)),
    )
    check("%s: metrics: per client version they add up" % contract.name, versions == totals, "%s vs %s" % (versions, totals))
    check(
        "%s: metrics: every refused event has its codes counted" % contract.name,
        (codes[job.METRIC_REFUSED] >= totals[job.METRIC_REFUSED]) and (totals[job.METRIC_REFUSED] > 0),
        "%s codes for %s refused" % (codes[job.METRIC_REFUSED], totals[job.METRIC_REFUSED]),
    )


def check_metrics_on_moto(contract, published, work):
    """The job's publisher through boto3 to moto's CloudWatch, read back: the SDK takes the
    MetricData as the job builds them."""
    import boto3

    from edge_door import Moto

    moto = Moto(work)
    try:
        client = boto3.client(
            "cloudwatch", endpoint_url=moto.url, region_name="eu-west-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )
        job = contract.job
        publish = job.cloudwatch_publisher(job.METRICS_NAMESPACE, client=client)
        start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
        for data in published:
            publish(data)
        end = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=5)
        # The per-version series: CloudWatch matches dimensions exactly, moto as a subset, so
        # this is the query both answer alike.
        version = [{"Name": job.METRIC_CONTRACT, "Value": contract.name}, {"Name": job.METRIC_CLIENT_VERSION, "Value": job.CONTRACT_VERSION}]
        expected = sum(
            d["Value"] for data in published for d in data
            if d["MetricName"] == job.METRIC_ACCEPTED and d["Dimensions"] == version
        )
        stats = client.get_metric_statistics(
            Namespace=job.METRICS_NAMESPACE, MetricName=job.METRIC_ACCEPTED, Dimensions=version,
            StartTime=start, EndTime=end, Period=3600, Statistics=["Sum"],
        )
        got = sum(p["Sum"] for p in stats["Datapoints"])
        check(
            "%s: metrics on moto's CloudWatch: Accepted of %s read back (%d)" % (contract.name, job.CONTRACT_VERSION, expected),
            got == expected and expected > 0,
            str(stats["Datapoints"]),
        )
        listed = client.list_metrics(Namespace=job.METRICS_NAMESPACE)["Metrics"]
        names = {m["MetricName"] for m in listed}
        check(
            "%s: metrics on moto's CloudWatch: every metric listed" % contract.name,
            {job.METRIC_ACCEPTED, job.METRIC_QUARANTINED, job.METRIC_REFUSED, job.METRIC_BATCH_FAILURES} <= names,
            str(sorted(names)),
        )
    finally:
        moto.stop()


# ------------------------------------------------------------------------------------------
# Comparing lakes
# ------------------------------------------------------------------------------------------


def schema_of(table):
    return [(f.field_id, f.name, str(f.field_type), f.required) for f in table.schema().fields]


def spec_of(table):
    return [(f.source_id, f.field_id, str(f.transform), f.name) for f in table.spec().fields]


def canonical(value):
    if isinstance(value, dict):
        return tuple(sorted((k, canonical(v)) for k, v in value.items()))
    if isinstance(value, list) and value and all(isinstance(v, tuple) and len(v) == 2 for v in value):
        # A map (pyarrow's key-value pairs): its entries have no order.
        return tuple(sorted(canonical(v) for v in value))
    if isinstance(value, (list, tuple)):
        return tuple(canonical(v) for v in value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float):
        return round(value, 9)
    return str(value) if value is not None and not isinstance(value, (int, bool, str)) else value


def event_rows(table):
    rows = table.scan().to_arrow().to_pylist()
    return collections.Counter(
        canonical({k: v for k, v in row.items() if k not in PER_REQUEST}) for row in rows
    ), rows


INDEX = re.compile(r"\[[0-9]+\]")


def quarantine_key(row):
    # Spark reports a rule once for a list (path `[*]`); Rust once per element (`[2]`). The
    # parsers' texts for invalid JSON differ.
    violations = sorted(
        {
            (v["code"], INDEX.sub("[*]", v["path"]), v["policy"], "" if v["code"] == "invalid_json" else v["message"])
            for v in row["violations"]
        }
    )
    return canonical(
        {
            "verdict": row["verdict"],
            "violations": violations,
            "raw_payload": row["raw_payload"],
            "player_id": row["player_id"],
            "contract_version": row["contract_version"],
        }
    )


def latest_per_key(rows, key, latest_by):
    """What an upsert table promises: one row per key, the latest by `latest_by`. `serve` keeps
    it across commits (copy-on-write), the job's MERGE across batches."""
    latest = {}
    for row in rows:
        k = tuple(row[c] for c in key)
        if k not in latest or (latest_by and row[latest_by] is not None and (latest[k][latest_by] is None or row[latest_by] >= latest[k][latest_by])):
            latest[k] = row
    return list(latest.values())


def partitions(table):
    return collections.Counter(canonical(task.file.partition) for task in table.scan().plan_files())


def as_stored(job, mode, values):
    """`values` as a column declared `pii: mode` stores them (#23)."""
    if mode in (None, "keep"):
        return set(values)
    secret = job._pii_secret() if mode == "hash" else b""
    return {job._stored(mode, v, secret) for v in values}


def compare(contract, serve_catalog, warehouse, subjects):
    from pyiceberg.table import StaticTable

    for definition, kind in ((contract.events_definition, "events"), (contract.quarantine_definition, "quarantine")):
        served = serve_catalog.load_table("%s.%s" % (contract.database, definition["name"]))
        job = StaticTable.from_metadata(spark_iceberg.latest_metadata(warehouse, contract.database, definition["name"]))
        check("%s: %s tables have the same schema and field ids" % (contract.name, kind), schema_of(served) == schema_of(job), "%s\n     vs %s" % (schema_of(served), schema_of(job)))
        check("%s: %s tables have the same partition spec" % (contract.name, kind), spec_of(served) == spec_of(job))
        if kind == "events":
            (served_rows, raw_served), (job_rows, raw_job) = event_rows(served), event_rows(job)
            if contract.job.UPSERT_KEY:
                reduced = latest_per_key(raw_served, contract.job.UPSERT_KEY, contract.job.LATEST_BY)
                check(
                    "%s: serve holds one row per key across commits (%d rows, %d keys)" % (contract.name, len(raw_served), len(reduced)),
                    len(raw_served) == len(reduced) > 0,
                )
                served_rows = collections.Counter(
                    canonical({k: v for k, v in row.items() if k not in PER_REQUEST}) for row in reduced
                )
            check(
                "%s: the same accepted rows, value by value (%d)" % (contract.name, sum(served_rows.values())),
                served_rows == job_rows and sum(served_rows.values()) > 0,
                "only in serve: %s\n     only in the job: %s" % (list((served_rows - job_rows).items())[:3], list((job_rows - served_rows).items())[:3]),
            )
            per_request_filled = all(row.get(c) is not None for row in raw_job for c in PER_REQUEST if c in row)
            check("%s: the job fills per-request enrichments from the envelope" % contract.name, per_request_filled)
            from_sub = [f["name"] for f in definition["schema"]["fields"] if "jwt.sub" in (f.get("doc") or "")]
            check(
                "%s: %s filled from the token's subject on the AWS path" % (contract.name, ", ".join(from_sub) or "no jwt.sub column"),
                bool(from_sub) and all(row[c] in as_stored(contract.job, contract.job.PII_COLUMNS.get(c), subjects) for row in raw_job for c in from_sub),
            )
            partitions_served, partitions_job = set(partitions(served)), set(partitions(job))
            check(
                "%s: the same partition values" % contract.name,
                partitions_served == partitions_job,
                "%s vs %s" % (partitions_served, partitions_job),
            )
        else:
            job_quarantine = job.scan().to_arrow().to_pylist()
            check(
                "%s: quarantine rows carry the player from the token on the AWS path" % contract.name,
                all(r["player_id"] in as_stored(contract.job, contract.job.PII_SUBJECT, subjects) for r in job_quarantine),
            )
            served_rows = collections.Counter(quarantine_key(r) for r in served.scan().to_arrow().to_pylist())
            job_rows = collections.Counter(quarantine_key(r) for r in job.scan().to_arrow().to_pylist())
            check(
                "%s: the same quarantine rows, codes, paths and messages (%d)" % (contract.name, sum(served_rows.values())),
                served_rows == job_rows and sum(served_rows.values()) > 0,
                "only in serve: %s\n     only in the job: %s" % (list((served_rows - job_rows).items())[:2], list((job_rows - served_rows).items())[:2]),
            )


def check_against_labels(contract, warehouse, cases):
    """Fixtures: every quarantined case carries its labelled codes, and every case is in one
    of the two tables."""
    from pyiceberg.table import StaticTable

    def load(definition):
        return StaticTable.from_metadata(spark_iceberg.latest_metadata(warehouse, contract.database, definition["name"]))

    labels = {c["body"]: sorted(set(c["codes"])) for c in cases}
    quarantined = load(contract.quarantine_definition).scan().to_arrow().to_pylist()
    wrong = [
        "%s: %s" % (row["raw_payload"][:60], sorted({v["code"] for v in row["violations"]}))
        for row in quarantined
        if sorted({v["code"] for v in row["violations"]}) != labels.get(row["raw_payload"])
    ]
    check("%s: quarantined cases carry exactly their labelled codes (%d)" % (contract.name, len(quarantined)), not wrong, "; ".join(wrong[:3]))
    n_events = len(load(contract.events_definition).scan().to_arrow())
    valid = sum(1 for c in cases if not c["codes"])
    if contract.job.UPSERT_KEY:
        check("%s: the events table holds the valid cases, one per key (%d)" % (contract.name, n_events), 0 < n_events <= len(cases) - len(quarantined))
    else:
        check(
            "%s: every case is in one table (%d events + %d quarantined = %d)" % (contract.name, n_events, len(quarantined), len(cases)),
            n_events + len(quarantined) == len(cases) and n_events >= valid,
        )


def check_upsert(spark, warehouse, contract, template_body):
    """Two batches with versions of one key: the table keeps one row, the latest."""
    from pyiceberg.table import StaticTable

    job = contract.job
    body = json.loads(template_body)
    key = {k: body[k] for k in job.UPSERT_KEY}
    # Three versions, the latest in the middle: by number or by time, as `latest_by` is.
    if job.LATEST_BY and isinstance(body.get(job.LATEST_BY), int):
        stamps, latest = [body[job.LATEST_BY] + d for d in (1, 3, 2)], str(body[job.LATEST_BY] + 3)
    else:
        stamps, latest = ["2024-02-22T10:00:00Z", "2024-02-22T11:00:00Z", "2024-02-22T10:30:00Z"], "2024-02-22 11:00"
    versions = []
    for stamp in stamps:
        event = dict(body)
        event.update(key)
        if job.LATEST_BY:
            event[job.LATEST_BY] = stamp
        versions.append(json.dumps(event))
    records = []
    for i, text in enumerate(versions):
        envelope = {"contractc": 1, "request_id": "u-%d" % i, "received_at_ms": 1708603200000 + i, "claims": {}, "body": base64.b64encode(text.encode()).decode()}
        records.append((json.dumps(envelope).encode(), "k", 1708603200000 + i))
    job.process_batch(spark, kinesis_batch(spark, records[:2]), 10, CATALOG)
    job.process_batch(spark, kinesis_batch(spark, records[2:]), 11, CATALOG)
    table = StaticTable.from_metadata(spark_iceberg.latest_metadata(warehouse, contract.database, contract.events_definition["name"]))
    rows = [r for r in table.scan().to_arrow().to_pylist() if all(str(r[k]) == str(v) for k, v in key.items())]
    latest_ok = len(rows) == 1 and (not job.LATEST_BY or str(rows[0][job.LATEST_BY]).startswith(latest))
    check("%s: MERGE keeps one row per key across batches, the latest" % contract.name, latest_ok, str(rows))


# ------------------------------------------------------------------------------------------


VERSIONS = set()


def key_versions(job, body):
    """Three versions of one key, out of order by `latest_by` (upsert contracts)."""
    event = json.loads(body)
    versions = []
    now = time.time()
    for minutes in (3, 1, 2):
        version = dict(event)
        if job.LATEST_BY:
            version[job.LATEST_BY] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 60 * minutes))
        version["_version"] = minutes  # dropped below: keeps the three bodies distinct
        del version["_version"]
        text = json.dumps(version) + " " * minutes
        versions.append(text)
        VERSIONS.add(text)
    return versions


def retries(job, bodies):
    """Clients' retries: every third event of the first half again (in the job's second
    micro-batch, so across batches), and the last event twice more (within one batch).
    `bodies`: (body, declared version) pairs."""
    with_id = [b for b in bodies[: len(bodies) // 2] if job.event_id(b[0])]
    return with_id[::3] + [bodies[-1], bodies[-1]]


def declared_version(job):
    """The version the test's own events declare: with released versions the current one (each
    event declares the version it is made for), else none, as the clients of old did."""
    return job.CONTRACT_VERSION if getattr(job, "VERSIONS", None) else None


def versioned_traffic(binary, job, corpus_dir):
    """(body, declared version) of a contract with released versions: each supported
    release's corpus and synth's events valid now (upcast into the events table) declaring it,
    the default version's without a header (as the reference's client), a retired and an
    unknown version."""
    traffic = []
    for version in job.VERSIONS["supported"]:
        if version == job.CONTRACT_VERSION:
            continue
        with open(os.path.join(corpus_dir, "%s@%s.ndjson" % (job.CONTRACT, version)), encoding="utf-8") as f:
            cases = [json.loads(line) for line in f if line.strip()]
        traffic += [(c["body"], version) for c in cases]
        made = synth_events(binary, job.CONTRACT, 40, "--versions", version + "=1")
        traffic += [(body, version) for body in made[:20]]
        if version == job.VERSIONS["default_client"]:
            traffic += [(c["body"], None) for c in cases if not c["codes"]]
            traffic += [(body, None) for body in made[20:]]
    valid = next(body for body, version in traffic if version is None)
    traffic += [(valid, version) for version in job.VERSIONS["retired"]]
    traffic.append((valid, "9.9.9"))
    return traffic


def check_one_row_per_id(contract, serve_catalog, warehouse, retried):
    """Both lakes hold each stored event id once, retries included."""
    from pyiceberg.table import StaticTable

    job = contract.job
    for engine in ("serve", "the job"):
        ids = collections.Counter()
        for definition in (contract.events_definition, contract.quarantine_definition):
            name = definition["name"]
            if engine == "serve":
                table = serve_catalog.load_table("%s.%s" % (contract.database, name))
            else:
                table = StaticTable.from_metadata(spark_iceberg.latest_metadata(warehouse, contract.database, name))
            for row in table.scan().to_arrow().to_pylist():
                if definition is contract.events_definition:
                    ids[str(row[job.DEDUP_FIELD]).lower() if row[job.DEDUP_FIELD] is not None else None] += 1
                elif row["verdict"] == "quarantine":
                    ids[job.event_id(row["raw_payload"])] += 1
        ids.pop(None, None)
        doubled = [i for i, n in ids.items() if n > 1]
        stored_retries = retried & set(ids)
        check(
            "%s: %s holds one row per event id (%d ids, %d of them sent again)" % (contract.name, engine, len(ids), len(stored_retries)),
            not doubled and len(stored_retries) >= 5,
            "doubled: %s; retried ids stored: %d" % (doubled[:3], len(stored_retries)),
        )


def check_upcast_steps(job):
    """The job's `_upcast` on the cases `runtime/judge/src/upcast.rs` pins for serve's: every
    step, exact text kept for untouched members, integers scaled as integers, overflow refused."""
    steps = [
        {"op": "rename", "from": "t", "to": "type"},
        {"op": "derive", "field": "category", "from": "type", "map": {"Login": "session"}, "otherwise": '"gameplay"'},
        {"op": "map_values", "field": "type", "map": {"Killed Enemy": "Enemy Killed"}},
        {"op": "default", "field": "platform", "value": '"unknown"'},
        {"op": "scale", "field": "ms", "by": "1000"},
        {"op": "drop", "field": "text"},
    ]
    text, error = job._upcast('{"t":"Killed Enemy","text":"hi","ms":3,"amount":12345678901234567.891}', steps)
    check(
        "%s: the job's upcast applies every step as serve's does" % job.CONTRACT,
        error is None and json.loads(text) == {"type": "Enemy Killed", "category": "gameplay", "platform": "unknown", "ms": 3000, "amount": 12345678901234567.891}
        and '"amount":12345678901234567.891' in text,
        "%s %s" % (text, error),
    )
    login, _ = job._upcast('{"t":"Login","platform":"ps5"}', steps)
    check("%s: a derive maps, a default leaves a sent value alone" % job.CONTRACT, json.loads(login)["category"] == "session" and json.loads(login)["platform"] == "ps5", login)
    scaled = [job._upcast('{"ms":%s}' % v, [{"op": "scale", "field": "ms", "by": by}]) for v, by in (("1.5", "1000"), ("2", "0.5"), ("9223372036854775807", "2"))]
    check(
        "%s: scale keeps integers, multiplies numbers, refuses what no 64-bit integer holds" % job.CONTRACT,
        json.loads(scaled[0][0])["ms"] == 1500.0 and json.loads(scaled[1][0])["ms"] == 1.0 and scaled[2][0] is None and "64-bit" in scaled[2][1],
        str(scaled),
    )


def check_upcast_rows(contract, serve_catalog, warehouse):
    """Events of released versions are in both events tables, upcast, recording the version
    they arrived as (the rows themselves are compared value by value above)."""
    from pyiceberg.table import StaticTable

    name = contract.events_definition["name"]
    served = serve_catalog.load_table("%s.%s" % (contract.database, name)).scan().to_arrow().to_pylist()
    job = StaticTable.from_metadata(spark_iceberg.latest_metadata(warehouse, contract.database, name)).scan().to_arrow().to_pylist()
    releases = [v for v in contract.job.VERSIONS["supported"] if v != contract.job.CONTRACT_VERSION]
    for engine, rows in (("serve", served), ("the job", job)):
        old = collections.Counter(row["client_version"] for row in rows if row["client_version"] in releases)
        check(
            "%s: %s holds upcast events of every supported release (%s)" % (contract.name, engine, dict(old)),
            all(old[v] > 0 for v in releases),
        )


def check_personal_data(contract, serve_catalog, warehouse, bodies):
    """#23: both engines hashed the same values alike (`compare` checks them value by value);
    here: the hashed columns hold hashes, and no quarantine payload of either engine holds a
    member the contract drops, or a hashed member as sent; a payload that is not a JSON object
    is withheld whole."""
    from pyiceberg.table import StaticTable

    job = contract.job
    hidden = {m: mode for m, mode in job.PII_MEMBERS.items() if mode in ("hash", "drop")}
    raw = set()
    for body in bodies:
        try:
            event = json.loads(body)
        except ValueError:
            continue
        if isinstance(event, dict):
            raw |= {json.dumps(event[m]) for m in hidden if m in event and event[m] is not None}
    name = contract.quarantine_definition["name"]
    served = serve_catalog.load_table("%s.%s" % (contract.database, name)).scan().to_arrow().to_pylist()
    by_job = StaticTable.from_metadata(spark_iceberg.latest_metadata(warehouse, contract.database, name)).scan().to_arrow().to_pylist()
    hex64 = re.compile(r"^[0-9a-f]{64}$")

    def leaks(payload):
        try:
            event = json.loads(payload)
        except ValueError:
            return payload != job.PII_WITHHELD
        if not isinstance(event, dict):
            return True
        for member, mode in hidden.items():
            if member in event and event[member] is not None:
                if mode == "drop" or not (isinstance(event[member], str) and hex64.match(event[member])):
                    return True
        return False

    if hidden:
        check("%s: the traffic carries personal values to hide (%d distinct)" % (contract.name, len(raw)), len(raw) > 0)
        for engine, rows in (("serve", served), ("the job", by_job)):
            leaked = [r["raw_payload"] for r in rows if leaks(r["raw_payload"])]
            check("%s: no quarantine payload of %s holds a dropped member or a hashed one as sent (%d rows)" % (contract.name, engine, len(rows)), rows and not leaked, str(leaked[:2]))
    if job.PII_SUBJECT == "hash":
        players = [r["player_id"] for r in served + by_job if r["player_id"] is not None]
        check("%s: both quarantine tables hold the player hashed (%d rows)" % (contract.name, len(players)), players and all(hex64.match(p) for p in players))
    hashed = [c for c, mode in job.PII_COLUMNS.items() if mode == "hash"]
    events = contract.events_definition["name"]
    rows = StaticTable.from_metadata(spark_iceberg.latest_metadata(warehouse, contract.database, events)).scan().to_arrow().to_pylist()
    values = [row[c] for row in rows for c in hashed if row.get(c) is not None]
    check("%s: the job's hashed columns (%s) hold HMAC-SHA256 hex (%d values)" % (contract.name, ", ".join(hashed), len(values)), values and all(hex64.match(v) for v in values))


def synth_events(binary, contract, count, *options):
    out = subprocess.run(
        [binary, "synth", "--dry-run", "--contract", contract, "--max-count", str(count), "--seed", "11", *options],
        capture_output=True, text=True, check=True, cwd=tempfile.gettempdir(),
    )
    return [line for line in out.stdout.splitlines() if line.strip()]


def main(argv):
    if len(argv) not in (3, 4):
        print(__doc__)
        return 2
    binary, corpus_dir = os.path.abspath(argv[1]), argv[2]
    root = os.path.abspath(argv[3]) if len(argv) == 4 else ROOT
    work = tempfile.mkdtemp(prefix="contractc-glue-")
    warehouse = os.path.join(work, "warehouse")
    all_contracts = contracts(root)
    for contract in all_contracts:
        check_rendering(contract)

    cases = {}
    for contract in all_contracts:
        with open(os.path.join(corpus_dir, contract.name + ".ndjson"), encoding="utf-8") as f:
            cases[contract.name] = [json.loads(line) for line in f if line.strip()]

    # serve, with every event of the served contracts.
    serve = Serve(binary, os.path.join(work, "serve"))
    token, claims = serve.login("guest")
    auth_token, auth_claims = serve.login("authenticated")
    traffic = {}
    retried = {}
    sent = {}
    try:
        for contract in all_contracts:
            if not contract.served:
                continue
            current = declared_version(contract.job)
            bodies = [(c["body"], current) for c in cases[contract.name]]
            bodies += [(b, current) for b in synth_events(binary, contract.name, 40)]
            if current is not None:
                bodies += versioned_traffic(binary, contract.job, corpus_dir)
            if contract.job.UPSERT_KEY:
                bodies += [(b, current) for b in key_versions(contract.job, bodies[-1][0])]
            if contract.job.DEDUP_FIELD:
                again = retries(contract.job, bodies)
                retried[contract.name] = {contract.job.event_id(b) for b, _ in again} - {None}
                bodies += again
            records = []
            statuses = collections.Counter()
            for body, version in bodies:
                if body in VERSIONS:
                    time.sleep(0.5)  # each version in its own commit of serve
                use_token, use_claims = token, claims
                time_ms = int(time.time() * 1000)
                status = serve.post(contract.route, body, use_token, version)
                if status == 403:
                    use_token, use_claims = auth_token, auth_claims
                    status = serve.post(contract.route, body, use_token, version)
                statuses[status] += 1
                if status in (200, 400):
                    client_headers = {"Authorization": use_token}
                    if version is not None:
                        client_headers["X-Contract-Version"] = version
                    headers = front_door(contract, client_headers, use_claims)
                    put = render(contract, body, headers, str(uuid.uuid4()), time_ms)
                    records.append((base64.b64decode(put["Data"]), put["PartitionKey"], time_ms))
            check("%s: serve answered every event (%s)" % (contract.name, dict(statuses)), set(statuses) <= {200, 400})
            sent[contract.name] = [body for body, _ in bodies]
            traffic[contract.name] = records
        served_counts = serve.event_counts()
    finally:
        serve.stop()

    from pyiceberg.catalog.sql import SqlCatalog

    serve_catalog = SqlCatalog(
        "contractc",
        uri="sqlite:///" + os.path.join(work, "serve", "catalog.db"),
        warehouse="file://" + os.path.join(work, "serve", "warehouse"),
    )

    # The job hashes personal data under serve's key (made at its first start): the same value
    # for the same input on both engines (#23).
    keys_path = os.path.join(work, "serve", "pii-keys.json")
    for contract in all_contracts:
        if contract.job.needs_pii_keys():
            with open(keys_path, encoding="utf-8") as f:
                contract.job.set_pii_keys(f.read())

    settings = dict(all_contracts[0].job.SESSION_SETTINGS)
    spark = spark_iceberg.session(warehouse, CATALOG, settings)
    try:
        for contract in all_contracts:
            if contract.served:
                published = []
                run_job(spark, warehouse, contract, traffic[contract.name], published)
                check_metrics(contract, published, served_counts)
                if contract is all_contracts[0]:
                    check_metrics_on_moto(contract, published, work)
                compare(contract, serve_catalog, warehouse, {claims["sub"], auth_claims["sub"]})
                if declared_version(contract.job):
                    check_upcast_rows(contract, serve_catalog, warehouse)
                    check_upcast_steps(contract.job)
                if contract.job.DEDUP_FIELD:
                    check_one_row_per_id(contract, serve_catalog, warehouse, retried[contract.name])
                if contract.job.needs_pii_keys():
                    check_personal_data(contract, serve_catalog, warehouse, sent[contract.name])
            else:
                records = []
                for i, case in enumerate(cases[contract.name]):
                    envelope = {
                        "contractc": 1,
                        "request_id": "case-%d" % i,
                        "received_at_ms": 1708603200000,
                        "claims": {c: base64.b64encode(b"player-1").decode() for c in contract.claims},
                        "body": base64.b64encode(case["body"].encode()).decode(),
                    }
                    records.append((json.dumps(envelope).encode(), "k", 1708603200000))
                run_job(spark, warehouse, contract, records)
                check_against_labels(contract, warehouse, cases[contract.name])
            if contract.job.UPSERT_KEY:
                valid = next(c["body"] for c in cases[contract.name] if not c["codes"])
                check_upsert(spark, warehouse, contract, valid)
    finally:
        spark.stop()

    passed = sum(1 for r in results if r)
    failed = len(results) - passed
    print("glue job: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
