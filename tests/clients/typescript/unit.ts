// The client's transport logic against a scripted fake `fetch`: retry with backoff and jitter on
// network errors and 5xx (never on 4xx), token refresh before expiry (and login when the
// refresh is refused), the bounded queue (oldest dropped first, counted), and the contract
// version header on every request.
import {
  BatchError,
  CONTRACT,
  ContractClient,
  ContractViolationError,
  HttpError,
  MemoryStore,
  createClient,
  makeLoginEvent,
  type Event,
} from "./contracts/game_events/game_events.js";
import * as rt from "./contracts/game_events/contractc-runtime.js";
import { assert, assertEqual, finish, test } from "./harness.js";

interface Call {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string;
}

type Script = (call: Call) => Response | Error;

const LOGIN = {
  user_id: "11111111-1111-4111-8111-111111111111",
  guest_secret: "secret",
  auth_token: "token-1",
  refresh_token: "refresh-1",
  auth_token_expires_in: 900,
  refresh_token_expires_in: 518400,
};

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

/** A fake server: answers logins itself and the rest with `script`; records every call. */
function fake(script: Script): { fetch: typeof fetch; calls: Call[] } {
  const calls: Call[] = [];
  const fetchFn = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const headers: Record<string, string> = {};
    new Headers(init?.headers).forEach((value, key) => {
      headers[key] = value;
    });
    const call: Call = {
      url: String(input),
      method: init?.method ?? "GET",
      headers,
      body: typeof init?.body === "string" ? init.body : "",
    };
    calls.push(call);
    const answer = call.url.includes("/login-as-guest") ? json(200, LOGIN) : script(call);
    if (answer instanceof Error) throw answer;
    return answer;
  };
  return { fetch: fetchFn as typeof fetch, calls };
}

function client(
  script: Script,
  extra: Partial<ConstructorParameters<typeof ContractClient>[1]> = {},
  maxBatchEvents?: number,
  maxBodyBytes: number = CONTRACT.maxBodyBytes,
) {
  const f = fake(script);
  const sleeps: number[] = [];
  const options = {
    baseUrl: "http://game.test/prod/",
    fetch: f.fetch,
    sleep: async (ms: number) => {
      sleeps.push(ms);
    },
    random: () => 0.5,
    ...extra,
  };
  const c =
    maxBatchEvents === undefined ? createClient(options) : new ContractClient({ ...CONTRACT, maxBatchEvents, maxBodyBytes }, options);
  return { client: c, calls: f.calls, sleeps };
}

/** The event ids of a batch request; fails unless its body is a JSON array. */
function ids(call: Call): string[] {
  const parsed = JSON.parse(call.body) as unknown;
  assert(Array.isArray(parsed), `batch body is not a JSON array: ${call.body}`);
  return (parsed as { event_id: string }[]).map((e) => e.event_id);
}

/** `serve`'s batch answer: every event accepted, but the ids in `rejected`. */
function serveAnswer(call: Call, rejected: string[] = []): Response {
  const results = ids(call).map((id, index) =>
    rejected.includes(id)
      ? { index, verdict: "reject", violations: [{ code: "pattern", path: "$.event_id", policy: "reject", message: "no" }] }
      : { index, verdict: "accept", violations: [] },
  );
  const n = (v: string): number => results.filter((r) => r.verdict === v).length;
  return json(200, { request_id: "r", accepted: n("accept"), quarantined: 0, rejected: n("reject"), results });
}

/** The deployed API's batch answer: every event added, but the ids in `failing` (then a 500). */
function awsAnswer(call: Call, failing: string[] = []): Response {
  const results = ids(call).map((id, index) =>
    failing.includes(id)
      ? { index, result: "failed", error: "ProvisionedThroughputExceededException", message: "Rate exceeded" }
      : { index, result: "added" },
  );
  const failed = results.filter((r) => r.result === "failed").length;
  return json(failed > 0 ? 500 : 200, { request_id: "r", added: results.length - failed, failed, results });
}

const batchCalls = (calls: Call[]): Call[] => calls.filter((x) => x.url.endsWith("/prod/put-records"));

const now = new Date();
function event(id: string): Event {
  return makeLoginEvent({ event_id: id, updated_at: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate())) });
}

