"""The AWS door, run locally: the edge function against serve, and its records through the Glue job.

Usage: python tests/edge_door.py RUNTIME_BINARY EDGE_BINARY CORPUS_DIR [WORKSPACE]

WORKSPACE: as for tests/glue_job.py (the versioned copy, with its runtime and edge function): the
traffic then also holds every supported version's events, declared or not (#20).

The edge function (runtime/edge, the `contract-edge` binary, `bootstrap` in its zip) runs under
cargo-lambda's Lambda emulator (`cargo lambda watch --only-lambda-apis`, from PyPI) and puts
records on a Kinesis stream of a moto server, through the real AWS SDK. Each request reaches it
as API Gateway's HTTP API would pass it after the JWT authorizer: a payload-2.0 event whose
request context carries the verified token's claims (serve's own dev tokens, so both doors see
the same caller).

1. Edge cases and batches (invalid UTF-8, duplicate keys, huge numbers, deep nesting, wrong
   content types, oversized bodies and batches, too many events, NDJSON): every request goes to
   `serve` and to the function, and the answers must be the same: status, the verdict headers
   and the body byte for byte (request ids masked: each door names its own request). Every event
   the function judged is on the stream.
2. The labelled corpus, the reference client's events and `synth` events, to both doors, same
   answers; then the function's records, read back from the stream, are fed to the generated
   Glue job under local Spark + Iceberg, and its lake must hold what serve's lake holds (the
   comparison of tests/glue_job.py: schemas, partitions, rows value by value, quarantine codes,
   paths and messages).

Prints one line per check and `edge door: N passed, M failed`; exits 1 on any failure.
"""

import base64
import collections
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

import glue_job
import spark_iceberg
from glue_job import check

REGION = "us-east-1"
REQUEST_ID = re.compile(r'"request_id":"[^"]*"')
# The reference client's event types (its events: ../shared/reference, seed-wire-protocol.md).
REFERENCE_EVENT_TYPES = ["Login", "Logout", "New Game", "Resume Game", "End Game"]


