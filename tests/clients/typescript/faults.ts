// A producer for tests/exactly_once.py: makes COUNT game events (each gets its UUIDv7 when it is
// made), queues them in the client's persistent queue and flushes until the queue is empty,
// through a proxy that loses answers, resets uploads and delays past the client's timeout.
// Killed with -9 and started again, it goes on from its queue and its log of what it made.
// Usage: node faults.js BASE_URL STATE_DIR COUNT
// Writes STATE_DIR/produced.ndjson: one {"event_uuid"} per event made (after it was queued).
import * as fs from "node:fs";
import * as path from "node:path";

import * as game from "./contracts/game_events/game_events.js";

const [baseUrl, stateDir, countText] = process.argv.slice(2);
if (baseUrl === undefined || stateDir === undefined || countText === undefined) {
  throw new Error("usage: faults.js BASE_URL STATE_DIR COUNT");
}
const count = Number(countText);
fs.mkdirSync(stateDir, { recursive: true });
const producedPath = path.join(stateDir, "produced.ndjson");
const produced = fs.existsSync(producedPath)
  ? fs.readFileSync(producedPath, "utf8").split("\n").filter((line) => line.trim() !== "").length
  : 0;

const client = game.createClient({
  baseUrl,
  store: new game.FileStore(fs, path.join(stateDir, "client.json")),
  // Shorter than the proxy's delay: a slow answer is abandoned and the events sent again.
  timeoutMs: 1500,
  maxAttempts: 3,
  baseBackoffMs: 50,
  maxBackoffMs: 500,
});

/** One flush; a failure (the server down, every retry lost) leaves the events queued. */
async function flush(): Promise<void> {
  try {
    await client.flush();
  } catch {
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

for (let n = produced; n < count; n += 1) {
  const event = game.makeLoginEvent({ event_id: `ts-${n}`, updated_at: game.localWallClock(), event_data: "fault test" });
  // Queued (and persisted) first, then logged: a kill between the two leaves an event that was
  // made but not logged, never one logged but lost.
  client.enqueue(event);
  fs.appendFileSync(producedPath, JSON.stringify({ event_uuid: event.event_uuid }) + "\n");
  if (n % 7 === 6) await flush();
}
const deadline = Date.now() + 120_000;
while (client.queued > 0 && Date.now() < deadline) await flush();
console.log(`typescript producer: ${count} made, ${client.queued} still queued`);
process.exit(client.queued === 0 ? 0 : 1);