await test("retries network errors and 5xx with growing jittered backoff, then succeeds", async () => {
  let n = 0;
  const { client: c, calls, sleeps } = client(() => {
    n += 1;
    if (n === 1) return new TypeError("fetch failed");
    if (n === 2) return json(503, { message: "busy" });
    return json(200, "Successfully added event");
  });
  const answer = await c.send(event("e1"));
  assertEqual(answer.status, 200, "status");
  assertEqual(calls.filter((x) => x.url.endsWith("/prod/put-record")).length, 3, "put-record calls");
  // random() = 0.5 of a ceiling of 200 ms then 400 ms.
  assertEqual(sleeps, [100, 200], "backoff");
});

await test("never retries a 4xx", async () => {
  const { client: c, calls } = client(() => json(400, { message: "bad", violations: [] }));
  let error: unknown = null;
  try {
    await c.send(event("e1"));
  } catch (e) {
    error = e;
  }
  assert(error instanceof HttpError && error.status === 400, `expected HttpError 400, got ${String(error)}`);
  assertEqual(calls.filter((x) => x.url.endsWith("/prod/put-record")).length, 1, "put-record calls");
});

await test("gives up after maxAttempts on a persistent 5xx", async () => {
  const { client: c, calls } = client(() => json(502, "bad gateway"), { maxAttempts: 3 });
  let error: unknown = null;
  try {
    await c.send(event("e1"));
  } catch (e) {
    error = e;
  }
  assert(error instanceof HttpError && error.status === 502, `expected HttpError 502, got ${String(error)}`);
  assertEqual(calls.filter((x) => x.url.endsWith("/prod/put-record")).length, 3, "attempts");
});

await test("an invalid event is refused locally and never sent", async () => {
  const { client: c, calls } = client(() => json(200, "Successfully added event"));
  let error: unknown = null;
  try {
    await c.send(makeLoginEvent({ event_id: "a b", updated_at: now }));
  } catch (e) {
    error = e;
  }
  assert(error instanceof ContractViolationError, `expected ContractViolationError, got ${String(error)}`);
  assertEqual(
    error.violations.map((v) => [v.code, v.path, v.policy]),
    [["pattern", "$.event_id", "reject"]],
    "violations",
  );
  assertEqual(calls.length, 0, "requests");
});

await test("refreshes the token before it expires; logs in again when the refresh is refused", async () => {
  let clock = Date.now();
  let refreshOk = true;
  const { client: c, calls } = client(
    (call) => {
      if (call.url.includes("/refresh-access-token")) {
        return refreshOk
          ? json(200, { auth_token: "token-2", auth_token_expires_in: 900 })
          : json(401, { message: "Unauthorized" });
      }
      return json(200, "Successfully added event");
    },
    { now: () => clock },
  );
  await c.send(event("e1"));
  assertEqual(calls.map((x) => new URL(x.url).pathname), ["/prod/login-as-guest", "/prod/put-record"], "first send");
  assertEqual(calls[1]?.headers["authorization"], "token-1", "first token");
  clock += 845_000; // 55 s before expiry: inside the 60 s margin
  await c.send(event("e2"));
  const refresh = calls[2];
  assert(refresh !== undefined && refresh.url === "http://game.test/prod/refresh-access-token?refresh_token=refresh-1", `refresh call ${refresh?.url}`);
  assertEqual(calls[3]?.headers["authorization"], "token-2", "refreshed token");
  clock += 900_000;
  refreshOk = false;
  await c.send(event("e3"));
  const paths = calls.slice(4).map((x) => new URL(x.url).pathname + new URL(x.url).search);
  assertEqual(
    paths,
    [
      "/prod/refresh-access-token?refresh_token=refresh-1",
      `/prod/login-as-guest?user_id=${LOGIN.user_id}&guest_secret=secret`,
      "/prod/put-record",
    ],
    "refused refresh, then the returning guest's login",
  );
});

await test("every request carries X-Contract-Version", async () => {
  const { client: c, calls } = client((call) => (call.url.endsWith("/put-records") ? serveAnswer(call) : json(200, "ok")));
  await c.send(event("e1"));
  await c.sendBatch([event("e2"), event("e3")]);
  assert(calls.length === 3, `calls ${calls.length}`);
  for (const call of calls) assertEqual(call.headers["x-contract-version"], "1.2.0", `header on ${call.url}`);
});

