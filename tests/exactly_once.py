"""Exactly once from the device to the table, under faults (#21).

Usage: python tests/exactly_once.py RUNTIME_BINARY [NAME=COMMAND ...]

Each NAME=COMMAND is a producer: a generated client's test program, run as
`COMMAND BASE_URL STATE_DIR COUNT`, that makes COUNT game events (each with the UUIDv7 the
client gives it), queues them persistently and flushes until its queue is empty, logging the id
of every event it made to STATE_DIR/produced.ndjson. `synth` is always a producer too (single
events and batches, with --retries).

Everything goes through a fault-injecting proxy (tests/fault_proxy.py) that loses answers after
serve stored the events, resets uploads midway and holds answers past the clients' timeout. Midway,
serve is killed with -9 and started again on the same data directory, and every client program
is killed with -9 and started again on its queue. Then serve's lake is read with pyiceberg: every
event a producer made is there, exactly once (one row per event id, across the events and
quarantine tables).

The Glue job's half (the same records fed twice, across micro-batches and within one) is checked
by tests/glue_job.py, which compares its lake with serve's.

Prints what was produced, sent, answered as duplicates and stored per engine, one line per
check, and `exactly once: N passed, M failed`; exits 1 on any failure.
"""

import collections
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from fault_proxy import FaultProxy

CONTRACT = "game_events"
ID_FIELD = "event_uuid"
FAULTS = {"drop_answer": 0.12, "reset_mid_body": 0.08, "delay": 0.06}
# Longer than the producers' timeouts (1.5 s): the client gives up and sends the events again.
DELAY_SECONDS = 3.0
PER_PRODUCER = 240
SYNTH_SINGLE = 300
SYNTH_BATCHED = 400

results = []


def check(name, ok, detail=""):
    results.append(ok)
    print("%s %s%s" % ("ok  " if ok else "FAIL", name, (": " + detail) if detail and not ok else ""), flush=True)
    return ok


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Serve:
    """`contract-runtime serve` on a data directory that outlives it."""

    def __init__(self, binary, data_dir, log_path):
        self.port = free_port()
        self.log = open(log_path, "a")
        self.process = subprocess.Popen(
            [binary, "serve", "--listen", "127.0.0.1:%d" % self.port, "--data-dir", data_dir,
             "--commit-interval-ms", "300", "--dev-mint-scopes", "--guests-per-minute", "0"],
            stdout=subprocess.DEVNULL, stderr=self.log, cwd=tempfile.gettempdir(),
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/healthz" % self.port, timeout=2).read()
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        raise RuntimeError("serve did not start; see %s" % log_path)

    def duplicates(self):
        """contractc_duplicates_total of the contract, from /metrics."""
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.port, timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith('contractc_duplicates_total{contract="%s"}' % CONTRACT):
                    return int(float(line.split()[-1]))
        return 0

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=120)
        self.log.close()
        return code


