#!/usr/bin/env python3
"""The quality console (`serve` at /console/) in a real browser: headless Chromium driven by
selenium. Starts `serve`, sends a known mix with `synth --invalid-ratio`, and checks what a
person would see: the counts synth reported, the top violation, its events (pii masked), drawn
plots, live updates without a reload, the tables and contracts views, no browser console
errors, and the same history after a restart. Also the access rule: the token always (kept in
DATA_DIR/console-token unless given), moved out of the URL into a cookie; --console-open only for
requests straight from this machine, never relayed ones.

Usage: console_browser.py CONTRACT_RUNTIME_BINARY [--docs-screenshot PATH]
Needs Debian's chromium and chromium-driver (tests/run.sh installs them): fails, never skips,
without them. Prints `console browser: N passed, M failed` last; screenshots go to the temp
dir it prints.
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CONTRACT = "game_events"
EVENTS_TABLE = "analytics_events_db.events_table"
MASK = "••• (pii)"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else ": " + str(detail)), flush=True)
    return ok


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Serve:
    """A `serve` process; its log goes next to the data directory."""

    def __init__(self, binary, data_dir, host="127.0.0.1", extra=()):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(data_dir + ".log", "ab")
        self.process = subprocess.Popen(
            [binary, "serve", "--listen", f"{host}:{self.port}", "--data-dir", data_dir,
             "--commit-interval-ms", "300", "--guests-per-minute", "0", *extra],
            stdout=subprocess.DEVNULL, stderr=self.log, cwd=os.path.dirname(data_dir))
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"serve did not start; see {data_dir}.log")

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)
        self.log.close()


def synth(binary, serve, count, invalid_ratio, seed, out=None):
    """Runs synth against `serve`; returns its summary as numbers."""
    args = [binary, "synth", "--contract", CONTRACT,
            "--login-endpoint", serve.base + "/prod/",
            "--backend-endpoint", serve.base + "/prod/put-record",
            "--max-count", str(count), "--invalid-ratio", str(invalid_ratio),
            "--seed", str(seed), "--reuse-token", "--concurrency", "4"]
    if out:
        args += ["--out", out]
    done = subprocess.run(args, capture_output=True, text=True, cwd=tempfile.gettempdir())
    text = done.stderr + done.stdout
    match = re.search(r"sent (\d+)\s+accepted (\d+)\s+quarantined (\d+)\s+rejected (\d+)\s+failed (\d+)", text)
    if not match:
        raise SystemExit("synth printed no summary:\n" + text)
    sent, accepted, quarantined, rejected, failed = map(int, match.groups())
    codes = {}
    by_code = re.search(r"violations by code: (.*)", text)
    if by_code:
        for pair in by_code.group(1).split():
            code, n = pair.split("=")
            codes[code] = int(n)
    print("synth: " + text.strip().splitlines()[0] + "; codes " + json.dumps(codes), flush=True)
    return {"accepted": accepted, "quarantined": quarantined, "rejected": rejected,
            "failed": failed, "codes": codes}


def send_from_client(serve, body, version):
    """POSTs one event as a generated client would (guest token, X-Contract-Version)."""
    with urllib.request.urlopen(serve.base + "/prod/login-as-guest", timeout=10) as r:
        token = json.load(r)["auth_token"]
    request = urllib.request.Request(serve.base + "/prod/put-record", data=body.encode(), method="POST",
                                     headers={"Authorization": token, "Content-Type": "application/json",
                                              "X-Contract-Version": version})
    try:
        urllib.request.urlopen(request, timeout=10).close()
    except urllib.error.HTTPError as error:
        error.close()  # a 400 is what this event earns


def browser():
    for path, package in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")]:
        if not os.path.exists(path):
            print(f"FAIL {path} is missing: apt-get install -y {package} (tests/run.sh installs it)")
            print("console browser: 0 passed, 1 failed")
            sys.exit(1)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--force-device-scale-factor=1"]:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def wait_for(predicate, timeout=20, step=0.25):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as error:  # the page is still drawing: try again
            last = error
        time.sleep(step)
    return last if last else False


def text_of(driver, selector):
    from selenium.webdriver.common.by import By
    found = driver.find_elements(By.CSS_SELECTOR, selector)
    return found[0].text if found else None


def attribute_of(driver, selector, name):
    from selenium.webdriver.common.by import By
    found = driver.find_elements(By.CSS_SELECTOR, selector)
    return found[0].get_attribute(name) if found else None


def stat(driver, name):
    return text_of(driver, f'[data-contract="{CONTRACT}"][data-stat="{name}"]')


def counts_shown(driver):
    return {n: stat(driver, n) for n in ("accepted", "quarantined", "rejected")}


def expect_counts(driver, expected, what):
    want = {n: str(expected[n]) for n in ("accepted", "quarantined", "rejected")}
    got = wait_for(lambda: counts_shown(driver) == want and counts_shown(driver))
    check(f"{what}: overview shows synth's counts {want}", got == want, counts_shown(driver))


def canvas_drawn(driver, selector):
    """How many pixels of the first canvas under `selector` were painted."""
    return driver.execute_script(
        """const c = document.querySelector(arguments[0] + ' canvas');
           if (!c || !c.width || !c.height) return 0;
           const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
           let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
           return n;""", selector)


def shoot(driver, shots, name):
    path = os.path.join(shots, name + ".png")
    driver.save_screenshot(path)
    return path


def open_view(driver, base, view):
    from selenium.webdriver.common.by import By
    driver.find_element(By.CSS_SELECTOR, f'#tabs a[data-view="{view}"]').click()
    wait_for(lambda: driver.find_element(By.ID, "view-" + view).is_displayed())


def severe_logs(driver):
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def top_code(codes):
    best = max(codes.values())
    return {c for c, n in codes.items() if n == best}


def check_violations(driver, codes, out_file, what):
    from selenium.webdriver.common.by import By
    rows = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#violations-table tbody tr"))
    if not check(f"{what}: violations are listed", bool(rows), rows):
        return
    first = rows[0].get_attribute("data-code")
    check(f"{what}: the top violation is the code synth injected most {sorted(top_code(codes))}",
          first in top_code(codes), first)
    rows[0].click()
    events = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#events-list .event"))
    check(f"{what}: clicking it lists its latest events", bool(events), events)
    carrying = [e for e in events
                if e.find_elements(By.CSS_SELECTOR, f'li[data-violation-code="{first}"]')]
    check(f"{what}: every listed event carries code {first}",
          bool(events) and len(carrying) == len(events), f"{len(carrying)} of {len(events)}")
    # The pii field (event_data) of the events synth sent must not appear, masked instead.
    secrets = set()
    with open(out_file) as f:
        for line in f:
            try:
                body = json.loads(json.loads(line)["body"])
            except (ValueError, TypeError, KeyError):
                continue
            if isinstance(body, dict) and isinstance(body.get("event_data"), str) and len(body["event_data"]) > 8:
                secrets.add(body["event_data"])
    shown = driver.find_element(By.ID, "events-list").text
    leaked = [s for s in secrets if s in shown]
    check(f"{what}: no pii value (event_data) is shown", not leaked, leaked[:2])
    payloads = " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, "#events-list pre"))
    check(f"{what}: the pii field is shown masked", MASK in payloads, payloads[:300])
    return first


def access_checks(binary, tmp):
    """The token always; --console-open only for requests straight from this machine."""
    def status(url, token=None, headers=None):
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(url, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    data = os.path.join(tmp, "access")
    server = Serve(binary, data)
    code, text = status(server.base + "/console/api/overview")
    check("loopback without the token: 401 naming where the token is",
          code == 401 and "console-token" in text, (code, text))
    code, _ = status(server.base + "/console/api/overview", console_token(data))
    check("loopback with the kept token: 200", code == 200, code)
    server.stop()
    server = Serve(binary, data, extra=["--console-open"])
    code, _ = status(server.base + "/console/api/overview")
    check("--console-open: 200 straight from this machine", code == 200, code)
    code, _ = status(server.base + "/console/api/overview", headers={"X-Forwarded-For": "203.0.113.7"})
    check("--console-open: 401 when relayed by a proxy", code == 401, code)
    server.stop()
    token_file = os.path.join(tmp, "token")
    with open(token_file, "w") as f:
        f.write("s3cret\n")
    server = Serve(binary, os.path.join(tmp, "public"), host="0.0.0.0",
                   extra=["--console-token-file", token_file])
    code, _ = status(server.base + "/console/api/overview")
    check("beyond loopback with --console-token-file: 401 without it", code == 401, code)
    code, _ = status(server.base + "/console/api/overview", "s3cret")
    check("beyond loopback with --console-token-file: 200 with it", code == 200, code)
    server.stop()


def console_token(data_dir):
    """The token serve made at its first start."""
    with open(os.path.join(data_dir, "console-token")) as f:
        return f.read().strip()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--docs-screenshot", help="also save the overview screenshot here")
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)
    tmp = tempfile.mkdtemp(prefix="contractc-console-")
    shots = os.path.join(tmp, "screenshots")
    os.makedirs(shots)
    print(f"console browser test: screenshots and logs in {shots}", flush=True)
    data = os.path.join(tmp, "data")
    out_file = os.path.join(tmp, "sent.ndjson")

    driver = browser()
    server = Serve(binary, data, extra=["--alert-interval-s", "1"])
    try:
        sent = synth(binary, server, 600, 0.4, 7, out=out_file)
        check("synth: every answer matched its label", sent["failed"] == 0, sent)
        driver.get(server.base + "/console/?token=" + console_token(data))
        check("the token left the URL (kept in a cookie)",
              "token=" not in driver.current_url and driver.current_url.endswith("/console/"),
              driver.current_url)
        expect_counts(driver, sent, "live")
        # synth declares the contract's version: the per-client-version row holds its counts.
        version = text_of(driver, f'[data-card="{CONTRACT}"] h3 .muted')
        want = [version, str(sent["accepted"]), str(sent["quarantined"]), str(sent["rejected"])]
        row = wait_for(lambda: (text_of(driver, f'[data-client-versions="{CONTRACT}"] [data-client-version="{version}"]') or "").split()[:4] == want)
        check(f"the overview counts events per client version ({version}: {want[1:]})", bool(row),
              text_of(driver, f'[data-client-versions="{CONTRACT}"]'))
        drawn = wait_for(lambda: canvas_drawn(driver, f'[data-card="{CONTRACT}"] .chart'))
        check("the overview plot has drawn", (drawn or 0) > 500, drawn)
        # 40% invalid is over broken_build's 5% (quality.alerts): serve fires it, the card shows
        # it first; silence (30 minutes) has not had its window yet.
        alert = f'[data-alerts="{CONTRACT}"] [data-alert="broken_build"]'
        firing = wait_for(lambda: attribute_of(driver, alert, "data-firing") == "true")
        shown = text_of(driver, alert) or ""
        check("the overview shows broken_build firing, with its condition",
              bool(firing) and shown.startswith("FIRING broken_build") and "5%" in shown, shown)
        first = text_of(driver, f'[data-alerts="{CONTRACT}"] li') or ""
        check("firing alerts are listed first", first.startswith("FIRING"), first)
        quiet = text_of(driver, f'[data-alerts="{CONTRACT}"] [data-alert="silence"]') or ""
        check("a quiet alert shows as ok", quiet.startswith("ok silence"), quiet)
        shoot(driver, shots, "1-overview")
        if args.docs_screenshot:
            shutil.copyfile(os.path.join(shots, "1-overview.png"), args.docs_screenshot)

        driver.execute_script("window.__noReload = 42;")
        more = synth(binary, server, 150, 0.0, 11)
        total = {n: sent[n] + more[n] for n in ("accepted", "quarantined", "rejected")}
        expect_counts(driver, total, "after more events, without a reload")
        check("the page was not reloaded", driver.execute_script("return window.__noReload") == 42)

        # One bad event from a generated client (it names its contract version): the top rule's
        # newest event, showing that version.
        send_from_client(server, '{"event_id": 1, "event_type": "Login", "updated_at": "2020-01-01 00:00:00"}', "1.0.9")
        total["rejected"] += 1
        open_view(driver, server.base, "violations")
        check_violations(driver, sent["codes"], out_file, "live")
        newest = text_of(driver, "#events-list .event")
        check("the newest event shows the client's contract version", newest and "1.0.9" in newest, newest)
        drawn = wait_for(lambda: canvas_drawn(driver, "#violations-chart"))
        check("the violations plot has drawn", (drawn or 0) > 500, drawn)
        shoot(driver, shots, "2-violations")
        driver.execute_script("document.getElementById('events').scrollIntoView()")
        shoot(driver, shots, "2b-violation-events")

        open_view(driver, server.base, "tables")
        rows = wait_for(lambda: text_of(driver, f'[data-table-rows="{EVENTS_TABLE}"]') == str(total["accepted"]))
        check(f"the tables view reads {total['accepted']} rows of {EVENTS_TABLE} from the lake", rows,
              text_of(driver, f'[data-table-rows="{EVENTS_TABLE}"]'))
        shoot(driver, shots, "3-tables")

        open_view(driver, server.base, "contracts")
        with open(os.path.join(REPO, "contracts", CONTRACT + ".yaml"), "rb") as f:
            fingerprint = hashlib.sha256(f.read()).hexdigest()
        shown = wait_for(lambda: text_of(driver, f'[data-fingerprint="{CONTRACT}"]'))
        check("the contracts view shows the fingerprint", shown == fingerprint, shown)
        docs = wait_for(lambda: driver.execute_script(
            f"return document.querySelectorAll('[data-contract-docs=\"{CONTRACT}\"] .docs table').length"))
        check("the contract's generated docs are rendered (tables)", (docs or 0) >= 2, docs)
        shoot(driver, shots, "4-contracts")

        errors = severe_logs(driver)
        check("no error in the browser console", not errors, errors)

        server.stop()
        server = Serve(binary, data)
        driver.get(server.base + "/console/#overview")
        expect_counts(driver, total, "after a restart (history from the lake)")
        shoot(driver, shots, "5-overview-after-restart")
        open_view(driver, server.base, "violations")
        check_violations(driver, sent["codes"], out_file, "after a restart")
        from selenium.webdriver.common.by import By
        sources = {e.text for e in driver.find_elements(By.CSS_SELECTOR, "#events-list .event .muted")}
        check("after a restart the events come from the lake", any("lake" in s for s in sources), sources)
        shoot(driver, shots, "6-violations-after-restart")
        errors = severe_logs(driver)
        check("no error in the browser console after the restart", not errors, errors)
    finally:
        driver.quit()
        if server.process.poll() is None:
            server.stop()

    access_checks(binary, tmp)
    passed, failed = results.count(True), results.count(False)
    print(f"screenshots: {shots}")
    print(f"console browser: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
