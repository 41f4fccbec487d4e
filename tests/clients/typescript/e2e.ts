// The TypeScript client against a real `contract-runtime serve`: guest login (and the returning
// guest), single and batch sends (HTTP answers checked), an invalid event refused locally and
// never sent, the persistent queue surviving a client that dies without flushing, and a
// match_events client with the `authenticated` scope.
// Usage: node e2e.js BASE_URL STATE_DIR     (BASE_URL like http://127.0.0.1:8080/prod/)
import * as fs from "node:fs";
import * as path from "node:path";

import * as game from "./contracts/game_events/game_events.js";
import * as match from "./contracts/match_events/match_events.js";
import { assert, assertEqual, finish, test } from "./harness.js";

const [baseUrl, stateDir] = process.argv.slice(2);
if (baseUrl === undefined || stateDir === undefined) throw new Error("usage: e2e.js BASE_URL STATE_DIR");

/** `fetch` that records what was sent, to prove what never was. */
const sent: { url: string; body: string; version: string | null; contentType: string | null }[] = [];
const recordingFetch = (async (input: string | URL | Request, init?: RequestInit) => {
  sent.push({
    url: String(input),
    body: typeof init?.body === "string" ? init.body : "",
    version: new Headers(init?.headers).get("X-Contract-Version"),
    contentType: new Headers(init?.headers).get("Content-Type"),
  });
  return fetch(input, init);
}) as typeof fetch;

function store(name: string): game.FileStore {
  return new game.FileStore(fs, path.join(stateDir, `${name}.json`));
}

const wallClock = game.localWallClock();
let counter = 0;
function loginEvent(): game.Event {
  counter += 1;
  return game.makeLoginEvent({ event_id: `ts-${counter}`, updated_at: wallClock, event_data: `typescript "client" é 🐢 ${counter}` });
}

await test("guest login keeps user_id and guest_secret; a returning guest gets the same user", async () => {
  const first = game.createClient({ baseUrl, store: store("login"), fetch: recordingFetch });
  await first.login();
  const user = first.userId;
  assert(user !== null && /^[0-9a-f-]{36}$/.test(user), `user_id ${String(user)}`);
  const again = game.createClient({ baseUrl, store: store("login"), fetch: recordingFetch });
  await again.login();
  assertEqual(again.userId, user, "returning guest");
  const last = sent[sent.length - 1];
  assert(last !== undefined && last.url.includes(`user_id=${user}`), `returning login ${last?.url}`);
});

const client = game.createClient({ baseUrl, store: store("game"), fetch: recordingFetch });

await test("a single event lands: 200 \"Successfully added event\"", async () => {
  const answer = await client.send(
    game.makeNewGameEvent({ event_id: "ts-single", updated_at: wallClock, event_data: "first event" }),
  );
  assertEqual(answer.status, 200, "status");
  assertEqual(answer.body, "Successfully added event", "body");
});

await test("a batch lands: every event accepted", async () => {
  const answer = await client.sendBatch([loginEvent(), loginEvent(), loginEvent()]);
  assertEqual([answer.accepted, answer.quarantined, answer.rejected, answer.failed], [3, 0, 0, 0], "accepted, quarantined, rejected, failed");
  assertEqual(answer.results.map((r) => r.outcome), ["accepted", "accepted", "accepted"], "per event");
});

await test("a batch goes out as a JSON array (application/json), as the deployed API takes it", () => {
  const batches = sent.filter((s) => s.url.endsWith("/prod/put-records"));
  assert(batches.length > 0, "no batch request recorded");
  for (const b of batches) {
    assertEqual(b.contentType, "application/json", "content type");
    const parsed = JSON.parse(b.body) as unknown;
    assert(Array.isArray(parsed) && parsed.length >= 1 && parsed.length <= 500, `body is not a JSON array of 1..500: ${b.body.slice(0, 80)}`);
  }
});