class Producer:
    """A client program, killed with -9 once and started again on its state."""

    def __init__(self, name, command, base_url, state_dir):
        self.name, self.command, self.base_url, self.state_dir = name, command, base_url, state_dir
        self.log = open(state_dir + ".log", "a")
        self.process = None
        self.restarts = 0

    def start(self):
        self.process = subprocess.Popen(
            shlex.split(self.command) + [self.base_url, self.state_dir, str(PER_PRODUCER)],
            stdout=self.log, stderr=self.log,
        )

    def kill_and_restart(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.restarts += 1
            self.start()

    def wait(self, timeout):
        return self.process.wait(timeout=timeout)

    def produced(self):
        path = os.path.join(self.state_dir, "produced.ndjson")
        with open(path, encoding="utf-8") as f:
            return [json.loads(line)[ID_FIELD] for line in f if line.strip()]


def synth(binary, proxy_url, out_path, count, batch, log):
    """synth through the proxy, retrying with the same events (and ids)."""
    command = [
        binary, "synth", "--contract", CONTRACT, "--login-endpoint", proxy_url + "/prod/",
        "--backend-endpoint", proxy_url + "/prod/put-record", "--max-count", str(count),
        "--players", "2", "--concurrency", "3", "--retries", "40", "--timeout-ms", "1500",
        "--out", out_path,
    ]
    if batch:
        command += ["--batch", str(batch)]
    return subprocess.Popen(command, stdout=log, stderr=log, cwd=tempfile.gettempdir())


def synth_ids(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(json.loads(line)["body"])[ID_FIELD] for line in f if line.strip()]


def lake_ids(data_dir):
    """Rows per event id in serve's lake: the events table and the quarantined rows."""
    from pyiceberg.catalog.sql import SqlCatalog

    catalog = SqlCatalog(
        "contractc",
        uri="sqlite:///" + os.path.join(data_dir, "catalog.db"),
        warehouse="file://" + os.path.join(data_dir, "warehouse"),
    )
    rows = collections.Counter()
    events = catalog.load_table("analytics_events_db.events_table").scan().to_arrow().to_pylist()
    for row in events:
        if row[ID_FIELD] is not None:
            rows[str(row[ID_FIELD]).lower()] += 1
    quarantine = catalog.load_table("analytics_events_db.events_table_quarantine").scan().to_arrow().to_pylist()
    for row in quarantine:
        if row["verdict"] == "quarantine":
            try:
                body = json.loads(row["raw_payload"])
            except ValueError:
                continue
            if isinstance(body, dict) and isinstance(body.get(ID_FIELD), str):
                rows[body[ID_FIELD].lower()] += 1
    return rows, len(events)


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    binary = os.path.abspath(argv[1])
    producers_given = [a.split("=", 1) for a in argv[2:]]
    work = tempfile.mkdtemp(prefix="contractc-exactly-once-")
    data_dir = os.path.join(work, "data")
    serve_log = os.path.join(work, "serve.log")
    serve = Serve(binary, data_dir, serve_log)
    proxy = FaultProxy(("127.0.0.1", serve.port), FAULTS, ("/prod/put-record",), seed=21, delay_seconds=DELAY_SECONDS)
    proxy.start()
    proxy_url = "http://127.0.0.1:%d" % proxy.port
    synth_log = open(os.path.join(work, "synth.log"), "a")
    duplicates = 0
    try:
        senders = [
            synth(binary, proxy_url, os.path.join(work, "synth-single.ndjson"), SYNTH_SINGLE, None, synth_log),
            synth(binary, proxy_url, os.path.join(work, "synth-batched.ndjson"), SYNTH_BATCHED, 20, synth_log),
        ]
        producers = [
            Producer(name, command, proxy_url + "/prod/", os.path.join(work, name))
            for name, command in producers_given
        ]
        for p in producers:
            os.makedirs(p.state_dir, exist_ok=True)
            p.start()
        time.sleep(4)
        for p in producers:
            p.kill_and_restart()
        # serve dies with events in flight, acknowledged or not, and comes back on its data.
        duplicates += serve.duplicates()
        serve.kill()
        serve = Serve(binary, data_dir, serve_log)
        proxy.set_upstream(("127.0.0.1", serve.port))
        time.sleep(3)
        for p in producers:
            p.kill_and_restart()
        for p in producers:
            code = p.wait(timeout=600)
            check("%s: the producer finished with an empty queue (killed and restarted %d times)" % (p.name, p.restarts), code == 0, "exit %d; see %s.log" % (code, p.state_dir))
        for s in senders:
            code = s.wait(timeout=600)
            check("synth: every event answered after its retries (exit %d)" % code, code == 0, "see %s" % os.path.join(work, "synth.log"))
        duplicates += serve.duplicates()
    finally:
        stop_code = serve.stop()
        proxy.stop()
        synth_log.close()
    check("serve stopped cleanly", stop_code == 0, "exit %d; see %s" % (stop_code, serve_log))

    produced = {}
    for name, path in (("synth single", "synth-single.ndjson"), ("synth batched", "synth-batched.ndjson")):
        produced[name] = synth_ids(os.path.join(work, path))
    for p in producers:
        produced[p.name] = p.produced()
    rows, event_rows = lake_ids(data_dir)
    stats = proxy.stats()
    print("# faults: %s" % json.dumps(stats, sort_keys=True))
    print("# sent (requests through the proxy): %d; duplicates answered: %d" % (stats.get("requests", 0), duplicates))
    print("# serve's lake: %d event rows, %d ids" % (event_rows, len(rows)))
    for name, ids in produced.items():
        per_id = collections.Counter(rows[i.lower()] for i in ids)
        print("# %s: produced %d; rows per id: %s" % (name, len(ids), dict(sorted(per_id.items()))))
        check("%s: every event produced is in the lake exactly once (%d)" % (name, len(ids)), len(ids) > 0 and set(per_id) == {1}, "rows per id %s" % dict(per_id))
    doubled = [i for i, n in rows.items() if n > 1]
    check("no event id is stored twice (%d ids)" % len(rows), not doubled, str(doubled[:5]))
    check("the faults happened: answers lost, uploads reset, answers late", all(stats.get(m, 0) > 0 for m in FAULTS), str(stats))
    check("the retries reached serve as duplicates", duplicates > 0, str(duplicates))

    passed = sum(1 for r in results if r)
    failed = len(results) - passed
    print("exactly once: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
