// The client's transport logic against a scripted fake `fetch`: retry with backoff and jitter on
// network errors and 5xx (never on 4xx), token refresh before expiry (and login when the
// refresh is refused), the bounded queue (oldest dropped first, counted), and the contract
// version header on every request.
import {
  ContractClient,
  ContractViolationError,
  HttpError,
  MemoryStore,
  createClient,
  makeLoginEvent,
  type Event,
} from "./contracts/game_events/game_events.js";
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

function client(script: Script, extra: Partial<ConstructorParameters<typeof ContractClient>[1]> = {}) {
  const f = fake(script);
  const sleeps: number[] = [];
  const c = createClient({
    baseUrl: "http://game.test/prod/",
    fetch: f.fetch,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    random: () => 0.5,
    ...extra,
  });
  return { client: c, calls: f.calls, sleeps };
}

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
  const { client: c, calls } = client((call) =>
    call.url.endsWith("/put-records") ? json(200, { accepted: 2, quarantined: 0, rejected: 0, results: [] }) : json(200, "ok"),
  );
  await c.send(event("e1"));
  await c.sendBatch([event("e2"), event("e3")]);
  assert(calls.length === 3, `calls ${calls.length}`);
  for (const call of calls) assertEqual(call.headers["x-contract-version"], "1.1.0", `header on ${call.url}`);
});

await test("the queue is bounded: the oldest events are dropped first and counted", async () => {
  const store = new MemoryStore();
  const { client: c, calls } = client(
    () => json(200, { accepted: 2, quarantined: 0, rejected: 0, results: [] }),
    { store, maxQueuedEvents: 2 },
  );
  c.enqueue(event("e1"));
  c.enqueue(event("e2"));
  c.enqueue(event("e3"));
  assertEqual([c.queued, c.dropped], [2, 1], "queued, dropped");
  const result = await c.flush();
  assertEqual([result.sent, result.accepted, result.remaining], [2, 2, 0], "flush");
  const sent = calls.find((x) => x.url.endsWith("/put-records"));
  assert(sent !== undefined, "a batch was sent");
  assertEqual(sent.body.split("\n").map((l) => (JSON.parse(l) as { event_id: string }).event_id), ["e2", "e3"], "batch");
  assertEqual(sent.headers["content-type"], "application/x-ndjson", "content type");
});

await test("a failed flush keeps the events for the next one", async () => {
  let up = false;
  const store = new MemoryStore();
  const { client: c } = client(
    () => (up ? json(200, { accepted: 1, quarantined: 0, rejected: 0, results: [] }) : new TypeError("offline")),
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

finish("typescript unit");