await test("each event gets a UUIDv7 when it is made, and every retry of it carries the same", async () => {
  let n = 0;
  const { client: c, calls } = client(() => {
    n += 1;
    return n < 3 ? json(503, { message: "busy" }) : json(200, "Successfully added event");
  });
  const e = event("e1");
  const id = e.event_uuid ?? "";
  assert(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(id), `a UUIDv7: ${id}`);
  assert(event("e2").event_uuid !== id, "two events, two ids");
  await c.send(e);
  const sent = calls
    .filter((x) => x.url.endsWith("/prod/put-record"))
    .map((x) => (JSON.parse(x.body) as { event_uuid?: string }).event_uuid);
  assertEqual(sent, [id, id, id], "the id of every attempt");
});

await test("the queue is bounded: the oldest events are dropped first and counted", async () => {
  const store = new MemoryStore();
  const { client: c, calls } = client(serveAnswer, { store, maxQueuedEvents: 2 });
  c.enqueue(event("e1"));
  c.enqueue(event("e2"));
  c.enqueue(event("e3"));
  assertEqual([c.queued, c.dropped], [2, 1], "queued, dropped");
  const result = await c.flush();
  assertEqual([result.sent, result.accepted, result.remaining], [2, 2, 0], "flush");
  const sent = calls.find((x) => x.url.endsWith("/put-records"));
  assert(sent !== undefined, "a batch was sent");
  assertEqual(ids(sent), ["e2", "e3"], "batch");
  assertEqual(sent.headers["content-type"], "application/json", "content type");
});

await test("a failed flush keeps the events for the next one", async () => {
  let up = false;
  const store = new MemoryStore();
  const { client: c } = client(
    (call) => (up ? serveAnswer(call) : new TypeError("offline")),
    { store, maxAttempts: 2 },
  );
  c.enqueue(event("e1"));
  let failed = false;
  try {
    await c.flush();
  } catch {
    failed = true;
  }
  assert(failed, "the offline flush fails");
  assertEqual(c.queued, 1, "still queued");
  up = true;
  const result = await c.flush();
  assertEqual([result.accepted, result.remaining], [1, 0], "second flush");
});

await test("a batch goes out as JSON arrays of at most maxBatchEvents; verdicts map back to their events", async () => {
  const { client: c, calls } = client((call) => serveAnswer(call, ["e3"]), {}, 2);
  const result = await c.sendBatch(["e1", "e2", "e3", "e4", "e5"].map(event));
  assertEqual(batchCalls(calls).map(ids), [["e1", "e2"], ["e3", "e4"], ["e5"]], "requests");
  for (const call of batchCalls(calls)) assertEqual(call.headers["content-type"], "application/json", "content type");
  assertEqual(result.results.map((r) => r.outcome), ["accepted", "accepted", "rejected", "accepted", "accepted"], "per event");
  assertEqual([result.sent, result.accepted, result.rejected, result.failed], [5, 4, 1, 0], "counts");
});

await test("never more than 500 events per request, whatever the contract allows", async () => {
  const store = new MemoryStore();
  const { client: c, calls } = client(serveAnswer, { store, maxQueuedEvents: 2000 }, 1000);
  for (let i = 0; i < 501; i += 1) c.enqueue(event(`q${i}`));
  const result = await c.flush();
  assertEqual(batchCalls(calls).map((x) => ids(x).length), [500, 1], "request sizes");
  assertEqual([result.sent, result.accepted, result.remaining], [501, 501, 0], "flush");
});

await test("a batch request stays within max_body_bytes × max_batch_events bytes (and 3 MB)", async () => {
  const { client: c, calls } = client(serveAnswer, {}, 10, 40);
  const all = ["e0", "e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8", "e9"];
  const result = await c.sendBatch(all.map(event));
  const requests = batchCalls(calls);
  assert(requests.length > 1, `one request of ${requests[0]?.body.length ?? 0} bytes`);
  for (const r of requests) assert(Buffer.byteLength(r.body) <= 400, `a request of ${Buffer.byteLength(r.body)} bytes`);
  assertEqual(requests.flatMap(ids), all, "every event once, in order");
  assertEqual(result.accepted, 10, "accepted");
  assertEqual(rt.batchLength(["x".repeat(100_000)], 500, 100), 1, "an event over the limit goes alone");
  assertEqual(rt.batchLength(Array.from({ length: 40 }, () => "x".repeat(100_000)), 500, rt.MAX_BATCH_REQUEST_BYTES), 29, "3 MB");
});