def wait_for_port(port, process, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError("%s exited with %s" % (what, process.returncode))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("%s did not listen on %d within %d s" % (what, port, timeout))


class Moto:
    """moto's server, with the real SDK's view of it (boto3 for the test's own reads)."""

    def __init__(self, work):
        import boto3

        self.port = glue_job.free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log = open(os.path.join(work, "moto.log"), "w")
        moto_server = os.path.join(os.path.dirname(sys.executable), "moto_server")
        self.process = subprocess.Popen([moto_server, "-H", "127.0.0.1", "-p", str(self.port)], stdout=self.log, stderr=self.log)
        wait_for_port(self.port, self.process, "moto_server")
        self.kinesis = boto3.client(
            "kinesis", endpoint_url=self.url, region_name=REGION,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )

    def stream(self, name):
        self.kinesis.create_stream(StreamName=name, ShardCount=1)
        return name

    def records(self, stream):
        """Every record of the stream: (data, partition key, arrival ms)."""
        shard = self.kinesis.describe_stream(StreamName=stream)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = self.kinesis.get_shard_iterator(StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        out = []
        while iterator:
            page = self.kinesis.get_records(ShardIterator=iterator, Limit=1000)
            for r in page["Records"]:
                out.append((r["Data"], r["PartitionKey"], int(r["ApproximateArrivalTimestamp"].timestamp() * 1000)))
            if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
                break
            iterator = page.get("NextShardIterator")
        return out

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


class Emulator:
    """cargo-lambda's Lambda runtime and invoke APIs, with no function of its own: the test
    starts the prebuilt function against it."""

    def __init__(self, work, root):
        self.port = glue_job.free_port()
        cargo_lambda = os.path.join(os.path.dirname(sys.executable), "cargo-lambda")
        if not os.path.exists(cargo_lambda):
            raise RuntimeError("cargo-lambda is not in the venv (%s): pip install -r tests/requirements.txt" % cargo_lambda)
        self.log = open(os.path.join(work, "emulator.log"), "w")
        self.process = subprocess.Popen(
            [cargo_lambda, "lambda", "watch", "--only-lambda-apis", "--invoke-address", "127.0.0.1",
             "--invoke-port", str(self.port), "--manifest-path", os.path.join(root, "runtime", "edge", "Cargo.toml")],
            stdout=self.log, stderr=self.log,
        )
        wait_for_port(self.port, self.process, "cargo lambda watch")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


class Function:
    """The edge function of one contract, connected to the emulator and putting on `stream`."""

    def __init__(self, binary, emulator, moto, contract, stream, work):
        self.emulator = emulator
        env = dict(
            os.environ,
            AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:%d/.rt" % emulator.port,
            AWS_LAMBDA_FUNCTION_NAME="_",
            AWS_LAMBDA_FUNCTION_VERSION="1",
            AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256",
            CONTRACTC_CONTRACT=contract,
            CONTRACTC_STREAM=stream,
            AWS_ENDPOINT_URL=moto.url,
            AWS_REGION=REGION,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
        )
        env.pop("AWS_PROFILE", None)
        self.log = open(os.path.join(work, "edge-%s-%s.log" % (contract, stream)), "w")
        self.process = subprocess.Popen([binary], env=env, stdout=self.log, stderr=self.log)

    def invoke(self, event):
        request = urllib.request.Request(
            "http://127.0.0.1:%d/2015-03-31/functions/_/invocations" % self.emulator.port,
            data=json.dumps(event).encode(), method="POST", headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as r:
            return json.load(r)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


def http_event(route, body, claims, content_type, client_version=None):
    """The payload-2.0 event API Gateway's HTTP API sends after its JWT authorizer verified the
    token: claims as strings, the route it matched, the body as text or base64."""
    headers = {"authorization": "Bearer …"}
    if content_type is not None:
        headers["content-type"] = content_type
    if client_version is not None:
        headers["x-contract-version"] = client_version
    now = int(time.time() * 1000)
    return {
        "version": "2.0",
        "routeKey": "POST " + route,
        "rawPath": route,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "edge",
            "authorizer": {"jwt": {"claims": {k: v if isinstance(v, str) else json.dumps(v) for k, v in claims.items()}, "scopes": None}},
            "domainName": "edge.execute-api.%s.amazonaws.com" % REGION,
            "domainPrefix": "edge",
            "http": {"method": "POST", "path": route, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "edge_door.py"},
            "requestId": str(uuid.uuid4()),
            "routeKey": "POST " + route,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now / 1000)),
            "timeEpoch": now,
        },
        **event_body(body),
    }


def event_body(body):
    """The body as API Gateway passes it: text when it is UTF-8 (JSON is), else base64."""
    try:
        return {"body": body.decode("utf-8"), "isBase64Encoded": False}
    except UnicodeDecodeError:
        return {"body": base64.b64encode(body).decode(), "isBase64Encoded": True}