await test("an invalid event is refused locally with the server's code and path, and never sent", async () => {
  const before = sent.length;
  const bad = game.makeEndGameEvent({ event_id: "not valid!", updated_at: wallClock });
  let error: unknown = null;
  try {
    await client.send(bad);
  } catch (e) {
    error = e;
  }
  assert(error instanceof game.ContractViolationError, `expected a ContractViolationError, got ${String(error)}`);
  assertEqual(error.violations.map((v) => [v.code, v.path]), [["pattern", "$.event_id"]], "violations");
  assertEqual(sent.length, before, "requests made");
  assert(!sent.some((s) => s.body.includes("not valid!")), "the invalid event was sent");
  // The server agrees: the same body sent by hand is refused with the same violation.
  const token = (JSON.parse(fs.readFileSync(path.join(stateDir, "game.json"), "utf8")) as Record<string, string>)[
    "contractc.game_events.tokens"
  ];
  const auth = (JSON.parse(token ?? "{}") as { auth_token: string }).auth_token;
  const answer = await fetch(new URL("/prod/put-record", baseUrl), {
    method: "POST",
    headers: { Authorization: auth, "Content-Type": "application/json" },
    body: game.encode(bad),
  });
  assertEqual(answer.status, 400, "server status");
  const body = (await answer.json()) as { violations: { code: string; path: string }[] };
  assertEqual(body.violations.map((v) => [v.code, v.path]), [["pattern", "$.event_id"]], "server violations");
});

await test("queued events survive a client that dies without flushing", async () => {
  const dying = game.createClient({ baseUrl, store: store("queue"), fetch: recordingFetch });
  for (let i = 0; i < 5; i += 1) dying.enqueue(loginEvent());
  assertEqual(dying.queued, 5, "queued");
  // No flush: the process "crashes". A new client over the same file sends them.
  const revived = game.createClient({ baseUrl, store: store("queue"), fetch: recordingFetch });
  assertEqual(revived.queued, 5, "queued after restart");
  const result = await revived.close();
  assertEqual([result.sent, result.accepted, result.remaining], [5, 5, 0], "flush on quit");
  assertEqual(revived.queued, 0, "queue empty");
});

await test("match_events (scope authenticated): single and batch", async () => {
  const m = match.createClient({ baseUrl, store: store("match"), fetch: recordingFetch, loginQuery: { scope: "authenticated" } });
  const started = (id: string): match.Event =>
    match.makeMatchStartedEvent({
      event_id: id,
      occurred_at: new Date(),
      match_id: "m-0123456789ab",
      region: "eu-west",
      build: { version: "1.2.3", platform: "pc" },
      map_name: "harbour",
      players: [
        { player_id: "123e4567-e89b-12d3-a456-426614174000", skill: 1200.5 },
        { player_id: "123e4567-e89b-12d3-a456-426614174001" },
      ],
    });
  const single = await m.send(started("6f1c2d3e-0000-4000-8000-000000000001"));
  assertEqual(single.status, 200, "single status");
  const ended = match.makeMatchEndedEvent({
    event_id: "6f1c2d3e-0000-4000-8000-000000000003",
    occurred_at: new Date(),
    match_id: "m-0123456789ab",
    region: "us-east",
    build: { version: "1.2.3" },
    duration_s: 1800,
    scores: { alice: 10, bob: 12n },
    prize_pool: "1500.25",
  });
  const batch = await m.sendBatch([started("6f1c2d3e-0000-4000-8000-000000000002"), ended]);
  assertEqual([batch.sent, batch.accepted, batch.quarantined, batch.rejected], [2, 2, 0, 0], "batch");
});

await test("every request carried X-Contract-Version", () => {
  assert(sent.length > 0, "no requests recorded");
  for (const s of sent) {
    const expected = s.url.includes("match-events") ? match.VERSION : s.url.includes("scope=authenticated") ? match.VERSION : game.VERSION;
    assertEqual(s.version, expected, `header on ${s.url}`);
  }
});

finish("typescript e2e");
