// The game's own sign-in against a real `serve --trust-issuer IDP` (tests/clients/sign_in.py):
// a token provider backed by the test identity provider (tests/clients/test_idp.py) in place of
// the guest login; the IdP hands out expired tokens on the way, and each costs one 401, one
// forced ask and one retry. The client's clock is ours, to reach the refresh margin at once.
// Usage: node sign_in.js BASE_URL IDP_URL SUBJECT STATE_DIR
// Writes STATE_DIR/sent.ndjson: the event_uuid of every event sent (sign_in.py finds each in the lake once).
import * as fs from "node:fs";
import * as path from "node:path";

import * as game from "./contracts/game_events/game_events.js";
import type { ProvidedToken } from "./contracts/game_events/contractc-runtime.js";
import { assert, assertEqual, finish, test } from "./harness.js";

const [baseUrl, idpUrl, subject, stateDir] = process.argv.slice(2);
if (baseUrl === undefined || idpUrl === undefined || subject === undefined || stateDir === undefined) {
  throw new Error("usage: sign_in.js BASE_URL IDP_URL SUBJECT STATE_DIR");
}

let clock = Date.now();
/** Every `forceRefresh` the client asked with, in order. */
const asked: boolean[] = [];

/** The game's sign-in: its backend's token for the player (here the test IdP's). */
async function tokenProvider(forceRefresh: boolean): Promise<ProvidedToken> {
  asked.push(forceRefresh);
  const answer = await fetch(`${idpUrl}/token?sub=${encodeURIComponent(subject ?? "")}`);
  if (answer.status !== 200) throw new Error(`the IdP answered ${answer.status}`);
  const body = (await answer.json()) as { access_token: string; expires_in: number };
  return { token: body.access_token, expiresAt: new Date(clock + body.expires_in * 1000) };
}

/** The IdP's next `count` tokens for the subject are already expired. */
async function expireNext(count: number): Promise<void> {
  const answer = await fetch(`${idpUrl}/expire-next?sub=${encodeURIComponent(subject ?? "")}&count=${count}`, { method: "POST" });
  assertEqual(answer.status, 204, "expire-next");
}

const client = game.createClient({
  baseUrl,
  store: new game.FileStore(fs, path.join(stateDir, "client.json")),
  tokenProvider,
  now: () => clock,
});
const sentPath = path.join(stateDir, "sent.ndjson");
let n = 0;
function event(): game.Event {
  n += 1;
  const e = game.makeLoginEvent({ event_id: `ts-sign-in-${n}`, updated_at: game.localWallClock(), event_data: "signed in by the game" });
  fs.appendFileSync(sentPath, JSON.stringify({ event_uuid: e.event_uuid }) + "\n");
  return e;
}

await test("an expired first token: serve answers 401, the provider is forced once and the event lands", async () => {
  await expireNext(1);
  const answer = await client.send(event());
  assertEqual(answer.status, 200, "status");
  assertEqual(asked, [false, true], "forceRefresh");
  assertEqual(client.userId, null, "no guest login");
});

await test("a batch lands with the game's token, asking nothing more", async () => {
  const result = await client.sendBatch([event(), event(), event()]);
  assertEqual([result.accepted, result.failed], [3, 0], "accepted, failed");
  assertEqual(asked.length, 2, "provider calls");
});

await test("within the refresh margin the provider is asked again; its expired token costs one forced retry", async () => {
  for (let i = 0; i < 5; i += 1) client.enqueue(event());
  await expireNext(1);
  clock += 120_000; // the token's lifetime: inside the margin
  const result = await client.flush();
  assertEqual([result.accepted, result.remaining], [5, 0], "accepted, remaining");
  assertEqual(asked.slice(2), [false, true], "forceRefresh");
});

await test("a second 401 fails the flush and keeps the events queued; the next flush sends them", async () => {
  for (let i = 0; i < 3; i += 1) client.enqueue(event());
  await expireNext(2);
  clock += 120_000;
  let error: unknown = null;
  try {
    await client.flush();
  } catch (e) {
    error = e;
  }
  assert(error instanceof game.HttpError && error.status === 401, `expected HttpError 401, got ${String(error)}`);
  assertEqual(client.queued, 3, "still queued");
  const result = await client.flush();
  assertEqual([result.accepted, result.remaining], [3, 0], "accepted, remaining");
  assertEqual(asked.slice(4), [false, true, false], "forceRefresh");
});

finish("typescript sign-in");
