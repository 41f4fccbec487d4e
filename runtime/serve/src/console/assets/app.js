// The quality console: polls /console/api/* and draws with uPlot. Every text from the server
// goes in as textContent; only the contract docs (sanitised by the server) as HTML.
"use strict";

const POLL_MS = 2000;
const COLORS = { accepted: "#2f9e62", quarantined: "#d08a12", rejected: "#d0453a" };
const RULE_COLORS = ["#3a62d0", "#d0453a", "#d08a12", "#2f9e62", "#8a4fd0"];
const state = { view: "overview", window: "15m", contract: null, rule: null, plots: {}, timer: null, contractsLoaded: false };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const child of children) {
    if (child == null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(path) {
  const response = await fetch("api/" + path, { credentials: "same-origin", cache: "no-store" });
  if (!response.ok) throw new Error(path + ": " + response.status + " " + (await response.text()));
  return response.json();
}

function ago(ms) {
  if (!ms) return "never";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 90) return s + " s ago";
  if (s < 5400) return Math.round(s / 60) + " min ago";
  return Math.round(s / 3600) + " h ago";
}

function bytes(n) {
  if (n < 1024) return n + " B";
  if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
  return (n / 1048576).toFixed(1) + " MiB";
}

function setStatus(text, error) {
  const status = document.getElementById("status");
  status.textContent = text;
  status.style.color = error ? "#d0453a" : "";
}

// One uPlot per key, made once and then fed new data (a plot is made when its box is visible,
// so it gets a real width).
function plot(key, target, series, data, height) {
  const width = Math.max(300, target.clientWidth || 500);
  const existing = state.plots[key];
  if (existing && existing.root.isConnected && existing.series.length === series.length + 1) {
    if (Math.abs(existing.width - width) > 20) existing.setSize({ width, height });
    existing.setData(data);
    return existing;
  }
  if (existing) existing.destroy();
  target.textContent = "";
  const opts = {
    width, height,
    scales: { x: { time: true } },
    legend: { show: true },
    series: [{}].concat(series.map(s => ({ label: s.label, stroke: s.color, width: 2, fill: s.fill, points: { show: false } }))),
    axes: [{}, { size: 50 }],
  };
  state.plots[key] = new uPlot(opts, data, target);
  return state.plots[key];
}

function stat(contract, name, value, label) {
  return el("div", { class: "stat " + name },
    el("b", { "data-contract": contract, "data-stat": name }, value), el("small", {}, label));
}

async function refreshOverview() {
  const data = await api("overview?window=" + state.window);
  const history = data.history;
  document.getElementById("overview-meta").textContent =
    "WAL on disk: " + bytes(data.wal_bytes) + " · history from the lake: " +
    (history.loaded ? "loaded (" + history.accepted + " accepted, " + history.bad + " refused or quarantined before this start)" : "loading…") +
    (history.error ? " · error: " + history.error : "");
  const cards = document.getElementById("overview-cards");
  for (const c of data.contracts) {
    let card = cards.querySelector('[data-card="' + c.name + '"]');
    if (!card) {
      card = el("div", { class: "card", "data-card": c.name },
        el("h3", {}, c.name + " ", el("span", { class: "muted" }, c.version)),
        el("ul", { class: "alerts", "data-alerts": c.name }),
        el("div", { class: "stats" }), el("div", { class: "lag" }), el("div", { class: "chart" }),
        el("table", { class: "grid client-versions", "data-client-versions": c.name }));
      cards.append(card);
    }
    // The contract's quality.alerts as serve evaluates them: firing ones first.
    const alerts = [...c.alerts].sort((a, b) => b.firing - a.firing);
    card.querySelector(".alerts").replaceChildren(...alerts.map(a => el("li",
      { class: a.firing ? "alert firing" : "alert", "data-alert": a.alert, "data-firing": String(a.firing) },
      el("b", {}, (a.firing ? "FIRING " : "ok ") + a.alert), " " + a.summary +
      (a.firing ? " · since " + ago(a.since * 1000) : "") +
      (a.value === null ? "" : " · now " + (a.kind === "bad_share" ? (100 * a.value).toFixed(1) + "%" : String(a.value))))));
    const t = c.totals;
    card.querySelector(".stats").replaceChildren(
      stat(c.name, "accepted", t.accepted, "accepted · " + c.rates.accepted.toFixed(1) + "/s"),
      stat(c.name, "quarantined", t.quarantined, "quarantined · " + c.rates.quarantined.toFixed(1) + "/s"),
      stat(c.name, "rejected", t.rejected, "rejected · " + c.rates.rejected.toFixed(1) + "/s"),
      stat(c.name, "bad_share", (100 * c.bad_share).toFixed(1) + "%", "bad share"));
    card.querySelector(".lag").textContent =
      "commit lag: " + c.buffered + " acknowledged events not yet in Iceberg · last commit " + ago(c.last_commit_ms) +
      (c.duplicates === null ? "" : " · " + c.duplicates + " retries answered, not stored again (since start)");
    // Which build sends bad data: counts since start per the client version events were judged as.
    card.querySelector(".client-versions").replaceChildren(
      el("tr", {}, ...["client version", "accepted", "quarantined", "rejected", "bad share"].map(h => el("th", {}, h))),
      ...c.client_versions.map(v => el("tr", { "data-client-version": v.version },
        el("td", {}, v.version), el("td", {}, String(v.accepted)), el("td", {}, String(v.quarantined)),
        el("td", {}, String(v.rejected)), el("td", {}, (100 * v.bad_share).toFixed(1) + "%"))));
    const series = ["accepted", "quarantined", "rejected"].map(n => ({ label: n, color: COLORS[n] }));
    plot("overview-" + c.name, card.querySelector(".chart"), series, [c.t, c.accepted, c.quarantined, c.rejected], 200);
  }
}

async function ensureContracts() {
  if (state.contractsLoaded) return;
  const data = await api("contracts");
  const select = document.getElementById("violations-contract");
  select.replaceChildren(...data.contracts.map(c => el("option", { value: c.name }, c.name)));
  state.contract = state.contract || (data.contracts[0] && data.contracts[0].name);
  select.value = state.contract;
  renderContracts(data);
  state.contractsLoaded = true;
}

function renderContracts(data) {
  const list = document.getElementById("contracts-list");
  list.replaceChildren(...data.contracts.map(c => {
    const docs = el("div", { class: "docs" });
    docs.innerHTML = c.docs_html; // rendered and stripped of raw HTML by the server
    return el("div", { class: "card", "data-contract-docs": c.name },
      el("h3", {}, c.name + " ", el("span", { class: "muted", "data-version": c.name }, c.version)),
      el("div", { class: "kv" },
        el("span", { class: "muted" }, "owner"), el("span", {}, c.owner),
        el("span", { class: "muted" }, "source"), el("code", {}, c.source),
        el("span", { class: "muted" }, "route"), el("code", {}, "POST " + c.route),
        el("span", { class: "muted" }, "fingerprint"), el("span", { class: "fingerprint", "data-fingerprint": c.name }, c.fingerprint)),
      docs);
  }));
}

async function refreshViolations() {
  await ensureContracts();
  const data = await api("violations?window=" + state.window + "&contract=" + encodeURIComponent(state.contract));
  const body = document.querySelector("#violations-table tbody");
  body.replaceChildren(...data.rules.map(r => {
    const row = el("tr", { "data-code": r.code, "data-path": r.path },
      el("td", {}, el("code", {}, r.code), el("span", { class: "muted" }, " · " + r.code_total + " in all")),
      el("td", {}, el("code", {}, r.path)),
      el("td", { class: "num", "data-count": "window" }, r.total), el("td", { class: "num" }, r.since_start));
    if (state.rule && state.rule.code === r.code && state.rule.path === r.path) row.classList.add("selected");
    row.addEventListener("click", () => { state.rule = { code: r.code, path: r.path }; refresh(); });
    return row;
  }));
  document.getElementById("violations-empty").hidden = data.rules.length > 0;
  const top = data.rules.slice(0, RULE_COLORS.length);
  const chart = document.getElementById("violations-chart");
  if (top.length) {
    plot("violations-" + state.contract + "-" + top.length, chart,
      top.map((r, i) => ({ label: r.code + " " + r.path, color: RULE_COLORS[i] })),
      [data.t].concat(top.map(r => r.counts)), 220);
  }
  if (state.rule) await refreshEvents();
}

async function refreshEvents() {
  const { code, path } = state.rule;
  const data = await api("events?contract=" + encodeURIComponent(state.contract) +
    "&code=" + encodeURIComponent(code) + "&path=" + encodeURIComponent(path));
  document.getElementById("events").hidden = false;
  document.getElementById("events-rule").textContent = code + " at " + path;
  document.getElementById("events-list").replaceChildren(...data.events.map(e =>
    el("div", { class: "event " + e.verdict, "data-request-id": e.request_id },
      el("div", {}, el("b", {}, e.verdict), " · ", new Date(e.received_ms).toLocaleString(),
        " · request ", el("code", {}, e.request_id),
        " · client contract version ", el("code", {}, e.client_version || "unknown"),
        el("span", { class: "muted" }, " · from " + e.source)),
      el("ul", {}, ...e.violations.map(v => el("li", { "data-violation-code": v.code },
        el("code", {}, v.code), " at ", el("code", {}, v.path), " (" + v.policy + "): " + v.message))),
      el("pre", { class: "payload" }, e.payload))));
}

// Which <details> are open survives the re-render of each poll.
function details(key, open, title, body) {
  return el("details", { "data-key": key, open: open.has(key) }, el("summary", {}, title), body);
}

async function refreshTables() {
  const data = await api("tables");
  const list = document.getElementById("tables-list");
  const open = list.children.length
    ? new Set([...list.querySelectorAll("details[open]")].map(d => d.dataset.key))
    : new Set(data.tables.map(t => t.state ? t.state.table + ":summary" : ""));
  list.replaceChildren(...data.tables.map(t => {
    if (t.error) return el("div", { class: "card" }, el("h3", {}, t.table), el("p", {}, "cannot read: " + t.error));
    const s = t.state;
    const summary = s.current_snapshot ? s.current_snapshot.summary : {};
    return el("div", { class: "card", "data-table": s.table },
      el("h3", {}, s.table + " ", el("span", { class: "muted" }, t.kind + " table of " + t.contract)),
      el("div", { class: "stats" },
        el("div", { class: "stat" }, el("b", { "data-table-rows": s.table }, s.rows), el("small", {}, "rows")),
        el("div", { class: "stat" }, el("b", {}, s.data_files), el("small", {}, "data files")),
        el("div", { class: "stat" }, el("b", {}, bytes(s.bytes)), el("small", {}, "in data files")),
        el("div", { class: "stat" }, el("b", {}, s.snapshot_count), el("small", {}, "snapshots")),
        el("div", { class: "stat" }, el("b", {}, s.partition_count), el("small", {}, "partitions"))),
      el("div", { class: "lag" }, "partitioned by " + (s.partition_spec.join(", ") || "nothing") + " · " + s.location),
      details(s.table + ":summary", open, "last snapshot summary",
        el("div", { class: "kv" }, ...Object.entries(summary).flatMap(([k, v]) => [el("span", { class: "muted" }, k), el("code", {}, v)]))),
      details(s.table + ":partitions", open, "partitions", table(["partition", "files", "rows", "bytes"],
        s.partitions.map(p => [p.partition, p.files, p.rows, bytes(p.bytes)]))),
      details(s.table + ":snapshots", open, "latest snapshots", table(["time", "operation", "added rows", "wal lsn"],
        s.snapshots.map(p => [new Date(p.timestamp_ms).toLocaleString(), p.operation, p.summary["added-records"] || "", p.summary["contractc.wal-lsn"] || ""]))),
      details(s.table + ":files", open, "newest data files", table(["file", "partition", "rows", "size"],
        s.files.map(f => [f.path.split("/").pop(), f.partition, f.rows, bytes(f.bytes)]))));
  }));
}

function table(headers, rows) {
  return el("table", { class: "grid" },
    el("thead", {}, el("tr", {}, ...headers.map(h => el("th", {}, h)))),
    el("tbody", {}, ...rows.map(r => el("tr", {}, ...r.map(c => el("td", {}, c))))));
}

const REFRESH = { overview: refreshOverview, violations: refreshViolations, tables: refreshTables, contracts: ensureContracts };

async function refresh() {
  clearTimeout(state.timer);
  try {
    await REFRESH[state.view]();
    setStatus("updated " + new Date().toLocaleTimeString());
  } catch (error) {
    setStatus(String(error.message || error), true);
  }
  // The tables are read from disk: a slower pace. Contracts do not change while serving.
  if (state.view !== "contracts") state.timer = setTimeout(refresh, state.view === "tables" ? 3 * POLL_MS : POLL_MS);
}

function show(view) {
  state.view = REFRESH[view] ? view : "overview";
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== "view-" + state.view;
  for (const a of document.querySelectorAll("#tabs a")) a.classList.toggle("active", a.dataset.view === state.view);
  refresh();
}

document.getElementById("window").addEventListener("change", e => { state.window = e.target.value; refresh(); });
document.getElementById("violations-contract").addEventListener("change", e => {
  state.contract = e.target.value; state.rule = null; document.getElementById("events").hidden = true; refresh();
});
window.addEventListener("hashchange", () => show(location.hash.slice(1)));
show(location.hash.slice(1) || "overview");