await test("the deployed API's answer: a failed record is sent again alone, an added one never", async () => {
  let failing = ["e2"];
  const { client: c, calls, sleeps } = client((call) => {
    const answer = awsAnswer(call, failing);
    failing = [];
    return answer;
  });
  const result = await c.sendBatch(["e1", "e2", "e3"].map(event));
  assertEqual(batchCalls(calls).map(ids), [["e1", "e2", "e3"], ["e2"]], "requests");
  assertEqual(sleeps, [100], "backoff before the retry");
  assertEqual(result.results.map((r) => r.outcome), ["added", "added", "added"], "per event");
  assertEqual([result.sent, result.added, result.accepted, result.failed], [3, 3, 0, 0], "counts");
});

await test("a record that keeps failing: sendBatch throws BatchError saying which events were added", async () => {
  const { client: c, calls } = client((call) => awsAnswer(call, ["e2"]), { maxAttempts: 3 });
  let error: unknown = null;
  try {
    await c.sendBatch(["e1", "e2", "e3"].map(event));
  } catch (e) {
    error = e;
  }
  assert(error instanceof BatchError, `expected BatchError, got ${String(error)}`);
  assertEqual(error.result.results.map((r) => r.outcome), ["added", "failed", "added"], "per event");
  assert(error.result.results[1]?.error?.startsWith("ProvisionedThroughputExceededException") === true, `error ${error.result.results[1]?.error}`);
  assert(error.failure instanceof HttpError && error.failure.status === 500, `failure ${String(error.failure)}`);
  assertEqual(batchCalls(calls).map(ids), [["e1", "e2", "e3"], ["e2"], ["e2"]], "requests");
});

await test("flush against the deployed API: added events leave the queue, a failing one stays", async () => {
  const store = new MemoryStore();
  let failing = ["e2"];
  const { client: c, calls } = client((call) => awsAnswer(call, failing), { store, maxAttempts: 2 });
  for (const id of ["e1", "e2", "e3"]) c.enqueue(event(id));
  let error: unknown = null;
  try {
    await c.flush();
  } catch (e) {
    error = e;
  }
  assert(error instanceof HttpError && error.status === 500, `expected HttpError 500, got ${String(error)}`);
  assertEqual(c.queued, 1, "still queued");
  failing = [];
  const result = await c.flush();
  assertEqual([result.sent, result.added, result.remaining], [1, 1, 0], "second flush");
  assertEqual(batchCalls(calls).map(ids), [["e1", "e2", "e3"], ["e2"], ["e2"]], "requests: nothing added is sent again");
});

await test("a 5xx without results (\"Failed to add events\") sends the whole batch again", async () => {
  let n = 0;
  const { client: c, calls } = client((call) => {
    n += 1;
    return n === 1 ? json(500, "Failed to add events") : awsAnswer(call);
  });
  const result = await c.sendBatch(["e1", "e2"].map(event));
  assertEqual(batchCalls(calls).map(ids), [["e1", "e2"], ["e1", "e2"]], "requests");
  assertEqual([result.sent, result.added], [2, 2], "counts");
});

// ----- the game's own sign-in: a token provider in place of the guest login ------------------

/** A provider handing out `game-1`, `game-2`, … (expiring `lifetimeMs` after `clock()`), recording each `forceRefresh`. */
function provider(clock: () => number, lifetimeMs: number | null = 900_000) {
  const asked: boolean[] = [];
  const tokenProvider: rt.TokenProvider = async (forceRefresh) => {
    asked.push(forceRefresh);
    const token = `game-${asked.length}`;
    return lifetimeMs === null ? { token } : { token, expiresAt: new Date(clock() + lifetimeMs) };
  };
  return { tokenProvider, asked };
}

await test("a token provider replaces the guest login: its token is sent, no guest login", async () => {
  const p = provider(Date.now);
  const { client: c, calls } = client((call) => (call.url.endsWith("/put-records") ? serveAnswer(call) : json(200, "ok")), {
    tokenProvider: p.tokenProvider,
  });
  await c.send(event("e1"));
  await c.sendBatch([event("e2"), event("e3")]);
  assertEqual(calls.map((x) => [new URL(x.url).pathname, x.headers["authorization"]]), [
    ["/prod/put-record", "game-1"],
    ["/prod/put-records", "game-1"],
  ], "requests and their token");
  assertEqual(p.asked, [false], "asked once");
  assertEqual(c.userId, null, "no guest identity");
});

