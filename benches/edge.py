"""The edge function's cost per invocation and its cold start, beside serve's, in one run.

Usage: python benches/edge.py EDGE_BINARY RUNTIME_BINARY [--rounds N]

EDGE_BINARY is the function as Lambda runs it: the `bootstrap` of the zip `cargo lambda build
--release --x86-64 --output-format zip -p contract-edge` writes (or the release
`contract-edge`); RUNTIME_BINARY the release `contract-runtime`, the baseline. The function runs
under cargo-lambda's emulator and puts on a moto server's Kinesis stream (tests/edge_door.py's
harness); serve runs on its own data directory. Both get the same requests: game_events events
from `synth`, one at a time and in batches of 500.

Prints, for the function and for serve, the median and 90th percentile milliseconds per request
(as the client sees it: the emulator's and moto's hops are in the function's figures, the
write-ahead log's fsync in serve's), the peak resident memory (VmHWM), and the cold start (the
process started until its first request is answered; serve's includes opening its lake), with
the ratios function/serve. A benchmark, not a test: run it by hand on an idle machine.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

import edge_door  # noqa: E402
import glue_job  # noqa: E402

CONTRACT = "game_events"
ROUTE = "/prod/put-record"
BATCH_ROUTE = "/prod/put-records"


def peak_memory_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def timed(call):
    start = time.perf_counter()
    result = call()
    return (time.perf_counter() - start) * 1000, result


def figures(samples):
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.9) - 1]


def own_figures(log):
    """The function's own timing lines, by events per request: (judge p50/p90, store p50/p90) ms."""
    import re

    line = re.compile(r"events=(\d+) judge_us=(\d+) store_us=(\d+)")
    by_size = {}
    with open(log, encoding="utf-8", errors="replace") as f:
        for match in line.finditer(f.read()):
            events, judge, store = (int(g) for g in match.groups())
            by_size.setdefault(events, ([], []))
            by_size[events][0].append(judge / 1000)
            by_size[events][1].append(store / 1000)
    return {events: (figures(judge), figures(store)) for events, (judge, store) in by_size.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("edge")
    parser.add_argument("runtime")
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    edge, runtime = os.path.abspath(args.edge), os.path.abspath(args.runtime)
    work = tempfile.mkdtemp(prefix="contractc-edge-bench-")
    events = glue_job.synth_events(runtime, CONTRACT, args.rounds)
    batch = "[" + ",".join((events * 500)[:500]) + "]"
    batches = max(5, args.rounds // 20)

    moto = edge_door.Moto(work)
    emulator = edge_door.Emulator(work)
    results = {}
    try:
        stream = moto.stream("bench")
        cold = []
        for _ in range(5):
            start = time.perf_counter()
            function = edge_door.Function(edge, emulator, moto, CONTRACT, stream, work)
            function.invoke(edge_door.http_event(ROUTE, events[0].encode(), {"sub": "bench"}, "application/json"))
            cold.append((time.perf_counter() - start) * 1000)
            function.stop()
        os.environ["RUST_LOG"] = "contract_edge=info"
        function = edge_door.Function(edge, emulator, moto, CONTRACT, stream, work)
        try:
            single = [timed(lambda e=e: function.invoke(edge_door.http_event(ROUTE, e.encode(), {"sub": "bench"}, "application/json")))[0] for e in events]
            batched = []
            for _ in range(batches):
                ms, answer = timed(lambda: function.invoke(edge_door.http_event(BATCH_ROUTE, batch.encode(), {"sub": "bench"}, "application/json")))
                assert answer["statusCode"] == 200, answer
                batched.append(ms)
            results["function"] = (figures(single), figures(batched), peak_memory_kib(function.process.pid), statistics.median(cold))
        finally:
            function.stop()
        inside = own_figures(function.log.name)
    finally:
        emulator.stop()
        moto.stop()

    cold = []
    for i in range(5):
        start = time.perf_counter()
        serve = glue_job.Serve(runtime, os.path.join(work, "serve-cold-%d" % i))
        token, _ = serve.login("guest")
        edge_door.post(serve.base, ROUTE, events[0].encode(), token, "application/json")
        cold.append((time.perf_counter() - start) * 1000)
        serve.stop()
    serve = glue_job.Serve(runtime, os.path.join(work, "serve"))
    try:
        token, _ = serve.login("guest")
        single = [timed(lambda e=e: edge_door.post(serve.base, ROUTE, e.encode(), token, "application/json"))[0] for e in events]
        batched = []
        for _ in range(batches):
            ms, answer = timed(lambda: edge_door.post(serve.base, BATCH_ROUTE, batch.encode(), token, "application/json"))
            assert answer[0] == 200, answer
            batched.append(ms)
        results["serve"] = (figures(single), figures(batched), peak_memory_kib(serve.process.pid), statistics.median(cold))
    finally:
        serve.stop()

    print("%-9s %22s %22s %12s %12s" % ("", "single event ms (p50/p90)", "500-event batch ms", "peak MiB", "cold start ms"))
    for name in ("function", "serve"):
        (s50, s90), (b50, b90), kib, cold_ms = results[name]
        print("%-9s %14.1f / %-7.1f %12.1f / %-8.1f %10.1f %12.0f" % (name, s50, s90, b50, b90, kib / 1024, cold_ms))
    f, s = results["function"], results["serve"]
    print(
        "function/serve: single %.2fx, batch %.2fx, memory %.2fx, cold start %.2fx"
        % (f[0][0] / s[0][0], f[1][0] / s[1][0], f[2] / max(1, s[2]), f[3] / s[3])
    )
    for events, (judge, store) in sorted(inside.items()):
        print(
            "function, inside (its own log), %d event(s): judging p50 %.2f ms / p90 %.2f ms, "
            "PutRecords to moto p50 %.1f ms" % (events, judge[0], judge[1], store[0])
        )
    print(json.dumps({"rounds": args.rounds, "batches": batches, "cold_starts": 5}))


if __name__ == "__main__":
    main()