def post(base, route, body, token, content_type, client_version=None):
    """serve's answer: (status, headers with lower-case names, body). http.client, which sends
    only the headers given (urllib would add a form content type)."""
    headers = {"Authorization": token}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if client_version is not None:
        headers["X-Contract-Version"] = client_version
    host, port = base.split("//")[1].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request("POST", route, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode("utf-8", "replace")
    finally:
        connection.close()


ANSWER_HEADERS = ("content-type", "x-contract-verdict", "x-contract-violations", "retry-after")


def answer_of_serve(answer):
    status, headers, body = answer
    return status, {h: headers.get(h) for h in ANSWER_HEADERS}, REQUEST_ID.sub('"request_id":"…"', body)


def answer_of_edge(response):
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    body = response.get("body") or ""
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8", "replace")
    return response.get("statusCode"), {h: headers.get(h) for h in ANSWER_HEADERS}, REQUEST_ID.sub('"request_id":"…"', body)


class Doors:
    """serve and the edge function of one contract, asked the same thing."""

    def __init__(self, serve, function, tokens, single_route):
        self.serve = serve
        self.single_route = single_route
        self.function = function
        self.tokens = tokens  # [(token, claims)], the first serve accepts is used
        self.judged = 0  # events the function judged (each must be on the stream)

    def ask(self, route, body, content_type="application/json", client_version=None):
        for token, claims in self.tokens:
            served = post(self.serve.base, route, body, token, content_type, client_version)
            if served[0] != 403:
                break
        edge = self.function.invoke(http_event(route, body, claims, content_type, client_version))
        served, edged = answer_of_serve(served), answer_of_edge(edge)
        if route != self.single_route:
            if edged[0] == 200:
                self.judged += len(json.loads(edged[2])["results"])
        elif edged[0] in (200, 400):
            self.judged += 1
        return served, edged


def edge_cases(contract, valid):
    """(name, route kind, body, content type) of requests every door must answer alike."""
    cases = [
        ("a valid event", "single", valid.encode(), "application/json"),
        ("invalid UTF-8", "single", valid.encode()[:-1] + b', "x": "\xff\xfe"}', "application/json"),
        ("duplicate keys", "single", valid.encode()[:-1] + b", " + valid.encode()[1:], "application/json"),
        ("a huge number", "single", b'{"n": 1' + b"0" * 400 + b"}", "application/json"),
        ("a huge exponent", "single", valid.encode()[:-1] + b', "n": 1e999999}', "application/json"),
        ("deep nesting", "single", b"[" * 20000 + b"]" * 20000, "application/json"),
        ("deep objects", "single", b'{"a":' * 5000 + b"1" + b"}" * 5000, "application/json"),
        ("not JSON", "single", b"hello", "application/json"),
        ("an empty body", "single", b"", "application/json"),
        ("a JSON array at the single route", "single", b"[" + valid.encode() + b"]", "application/json"),
        ("no content type", "single", valid.encode(), None),
        ("text/plain", "single", valid.encode(), "text/plain"),
        ("a vendor +json type", "single", valid.encode(), "application/vnd.game+json; charset=utf-8"),
        ("a body over the limit", "single", b'{"x": "' + b"y" * 70000 * 16 + b'"}', "application/json"),
    ]
    if contract.batch_route:
        lines = "\n".join([valid, "{}", valid]).encode()
        cases += [
            ("a batch", "batch", ("[%s, {}, %s, 7]" % (valid, valid)).encode(), "application/json"),
            ("an NDJSON batch", "batch", lines, "application/x-ndjson"),
            ("an empty batch", "batch", b"[]", "application/json"),
            ("a batch that is not an array", "batch", valid.encode(), "application/json"),
            ("a batch with invalid UTF-8", "batch", b'[{"x": "\xff"}, ' + valid.encode() + b"]", "application/json"),
            ("a batch with an oversized event", "batch", ("[%s, {\"x\": \"%s\"}]" % (valid, "y" * 1100000)).encode(), "application/json"),
            ("a batch of too many events", "batch", ("[" + ",".join(["{}"] * (contract.max_batch_events + 1)) + "]").encode(), "application/json"),
            ("a batch as text/plain", "batch", b"[]", "text/plain"),
        ]
    return cases


def reference_events(count):
    """Events as the reference's own test client sends them."""
    now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    return [
        json.dumps({
            "event_id": "%05d" % (i % 20 + 1),
            "event_type": REFERENCE_EVENT_TYPES[i % len(REFERENCE_EVENT_TYPES)],
            "updated_at": now,
            "event_data": "Quote \"%d\" with 'apostrophes' and *stars*" % i,
        })
        for i in range(count)
    ]


def check_stream_limit(contract, doors, valid):
    """A contract whose limit is more than a Kinesis record carries: an event over the AWS
    limit but within the contract's is refused at the AWS door with its own 413, judged by
    serve."""
    body = valid.encode()[:-1] + b', "pad": "' + b"y" * (contract.aws_limit - len(valid) + 100) + b'"}'
    served, edged = doors.ask(contract.route, body)
    check(
        "%s: an event over the AWS limit (%d bytes) but within the contract's (%d): serve judges it, the AWS door refuses it with 413 naming the limit"
        % (contract.name, contract.aws_limit, contract.body_limit),
        served[0] in (200, 400) and edged[0] == 413 and ("limit of %d bytes" % contract.aws_limit) in edged[2] and "on AWS" in edged[2],
        "\n     serve: %s\n     edge:  %s" % (shorten(served), shorten(edged)),
    )


def same_answer(contract, name, served, edged):
    return check(
        "%s: %s: the same answer at both doors (%s)" % (contract.name, name, served[0]),
        served == edged,
        "\n     serve: %s\n     edge:  %s" % (shorten(served), shorten(edged)),
    )


def shorten(answer):
    text = repr(answer)
    return text if len(text) < 600 else text[:600] + "…"


def main(argv):
    if len(argv) not in (4, 5):
        print(__doc__)
        return 2
    runtime, edge_binary, corpus_dir = os.path.abspath(argv[1]), os.path.abspath(argv[2]), argv[3]
    root = os.path.abspath(argv[4]) if len(argv) == 5 else glue_job.ROOT
    work = tempfile.mkdtemp(prefix="contractc-edge-")
    served_contracts = [c for c in glue_job.contracts(root) if c.served]
    for contract in served_contracts:
        manifest_limits(contract, root)
    moto = Moto(work)
    emulator = Emulator(work, root)
    try:
        check_edge_cases(runtime, edge_binary, emulator, moto, served_contracts, work)
        traffic = same_traffic(runtime, edge_binary, emulator, moto, served_contracts, corpus_dir, work)
    finally:
        emulator.stop()
        moto.stop()
    same_lake(served_contracts, traffic, work)
    passed = sum(1 for r in glue_job.results if r)
    failed = len(glue_job.results) - passed
    print("edge door: %d passed, %d failed" % (passed, failed))
    if not failed:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print("logs: %s" % work)
    return 1 if failed else 0


def manifest_limits(contract, root):
    """The batch route and event limit, from the contract's OpenAPI document; the contract's
    body limit (serve's) and the AWS path's (the Glue job's: within a Kinesis record)."""
    with open(os.path.join(contract.dir, "apigateway", "openapi.json")) as f:
        openapi = json.load(f)
    paths = list(openapi["paths"])
    contract.batch_route = paths[1] if len(paths) > 1 else None
    with open(os.path.join(contract.dir, "apigateway", "batch-request-model.json")) as f:
        contract.max_batch_events = json.load(f).get("maxItems", 500)
    with open(os.path.join(root, "contracts", contract.name + ".yaml"), encoding="utf-8") as f:
        declared = re.search(r"^\s+max_body_bytes:\s*(\d+)", f.read(), re.MULTILINE)
    contract.body_limit = int(declared.group(1)) if declared else 1 << 20
    contract.aws_limit = contract.job.MAX_BODY_BYTES


def on_aws(contract, answer):
    """`serve`'s answer as the AWS door gives it: the same, with the AWS path's event limit where
    `serve` names the contract's (they differ when a Kinesis record carries less)."""
    status, headers, body = answer
    return status, headers, body.replace("the limit is %d " % contract.body_limit, "the limit is %d " % contract.aws_limit)


def tokens(serve):
    return [serve.login("guest"), serve.login("authenticated")]


def check_edge_cases(runtime, edge_binary, emulator, moto, contracts, work):
    serve = glue_job.Serve(runtime, os.path.join(work, "serve-cases"))
    try:
        for contract in contracts:
            stream = moto.stream("cases-" + contract.name)
            function = Function(edge_binary, emulator, moto, contract.name, stream, work)
            try:
                doors = Doors(serve, function, tokens(serve), contract.route)
                valid = glue_job.synth_events(runtime, contract.name, 1)[0]
                # Any version will do without a release history; with one, the current version.
                declared = glue_job.declared_version(contract.job) or "1.0.0"
                for name, kind, body, content_type in edge_cases(contract, valid):
                    route = contract.batch_route if kind == "batch" else contract.route
                    served, edged = doors.ask(route, body, content_type, client_version=declared)
                    same_answer(contract, name, on_aws(contract, served), edged)
                if contract.aws_limit < contract.body_limit:
                    check_stream_limit(contract, doors, valid)
                records = moto.records(stream)
                check(
                    "%s: every event the function judged is on the stream (%d)" % (contract.name, doors.judged),
                    len(records) == doors.judged and doors.judged > 0,
                    "%d records" % len(records),
                )
            finally:
                function.stop()
    finally:
        serve.stop()


def same_traffic(runtime, edge_binary, emulator, moto, contracts, corpus_dir, work):
    """The corpus, reference and synth events to both doors; the function's stream records."""
    serve = glue_job.Serve(runtime, os.path.join(work, "serve"))
    traffic = {}
    try:
        login = tokens(serve)
        for contract in contracts:
            current = glue_job.declared_version(contract.job)
            with open(os.path.join(corpus_dir, contract.name + ".ndjson"), encoding="utf-8") as f:
                bodies = [(json.loads(line)["body"], current) for line in f if line.strip()]
            bodies += [(b, current) for b in glue_job.synth_events(runtime, contract.name, 40)]
            if contract.name == "game_events":
                # The reference's client sends no version: the default's (the current one
                # without a release history).
                bodies += [(b, None) for b in reference_events(10)]
            if current is not None:
                bodies += glue_job.versioned_traffic(runtime, contract.job, corpus_dir)
            if contract.job.UPSERT_KEY:
                bodies += [(b, current) for b in glue_job.key_versions(contract.job, bodies[-1][0])]
            stream = moto.stream("traffic-" + contract.name)
            function = Function(edge_binary, emulator, moto, contract.name, stream, work)
            statuses = collections.Counter()
            differing = []
            try:
                doors = Doors(serve, function, login, contract.route)
                for body, version in bodies:
                    if body in glue_job.VERSIONS:
                        time.sleep(0.5)  # each version in its own commit of serve
                    served, edged = doors.ask(contract.route, body.encode(), client_version=version)
                    statuses[served[0]] += 1
                    if served != edged:
                        differing.append((body, served, edged))
                # A batch with an event too large to keep: its start and size reach the job.
                # (With a contract limit over the AWS one its message names another limit,
                # checked above, so the quarantine rows would differ by that number.)
                if contract.aws_limit == contract.body_limit:
                    oversized = "[%s, {\"x\": \"%s\"}]" % (bodies[-1][0], "é" * 600000)
                    served, edged = doors.ask(contract.batch_route, oversized.encode(), client_version=bodies[-1][1])
                    if served != edged:
                        differing.append((oversized, served, edged))
            finally:
                function.stop()
            check(
                "%s: %d events, the same answers at both doors (%s)" % (contract.name, len(bodies), dict(statuses)),
                not differing and set(statuses) <= {200, 400},
                "; ".join("%s\n     serve: %s\n     edge:  %s" % (b[:200], shorten(s), shorten(e)) for b, s, e in differing[:3]),
            )
            traffic[contract.name] = moto.records(stream)
            check(
                "%s: each event once on the stream (%d)" % (contract.name, doors.judged),
                len(traffic[contract.name]) == doors.judged
                and doors.judged == len(bodies) + (2 if contract.aws_limit == contract.body_limit else 0),
                "%d records" % len(traffic[contract.name]),
            )
        subjects = {claims["sub"] for _, claims in login}
    finally:
        serve.stop()
    return traffic, subjects


def same_lake(contracts, traffic_and_subjects, work):
    from pyiceberg.catalog.sql import SqlCatalog

    traffic, subjects = traffic_and_subjects
    serve_catalog = SqlCatalog(
        "contractc",
        uri="sqlite:///" + os.path.join(work, "serve", "catalog.db"),
        warehouse="file://" + os.path.join(work, "serve", "warehouse"),
    )
    warehouse = os.path.join(work, "warehouse")
    spark = spark_iceberg.session(warehouse, glue_job.CATALOG, dict(contracts[0].job.SESSION_SETTINGS))
    try:
        for contract in contracts:
            glue_job.run_job(spark, warehouse, contract, traffic[contract.name])
            glue_job.compare(contract, serve_catalog, warehouse, subjects)
    finally:
        spark.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
