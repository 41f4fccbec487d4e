// One contract, one verdict, on the client: every corpus case the typed API can express (its
// body decodes into the generated types) gets exactly the labelled codes from `validate`, also
// after an encode/decode round trip; every valid case is expressible; and a case the types
// cannot hold is one whose labels are all about JSON shape (wrong types, unknown or duplicate
// keys, missing required fields, unknown variants, unparseable timestamps, non-object bodies).
// Usage: node conformance.js CORPUS_DIR
import * as fs from "node:fs";
import * as path from "node:path";

import * as all_types from "./contracts/all_types/all_types.js";
import * as game_events from "./contracts/game_events/game_events.js";
import * as match_events from "./contracts/match_events/match_events.js";
import * as minimal from "./contracts/minimal/minimal.js";
import * as player_profiles from "./contracts/player_profiles/player_profiles.js";
import { assert, assertEqual, finish, test } from "./harness.js";

interface Module<E> {
  decode(text: string): E;
  encode(event: E): string;
  validate(event: E, now?: Date): { code: string }[];
}

// The ingest time the labels assume (contract_corpus::REFERENCE_TIME_MICROS).
const REFERENCE_TIME = new Date(1_708_603_200_000);

/** Codes only the JSON shape can produce: the types make them impossible to write. */
const SHAPE_CODES = ["missing", "wrong_type", "unknown_field", "duplicate_field", "invalid_json"];

const modules: Record<string, Module<never>> = {
  all_types: all_types as unknown as Module<never>,
  game_events: game_events as unknown as Module<never>,
  match_events: match_events as unknown as Module<never>,
  minimal: minimal as unknown as Module<never>,
  player_profiles: player_profiles as unknown as Module<never>,
};

function codes<E>(module: Module<E>, event: E): string[] {
  return [...new Set(module.validate(event, REFERENCE_TIME).map((v) => v.code))].sort();
}

const corpus = process.argv[2];
if (corpus === undefined) throw new Error("usage: conformance.js CORPUS_DIR");
const report: string[] = [];
for (const [name, module] of Object.entries(modules)) {
  const file = path.join(corpus, `${name}.ndjson`);
  const cases = fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as { name: string; body: string; codes: string[] });
  let expressible = 0;
  const refused: string[] = [];
  for (const c of cases) {
    let event: never;
    try {
      event = module.decode(c.body);
    } catch (error) {
      await test(`${name}: ${c.name}: not expressible only for shape errors`, () => {
        assert(error instanceof Error && error.name === "DecodeError", `decode threw ${String(error)}`);
        assert(c.codes.length > 0, "a valid event cannot be written with the types");
        const allowed = new Set(SHAPE_CODES);
        // An unknown variant (`one_of` on the discriminator) or an unparseable timestamp
        // (`invalid_format`) cannot be written either: the discriminator is a literal type and
        // timestamps are `Date`s.
        if (error.message.startsWith("unknown ")) allowed.add("one_of");
        if (error.message.includes("timestamp")) allowed.add("invalid_format");
        const other = c.codes.filter((code) => !allowed.has(code));
        assert(other.length === 0, `labels ${c.codes.join(",")} are not shape errors (${error.message})`);
      });
      refused.push(`${c.name} (${c.codes.join(", ")})`);
      continue;
    }
    expressible += 1;
    await test(`${name}: ${c.name}`, () => {
      const expected = [...new Set(c.codes)].sort();
      assertEqual(codes(module, event), expected, "codes");
      const again = module.decode(module.encode(event));
      assertEqual(codes(module, again), expected, "codes after encode/decode");
    });
  }
  report.push(`${name}: ${expressible} of ${cases.length} cases expressible; not expressible: ${refused.length}`);
}
for (const line of report) console.log(`# ${line}`);
finish("typescript conformance");