await test("the provider is asked again within the refresh margin of its token's expiry, not forced", async () => {
  let clock = Date.now();
  const p = provider(() => clock);
  const { client: c, calls } = client(() => json(200, "ok"), { tokenProvider: p.tokenProvider, now: () => clock });
  await c.send(event("e1"));
  clock += 800_000; // 100 s before expiry: outside the 60 s margin
  await c.send(event("e2"));
  clock += 45_000; // 55 s before expiry: inside it
  await c.send(event("e3"));
  assertEqual(calls.map((x) => x.headers["authorization"]), ["game-1", "game-1", "game-2"], "tokens sent");
  assertEqual(p.asked, [false, false], "forceRefresh");
});

await test("a token without expiresAt is kept until a 401", async () => {
  const p = provider(Date.now, null);
  const { client: c, calls } = client(() => json(200, "ok"), { tokenProvider: p.tokenProvider });
  for (const id of ["e1", "e2", "e3"]) await c.send(event(id));
  assertEqual(calls.map((x) => x.headers["authorization"]), ["game-1", "game-1", "game-1"], "tokens sent");
  assertEqual(p.asked, [false], "asked once");
});

await test("a 401 asks the provider again with forceRefresh and retries once (batch and single)", async () => {
  const p = provider(Date.now);
  // The server stops taking a token once it was sent (revoked, or expired early).
  const refused = new Set<string>();
  const { client: c, calls } = client(
    (call) =>
      refused.has(call.headers["authorization"] ?? "")
        ? json(401, { message: "Unauthorized" })
        : call.url.endsWith("/put-records")
          ? serveAnswer(call)
          : json(200, "ok"),
    { tokenProvider: p.tokenProvider },
  );
  assertEqual((await c.send(event("e1"))).status, 200, "single");
  refused.add("game-1");
  c.enqueue(event("e2"));
  c.enqueue(event("e3"));
  const result = await c.flush();
  assertEqual([result.accepted, result.remaining], [2, 0], "flush");
  refused.add("game-2");
  assertEqual((await c.send(event("e4"))).status, 200, "single after a 401");
  assertEqual(calls.map((x) => x.headers["authorization"]), ["game-1", "game-1", "game-2", "game-2", "game-3"], "tokens sent");
  assertEqual(p.asked, [false, true, true], "forceRefresh");
  assertEqual(batchCalls(calls).map(ids), [["e2", "e3"], ["e2", "e3"]], "batch requests");
});

await test("a second 401 is an HttpError; the queued events stay for the next flush", async () => {
  let refuseAll = true;
  const p = provider(Date.now);
  const { client: c, calls } = client(
    (call) => (refuseAll ? json(401, { message: "Unauthorized" }) : serveAnswer(call)),
    { tokenProvider: p.tokenProvider },
  );
  c.enqueue(event("e1"));
  c.enqueue(event("e2"));
  let error: unknown = null;
  try {
    await c.flush();
  } catch (e) {
    error = e;
  }
  assert(error instanceof HttpError && error.status === 401, `expected HttpError 401, got ${String(error)}`);
  assertEqual(batchCalls(calls).length, 2, "the request and its one retry");
  assertEqual(c.queued, 2, "still queued");
  refuseAll = false;
  const result = await c.flush();
  assertEqual([result.accepted, result.remaining], [2, 0], "next flush");
  assertEqual(p.asked, [false, true], "forceRefresh");
});

await test("a provider that fails is retried as a network error; the events stay queued", async () => {
  let fail = true;
  const asked: boolean[] = [];
  const { client: c, calls } = client(serveAnswer, {
    maxAttempts: 2,
    tokenProvider: async (forceRefresh) => {
      asked.push(forceRefresh);
      if (fail) throw new Error("the game's backend is down");
      return { token: "game" };
    },
  });
  c.enqueue(event("e1"));
  let error: unknown = null;
  try {
    await c.flush();
  } catch (e) {
    error = e;
  }
  assert(error instanceof Error && error.message.includes("backend is down"), `the provider's error, got ${String(error)}`);
  assertEqual([asked.length, calls.length, c.queued], [2, 0, 1], "asked, requests, queued");
  fail = false;
  assertEqual((await c.flush()).accepted, 1, "next flush");
});

finish("typescript unit");
