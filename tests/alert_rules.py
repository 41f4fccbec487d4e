"""The generated Prometheus alerting rules under promtool (#24).

Usage: python tests/alert_rules.py CONTRACTS_DIR GENERATED_DIR

For every contract in CONTRACTS_DIR with `quality.alerts`, `promtool check rules` accepts
GENERATED_DIR/<contract>/prometheus/alerts.yml, and `promtool test rules` runs two scenarios per
alert on series shaped like serve's /metrics: one that must fire the alert (and only that
alert's expected labels) and one that must not. The scenarios are derived here from the
contract's YAML (the alert's condition, threshold and window), not from the rules under test.

Prints one line per check and `alert rules: N passed, M failed`; exits 1 on any failure.
"""

import glob
import math
import os
import subprocess
import sys
import tempfile

import yaml

results = []


def check(name, ok, detail=""):
    results.append(ok)
    print("%s %s%s" % ("ok  " if ok else "FAIL", name, (": " + detail) if detail and not ok else ""), flush=True)
    return ok


def minutes(text):
    """10m / 1h / 1h30m → minutes (the contract's `for:`)."""
    total, number = 0, ""
    for ch in text.strip():
        if ch.isdigit():
            number += ch
        else:
            total += int(number) * {"m": 1, "h": 60, "d": 1440}[ch]
            number = ""
    return total


def share(over):
    text = str(over).strip()
    return float(text[:-1]) / 100 if text.endswith("%") else float(text)


def counter(name, contract, per_minute, length, **labels):
    labels = dict(labels, contract=contract)
    rendered = ",".join('%s="%s"' % (k, v) for k, v in sorted(labels.items()))
    return {"series": "%s{%s}" % (name, rendered), "values": "0+%dx%d" % (per_minute, length)}


def events(contract, accept, quarantine, reject, length):
    return [
        counter("contractc_events_total", contract, rate, length, verdict=verdict)
        for verdict, rate in (("accept", accept), ("quarantine", quarantine), ("reject", reject))
    ] + [counter("contractc_commit_failures_total", contract, 0, length)]


def scenarios(contract, alert):
    """(firing series, quiet series): per-minute rates that breach and that do not."""
    window = minutes(alert["for"])
    length = window * 3
    when = alert["when"]
    if when == "bad_share":
        over = share(alert["over"])
        bad_high = min(2 * over, (1 + over) / 2)
        accept = 1000
        high = math.ceil(accept * bad_high / (1 - bad_high))
        low = math.floor(accept * (over / 2) / (1 - over / 2))
        return events(contract, accept, high // 2, high - high // 2, length), events(contract, accept, low, 0, length)
    if when == "no_events":
        return events(contract, 0, 5, 5, length), events(contract, 1, 5, 5, length)
    if when == "quarantine_growth":
        over = int(alert["over"])
        high = math.ceil(2 * (over + 1) / window)
        low = over // (2 * window)
        return events(contract, 100, high, 0, length), events(contract, 100, low, 0, length)
    if when == "commit_failures":
        over = int(alert.get("over", 0))
        firing = events(contract, 100, 0, 0, length)
        firing[-1] = counter("contractc_commit_failures_total", contract, over + 1, length)
        return firing, events(contract, 100, 0, 0, length)
    raise ValueError("unknown alert kind %r" % when)


def promtool(*args):
    run = subprocess.run(["promtool", *args], capture_output=True, text=True)
    return run.returncode, run.stdout + run.stderr


def test_contract(path, generated):
    doc = yaml.safe_load(open(path))
    contract, alerts = doc["contract"], (doc.get("quality") or {}).get("alerts") or []
    if not alerts:
        return
    rules_file = os.path.abspath(os.path.join(generated, contract, "prometheus", "alerts.yml"))
    code, out = promtool("check", "rules", rules_file)
    check("%s: promtool check rules" % contract, code == 0, out)
    rules = {r["alert"]: r for g in yaml.safe_load(open(rules_file))["groups"] for r in g["rules"]}
    check("%s: one rule per alert" % contract, len(rules) == len(alerts), str(sorted(rules)))
    for alert in alerts:
        name = "%s_%s" % (contract, alert["name"])
        rule = rules.get(name)
        if not check("%s: a rule named %s" % (contract, name), rule is not None):
            continue
        firing, quiet = scenarios(contract, alert)
        at = "%dm" % (minutes(alert["for"]) * 2)
        expected = [{"exp_labels": rule["labels"], "exp_annotations": rule["annotations"]}]
        for label, series, exp in (("fires", firing, expected), ("stays quiet", quiet, [])):
            spec = {
                "rule_files": [rules_file],
                "evaluation_interval": "1m",
                "tests": [{
                    "interval": "1m",
                    "input_series": series,
                    "alert_rule_test": [{"eval_time": at, "alertname": name, "exp_alerts": exp}],
                }],
            }
            with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
                yaml.safe_dump(spec, f)
            code, out = promtool("test", "rules", f.name)
            os.unlink(f.name)
            check("%s: %s %s at %s (promtool test rules)" % (contract, alert["name"], label, at), code == 0, out)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    contracts_dir, generated = sys.argv[1:]
    paths = sorted(glob.glob(os.path.join(contracts_dir, "*.yaml")))
    if not check("contracts found in %s" % contracts_dir, bool(paths)):
        sys.exit(1)
    for path in paths:
        test_contract(path, generated)
    failed = results.count(False)
    print("alert rules: %d passed, %d failed" % (len(results) - failed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
