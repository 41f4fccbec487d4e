// The client runtime every generated contract module imports: the server's violation
// vocabulary, exact readers for JSON (decimals and longs keep their digits), timestamp
// formats, guest identity, retry, the persistent queue and the sender. No dependency beyond
// the platform: it runs in browsers and in Node 18+ (global `fetch`).

/** What a broken rule does, as the server decides it (the strictest one wins). */
export type Policy = "reject" | "quarantine" | "warn";

/** One broken rule: the same code, path, policy and message the server reports. */
export interface Violation {
  code: string;
  path: string;
  policy: Policy;
  message: string;
}

/** The server's verdict for a list of violations. */
export function verdictOf(violations: readonly Violation[]): "accept" | "quarantine" | "reject" {
  if (violations.some((v) => v.policy === "reject")) return "reject";
  if (violations.some((v) => v.policy === "quarantine")) return "quarantine";
  return "accept";
}

/** Collects violations with the current JSON path, as the server's validator does. */
export class Checker {
  readonly violations: Violation[] = [];
  private readonly segments: (string | number)[] = [];

  enterKey(key: string): void {
    this.segments.push(key);
  }

  enterIndex(index: number): void {
    this.segments.push(index);
  }

  leave(): void {
    this.segments.pop();
  }

  /** `$.players[2].skill`; keys that are not identifiers are quoted: `$.scores["a b"]`. */
  pathOf(field: string | null): string {
    let path = "$";
    for (const segment of this.segments) {
      path = typeof segment === "number" ? `${path}[${segment}]` : pushKey(path, segment);
    }
    return field === null ? path : pushKey(path, field);
  }

  report(code: string, field: string | null, policy: Policy, message: string): void {
    this.violations.push({ code, path: this.pathOf(field), policy, message });
  }
}

function pushKey(path: string, key: string): string {
  if (/^[A-Za-z0-9_]+$/.test(key)) return `${path}.${key}`;
  let quoted = '"';
  for (const c of key) {
    const code = c.codePointAt(0) ?? 0;
    if (c === '"') quoted += '\\"';
    else if (c === "\\") quoted += "\\\\";
    else if (code < 0x20) quoted += `\\u${code.toString(16).padStart(4, "0")}`;
    else quoted += c;
  }
  return `${path}[${quoted}"]`;
}

/** Characters (Unicode scalar values), as every engine counts lengths. */
export function charLength(text: string): number {
  return Array.from(text).length;
}

/** A string quoted as Rust's `{:?}` quotes simple text (used in messages). */
export function quote(text: string): string {
  return JSON.stringify(text);
}

// ----- numbers -------------------------------------------------------------------------------

export const INT_MIN = -2147483648n;
export const INT_MAX = 2147483647n;
export const LONG_MIN = -9223372036854775808n;
export const LONG_MAX = 9223372036854775807n;

/** An integer in `min..=max` (integral numbers count, as in JSON Schema), or null after reporting. */
export function checkInteger(
  cx: Checker,
  field: string | null,
  value: number | bigint,
  min: bigint,
  max: bigint,
  name: string,
): bigint | null {
  let n: bigint;
  if (typeof value === "bigint") {
    n = value;
  } else if (Number.isFinite(value) && Number.isInteger(value)) {
    n = BigInt(value);
  } else {
    cx.report("wrong_type", field, "reject", "expected integer, found number");
    return null;
  }
  if (n < min || n > max) {
    cx.report("out_of_range", field, "reject", `does not fit ${name} (${min}..=${max})`);
    return null;
  }
  return n;
}

const FLOAT_MAX = 3.4028234663852886e38;

/** A finite number (a float rounded to 32 bits), or null after reporting. */
export function checkNumber(cx: Checker, field: string | null, value: number, isFloat: boolean): number | null {
  if (!Number.isFinite(value)) {
    cx.report("wrong_type", field, "reject", "expected number, found a non-finite value");
    return null;
  }
  if (isFloat) {
    if (Math.abs(value) > FLOAT_MAX) {
      cx.report("out_of_range", field, "reject", "does not fit a float");
      return null;
    }
    return Math.fround(value);
  }
  return value;
}

type DecimalResult = bigint | "syntax" | "too_precise" | "too_large";

/** `-?digits(.digits)?(e[+-]?digits)?` exactly, as the unscaled value at `scale`. */
export function parseDecimal(text: string, precision: number, scale: number): DecimalResult {
  const m = /^(-?)([0-9]+)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?$/.exec(text);
  if (m === null) return "syntax";
  const negative = m[1] === "-";
  const intPart = m[2] ?? "";
  const fracPart = m[3] ?? "";
  const exponent = m[4] === undefined ? 0 : Number.parseInt(m[4], 10);
  const digits = `${intPart}${fracPart}`.replace(/^0+/, "");
  const point = exponent - fracPart.length + scale;
  let unscaled: string;
  if (point >= 0) {
    unscaled = digits === "" ? "" : digits + "0".repeat(Math.min(point, 80));
  } else {
    const drop = -point;
    const keep = drop >= digits.length ? "" : digits.slice(0, digits.length - drop);
    const dropped = drop >= digits.length ? digits : digits.slice(digits.length - drop);
    if (/[^0]/.test(dropped)) return "too_precise";
    unscaled = keep;
  }
  if (unscaled.length > precision) return "too_large";
  const value = unscaled === "" ? 0n : BigInt(unscaled);
  return negative ? -value : value;
}

/** A decimal given as text: the unscaled value, or null after reporting. */
export function checkDecimal(
  cx: Checker,
  field: string | null,
  text: string,
  precision: number,
  scale: number,
): bigint | null {
  const parsed = parseDecimal(text, precision, scale);
  if (parsed === "syntax") {
    cx.report("invalid_format", field, "reject", "is not a decimal number");
    return null;
  }
  if (parsed === "too_precise") {
    cx.report("out_of_range", field, "reject", `more than ${scale} digits after the point`);
    return null;
  }
  if (parsed === "too_large") {
    cx.report("out_of_range", field, "reject", `does not fit decimal(${precision},${scale})`);
    return null;
  }
  return parsed;
}

// ----- dates, timestamps, uuids -----------------------------------------------------------------

/**
 * A new UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits, so ids sort by time.
 * Events get one when they are made, and keep it through retries and the queue: the server
 * stores an event whose answer was lost once, however often it is sent.
 */
export function uuidv7(): string {
  const bytes = new Uint8Array(16);
  const crypto = (globalThis as { crypto?: { getRandomValues?: (array: Uint8Array) => unknown } }).crypto;
  if (crypto?.getRandomValues !== undefined) {
    crypto.getRandomValues(bytes);
  } else {
    for (let i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
  }
  let ms = Date.now();
  for (let i = 5; i >= 0; i--) {
    bytes[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x70;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** One piece of a `timestamp` format: `%Y`, `%m`, `%d`, `%H`, `%M`, `%S`, `%.f`, or literal text. */
export type FormatItem = "%Y" | "%m" | "%d" | "%H" | "%M" | "%S" | "%.f" | { literal: string };

/** Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

function daysInMonth(year: number, month: number): number {
  if ([1, 3, 5, 7, 8, 10, 12].includes(month)) return 31;
  if ([4, 6, 9, 11].includes(month)) return 30;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  return leap ? 29 : 28;
}

function digitsAt(text: string, at: number, n: number): number | null {
  const slice = text.slice(at, at + n);
  return slice.length === n && /^[0-9]+$/.test(slice) ? Number.parseInt(slice, 10) : null;
}

/**
 * Parses `text` against `items` (the whole text): microseconds since the epoch read as UTC,
 * or null. The same strict rules as the server: fixed widths, real calendar days, no second 60.
 */
export function parseTimestamp(text: string, items: readonly FormatItem[]): number | null {
  let at = 0;
  let [year, month, day, hour, minute, second, micros] = [1970, 1, 1, 0, 0, 0, 0];
  for (const item of items) {
    if (typeof item === "string") {
      const spec = item.slice(1);
      if (spec === ".f") {
        if (text[at] === ".") {
          let end = at + 1;
          while (end < text.length && /[0-9]/.test(text[end] ?? "")) end += 1;
          const n = end - at - 1;
          if (n === 0 || n > 9) return null;
          const kept = Math.min(n, 6);
          micros = Number.parseInt(text.slice(at + 1, at + 1 + kept), 10) * 10 ** (6 - kept);
          at = end;
        }
        continue;
      }
      const width = spec === "Y" ? 4 : 2;
      const value = digitsAt(text, at, width);
      if (value === null) return null;
      at += width;
      if (spec === "Y") year = value;
      else if (spec === "m") month = value;
      else if (spec === "d") day = value;
      else if (spec === "H") hour = value;
      else if (spec === "M") minute = value;
      else second = value;
    } else {
      if (text.slice(at, at + item.literal.length) !== item.literal) return null;
      at += item.literal.length;
    }
  }
  if (at !== text.length || month < 1 || month > 12 || day === 0 || day > daysInMonth(year, month)) return null;
  if (hour > 23 || minute > 59 || second > 59) return null;
  const days = daysFromCivil(year, month, day);
  return (days * 86_400 + hour * 3600 + minute * 60 + second) * 1_000_000 + micros;
}

/** `YYYY-MM-DD` as days since the epoch, or null. */
export function parseDate(text: string): number | null {
  const micros = parseTimestamp(text, ["%Y", { literal: "-" }, "%m", { literal: "-" }, "%d"]);
  return micros === null ? null : Math.floor(micros / 86_400_000_000);
}

/** RFC 3339 with `Z` or an offset: microseconds UTC, or null. */
export function parseRfc3339(text: string): number | null {
  if (text.length < 20) return null;
  const sep = text[10] ?? "";
  if (!["T", "t", " "].includes(sep)) return null;
  let local: string;
  let offset = 0;
  const last = text[text.length - 1];
  if (last === "Z" || last === "z") {
    local = text.slice(0, -1);
  } else {
    const zone = text.length - 6;
    const sign = text[zone] === "+" ? 1 : text[zone] === "-" ? -1 : 0;
    if (sign === 0 || text[zone + 3] !== ":") return null;
    const h = digitsAt(text, zone + 1, 2);
    const m = digitsAt(text, zone + 4, 2);
    if (h === null || m === null || h > 23 || m > 59) return null;
    local = text.slice(0, zone);
    offset = sign * (h * 3600 + m * 60);
  }
  const dash = { literal: "-" };
  const colon = { literal: ":" };
  const items: FormatItem[] = ["%Y", dash, "%m", dash, "%d", { literal: sep }, "%H", colon, "%M", colon, "%S", "%.f"];
  const micros = parseTimestamp(local, items);
  return micros === null ? null : micros - offset * 1_000_000;
}

/** Formats a wall-clock time (the `Date`'s UTC fields) with a contract's format. */
export function formatTimestamp(value: Date, items: readonly FormatItem[]): string {
  const pad = (n: number, width: number): string => String(n).padStart(width, "0");
  let out = "";
  for (const item of items) {
    switch (item) {
      case "%Y":
        out += pad(value.getUTCFullYear(), 4);
        break;
      case "%m":
        out += pad(value.getUTCMonth() + 1, 2);
        break;
      case "%d":
        out += pad(value.getUTCDate(), 2);
        break;
      case "%H":
        out += pad(value.getUTCHours(), 2);
        break;
      case "%M":
        out += pad(value.getUTCMinutes(), 2);
        break;
      case "%S":
        out += pad(value.getUTCSeconds(), 2);
        break;
      case "%.f":
        if (value.getUTCMilliseconds() !== 0) out += `.${pad(value.getUTCMilliseconds(), 3)}`;
        break;
      default:
        out += item.literal;
    }
  }
  return out;
}

/**
 * The local wall-clock time as a `Date` whose UTC fields read as local time: what a `timestamp`
 * field (no zone) holds when the contract asks for the client's local time.
 */
export function localWallClock(now: Date = new Date()): Date {
  return new Date(now.getTime() - now.getTimezoneOffset() * 60_000);
}

/** A `Date` as microseconds since the epoch, or null when it is not a valid time. */
export function dateMicros(cx: Checker, field: string | null, value: Date): number | null {
  const ms = value.getTime();
  if (!Number.isFinite(ms) || value.getUTCFullYear() < 0 || value.getUTCFullYear() > 9999) {
    cx.report("invalid_format", field, "reject", "not a valid time (years 0000 to 9999)");
    return null;
  }
  return ms * 1000;
}

/** A `date` (`YYYY-MM-DD`): days since the epoch, or null after reporting. */
export function checkDate(cx: Checker, field: string | null, text: string): number | null {
  const days = parseDate(text);
  if (days === null) cx.report("invalid_format", field, "reject", "is not a date (YYYY-MM-DD)");
  return days;
}

/** A canonical UUID (any case), or false after reporting. */
export function checkUuid(cx: Checker, field: string | null, text: string): boolean {
  const ok = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(text);
  if (!ok) cx.report("invalid_format", field, "reject", "is not a UUID");
  return ok;
}

// ----- JSON ----------------------------------------------------------------------------------

/** A JSON number with the digits it was written with. */
export class JsonNumber {
  constructor(readonly text: string) {}
}

/** A JSON value; objects keep their keys in order and refuse duplicates. */
export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | Map<string, JsonValue>;

/** A body that cannot be expressed with the contract's types. */
export class DecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DecodeError";
  }
}

/** Parses JSON exactly: numbers keep their text, a duplicate key is a `DecodeError`. */
export function parseJson(text: string): JsonValue {
  let at = 0;
  const fail = (what: string): never => {
    throw new DecodeError(`invalid JSON at ${at}: ${what}`);
  };
  const ws = (): void => {
    while (at < text.length && " \t\n\r".includes(text[at] ?? "")) at += 1;
  };
  const value = (): JsonValue => {
    ws();
    const c = text[at];
    if (c === "{") {
      at += 1;
      const map = new Map<string, JsonValue>();
      ws();
      if (text[at] === "}") {
        at += 1;
        return map;
      }
      for (;;) {
        ws();
        if (text[at] !== '"') fail("expected a key");
        const key = string();
        if (map.has(key)) throw new DecodeError(`duplicate key ${quote(key)}`);
        ws();
        if (text[at] !== ":") fail("expected ':'");
        at += 1;
        map.set(key, value());
        ws();
        if (text[at] === ",") {
          at += 1;
        } else if (text[at] === "}") {
          at += 1;
          return map;
        } else {
          fail("expected ',' or '}'");
        }
      }
    }
    if (c === "[") {
      at += 1;
      const items: JsonValue[] = [];
      ws();
      if (text[at] === "]") {
        at += 1;
        return items;
      }
      for (;;) {
        items.push(value());
        ws();
        if (text[at] === ",") {
          at += 1;
        } else if (text[at] === "]") {
          at += 1;
          return items;
        } else {
          fail("expected ',' or ']'");
        }
      }
    }
    if (c === '"') return string();
    for (const [word, result] of [["true", true], ["false", false], ["null", null]] as const) {
      if (text.startsWith(word, at)) {
        at += word.length;
        return result;
      }
    }
    const m = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/.exec(text.slice(at));
    if (m === null) return fail("expected a value");
    at += m[0].length;
    return new JsonNumber(m[0]);
  };
  const string = (): string => {
    const m = /^"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/.exec(text.slice(at));
    if (m === null) return fail("bad string");
    at += m[0].length;
    return JSON.parse(m[0]) as string;
  };
  const result = value();
  ws();
  if (at !== text.length) fail("trailing characters");
  return result;
}

function kind(value: JsonValue | undefined): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (value instanceof JsonNumber) return "number";
  if (value instanceof Map) return "object";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

function expected(what: string, value: JsonValue | undefined): never {
  throw new DecodeError(`expected ${what}, found ${kind(value)}`);
}

/** Readers from parsed JSON into the client's types; each throws `DecodeError` on a mismatch. */
export const read = {
  /** An object whose keys are all `allowed` (null: any key, the contract drops unknown ones). */
  object(value: JsonValue | undefined, allowed: readonly string[] | null): Map<string, JsonValue> {
    if (!(value instanceof Map)) return expected("object", value);
    for (const key of value.keys()) {
      if (allowed !== null && !allowed.includes(key)) throw new DecodeError(`${quote(key)} is not a field here`);
    }
    return value;
  },
  required<T>(value: JsonValue | undefined, reader: (v: JsonValue) => T): T {
    if (value === undefined || value === null) return expected("a value", value);
    return reader(value);
  },
  optional<T>(value: JsonValue | undefined, reader: (v: JsonValue) => T): T | undefined {
    return value === undefined || value === null ? undefined : reader(value);
  },
  string(value: JsonValue): string {
    return typeof value === "string" ? value : expected("string", value);
  },
  boolean(value: JsonValue): boolean {
    return typeof value === "boolean" ? value : expected("boolean", value);
  },
  number(value: JsonValue): number {
    return value instanceof JsonNumber ? Number(value.text) : expected("number", value);
  },
  integer(value: JsonValue): number {
    const n = read.number(value);
    return Number.isInteger(n) ? n : expected("integer", value);
  },
  long(value: JsonValue): number | bigint {
    if (value instanceof JsonNumber && /^-?[0-9]+$/.test(value.text)) {
      const n = BigInt(value.text);
      return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
    }
    return read.integer(value);
  },
  decimal(value: JsonValue): string {
    if (value instanceof JsonNumber) return value.text;
    return typeof value === "string" ? value : expected("number or numeric string", value);
  },
  timestamp(items: readonly FormatItem[]): (value: JsonValue) => Date {
    return (value) => {
      const micros = parseTimestamp(read.string(value), items);
      if (micros === null || micros % 1000 !== 0) throw new DecodeError("not a timestamp a Date can hold");
      return new Date(micros / 1000);
    };
  },
  timestamptz(value: JsonValue): Date {
    const micros = parseRfc3339(read.string(value));
    if (micros === null || micros % 1000 !== 0) throw new DecodeError("not a timestamp a Date can hold");
    return new Date(micros / 1000);
  },
  list<T>(reader: (v: JsonValue) => T): (value: JsonValue) => T[] {
    return (value) => (Array.isArray(value) ? value.map(reader) : expected("array", value));
  },
  map<T>(reader: (v: JsonValue) => T): (value: JsonValue) => Record<string, T> {
    return (value) => {
      if (!(value instanceof Map)) return expected("object", value);
      const out: Record<string, T> = {};
      for (const [k, v] of value) out[k] = reader(v);
      return out;
    };
  },
  nullable<T>(reader: (v: JsonValue) => T): (value: JsonValue) => T | null {
    return (value) => (value === null ? null : reader(value));
  },
};

/** Writers of JSON text; strings are escaped by `JSON.stringify` (quotes, backslashes, controls). */
export const write = {
  string: (value: string): string => JSON.stringify(value),
  boolean: (value: boolean): string => (value ? "true" : "false"),
  number: (value: number): string => JSON.stringify(value),
  long: (value: number | bigint): string => (typeof value === "bigint" ? value.toString() : JSON.stringify(value)),
  timestamp:
    (items: readonly FormatItem[]) =>
    (value: Date): string =>
      JSON.stringify(formatTimestamp(value, items)),
  timestamptz: (value: Date): string => JSON.stringify(value.toISOString()),
  list:
    <T>(writer: (v: T) => string) =>
    (values: readonly T[]): string =>
      `[${values.map(writer).join(",")}]`,
  map:
    <T>(writer: (v: T) => string) =>
    (values: Readonly<Record<string, T>>): string =>
      `{${Object.keys(values)
        .map((k) => `${JSON.stringify(k)}:${writer(values[k] as T)}`)
        .join(",")}}`,
  nullable:
    <T>(writer: (v: T) => string) =>
    (value: T | null): string =>
      value === null ? "null" : writer(value),
};

// ----- the contract as the client sees it ----------------------------------------------------

/** What a generated module tells the client about its contract. */
export interface ContractInfo<E> {
  readonly name: string;
  readonly version: string;
  readonly route: string;
  readonly batchRoute: string | null;
  readonly maxBodyBytes: number;
  readonly maxBatchEvents: number;
  validate(event: E, now?: Date): Violation[];
  encode(event: E): string;
}

/** An event the client refused before sending it: it breaks a rule the server would reject. */
export class ContractViolationError extends Error {
  constructor(readonly violations: Violation[]) {
    super(violations.map((v) => `${v.path}: ${v.code}: ${v.message}`).join("; "));
    this.name = "ContractViolationError";
  }
}

// ----- storage ---------------------------------------------------------------------------------

/** Where the client keeps its identity and queue: `localStorage` in a browser, a file in Node. */
export interface KeyValueStore {
  get(key: string): string | null;
  set(key: string, value: string): void;
}

/** Keeps nothing across restarts (tests, or when persistence is not wanted). */
export class MemoryStore implements KeyValueStore {
  private readonly values = new Map<string, string>();
  get(key: string): string | null {
    return this.values.get(key) ?? null;
  }
  set(key: string, value: string): void {
    this.values.set(key, value);
  }
}

/** Web Storage (`localStorage`) as the client's store. */
export function webStorage(storage: {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}): KeyValueStore {
  return {
    get: (key) => storage.getItem(key),
    set: (key, value) => storage.setItem(key, value),
  };
}

/** The subset of `node:fs` the file store needs (passed in, so browsers never import it). */
export interface FileSystem {
  existsSync(path: string): boolean;
  readFileSync(path: string, encoding: "utf8"): string;
  writeFileSync(path: string, data: string): void;
  renameSync(from: string, to: string): void;
}

/** One JSON file, replaced atomically (write then rename) on every change. */
export class FileStore implements KeyValueStore {
  private values: Record<string, string>;
  constructor(
    private readonly fs: FileSystem,
    private readonly path: string,
  ) {
    this.values = fs.existsSync(path) ? (JSON.parse(fs.readFileSync(path, "utf8")) as Record<string, string>) : {};
  }
  get(key: string): string | null {
    return this.values[key] ?? null;
  }
  set(key: string, value: string): void {
    this.values[key] = value;
    const tmp = `${this.path}.tmp`;
    this.fs.writeFileSync(tmp, JSON.stringify(this.values));
    this.fs.renameSync(tmp, this.path);
  }
}

// ----- the client ------------------------------------------------------------------------------

/** A token from the game's own sign-in, and when it expires if the game knows. */
export interface ProvidedToken {
  /** Sent as the `Authorization` header, as given (`serve` takes it with or without `Bearer `). */
  token: string;
  /** Asked again `refreshMarginSeconds` before; without it, the token is used until a 401. */
  expiresAt?: Date;
}

/**
 * The game's sign-in: its backend's access token for the player, in place of the guest login.
 * `forceRefresh` is true after the server refused the last token (401): return a new token, not
 * a cached one. A provider that throws fails `send`; `sendBatch` and `flush` retry it as a
 * network error (a flush keeps its events queued).
 */
export type TokenProvider = (forceRefresh: boolean) => Promise<ProvidedToken>;

export interface ClientOptions {
  /** Base of the API, ending in `/`: `https://host/prod/`. Routes are resolved against its origin. */
  baseUrl: string;
  /** Base of the identity service (`login-as-guest`, `refresh-access-token`); default `baseUrl`. */
  loginBaseUrl?: string;
  /** Identity and queue storage; default: memory (nothing survives a restart). */
  store?: KeyValueStore;
  /** Queue bound in events; the oldest are dropped first when full (and counted). Default 1000. */
  maxQueuedEvents?: number;
  /** Attempts per request on network errors and 5xx (never on 4xx). Default 5. */
  maxAttempts?: number;
  /**
   * A request not answered within this many ms is abandoned and retried (a network error).
   * Default 30000. The event keeps its id, so a server that did store it answers the retry as
   * it answered the first and stores it once.
   */
  timeoutMs?: number;
  /** First backoff in ms, doubled per attempt up to `maxBackoffMs`, with full jitter. Default 200. */
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  /** Refresh the token this many seconds before it expires. Default 60. */
  refreshMarginSeconds?: number;
  /**
   * The game's own sign-in (docs/clients.md): its tokens are sent instead of a guest's, so the
   * server's `player_id` is the game's player. Default: the guest login.
   */
  tokenProvider?: TokenProvider;
  /** Extra query for `login-as-guest`, e.g. `{ scope: "authenticated" }`. */
  loginQuery?: Record<string, string>;
  fetch?: typeof fetch;
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

/** The answer to one send. */
export interface SendResult {
  status: number;
  body: unknown;
}

/** What `flush` did: events the server answered for (`sent`), by answer, and what is left queued. */
export interface FlushResult {
  sent: number;
  accepted: number;
  quarantined: number;
  rejected: number;
  /** Taken by the deployed API (API Gateway → Kinesis), which gives no verdict (Glue judges later). */
  added: number;
  remaining: number;
}

/**
 * The most events one batch request carries: Kinesis `PutRecords` takes 500 records, so the
 * deployed API's batch model refuses more (`serve` takes up to the contract's `max_batch_events`).
 */
export const MAX_EVENTS_PER_BATCH_REQUEST = 500;

/**
 * The most bytes one batch request's body (the JSON array) weighs, unless a single event is
 * larger: one `PutRecords` call takes 5 MiB, and the deployed API puts each event base64-encoded
 * (4/3 of its size) in an envelope; API Gateway takes 10 MB per request, `serve`
 * `max_body_bytes × max_batch_events` (at most 16 MiB).
 */
export const MAX_BATCH_REQUEST_BYTES = 3_000_000;

const utf8 = new TextEncoder();

/**
 * How many of `bodies` (from the first) one batch request carries: at most `maxEvents`, and no
 * more than `maxBytes` of JSON array (always at least one event).
 */
export function batchLength(bodies: readonly string[], maxEvents: number, maxBytes: number): number {
  let bytes = 1; // `[` and `]`, less the comma the first event does not need
  let n = 0;
  for (const body of bodies) {
    if (n >= maxEvents) break;
    const next = bytes + utf8.encode(body).length + 1;
    if (n > 0 && next > maxBytes) break;
    bytes = next;
    n += 1;
  }
  return n;
}

/**
 * What became of one event of a batch. `accepted`, `quarantined`, `rejected`: `serve`'s verdict.
 * `added`: the deployed API put it in the stream (its verdict comes later, from the Glue job).
 * `failed`: not acknowledged after the last attempt (or not sent: an earlier request failed).
 */
export type BatchOutcome = "accepted" | "quarantined" | "rejected" | "added" | "failed";

export interface BatchEventResult {
  outcome: BatchOutcome;
  /** Why it failed: the deployed API's error code and message, or the last failure. */
  error?: string;
}

/** What `sendBatch` did: counts by outcome, and one result per event in the order given. */
export interface BatchResult {
  /** Events the server answered for (every outcome but `failed`). */
  sent: number;
  accepted: number;
  quarantined: number;
  rejected: number;
  added: number;
  failed: number;
  results: BatchEventResult[];
}

/**
 * A batch not every event of which was acknowledged: `result` says which were, `failure` why not
 * (an `HttpError`: a 4xx, or the last 5xx; or the network error).
 */
export class BatchError extends Error {
  constructor(
    readonly result: BatchResult,
    readonly failure: unknown,
  ) {
    super(`${result.failed} of ${result.results.length} events not sent: ${failure instanceof Error ? failure.message : String(failure)}`);
    this.name = "BatchError";
  }
}

/**
 * Reads a batch answer as one result per event of the request (`count` of them), whichever
 * server gave it: `serve`'s `{"results": [{"index", "verdict", ...}]}` or the deployed API's
 * `{"results": [{"index", "result": "added" | "failed", "error", "message"}]}`. Null when the
 * answer has no such list (a plain 5xx, a proxy's page).
 */
export function readBatchResults(body: unknown, count: number): BatchEventResult[] | null {
  const results = (body as { results?: unknown } | null)?.results;
  if (body === null || typeof body !== "object" || !Array.isArray(results) || results.length !== count) return null;
  const out: (BatchEventResult | undefined)[] = new Array<BatchEventResult | undefined>(count).fill(undefined);
  for (const [position, entry] of results.entries()) {
    const e = (entry ?? {}) as { index?: unknown; verdict?: unknown; result?: unknown; error?: unknown; message?: unknown };
    const index = typeof e.index === "number" && Number.isInteger(e.index) ? e.index : position;
    if (index < 0 || index >= count || out[index] !== undefined) return null;
    if (e.verdict === "accept") out[index] = { outcome: "accepted" };
    else if (e.verdict === "quarantine") out[index] = { outcome: "quarantined" };
    else if (e.verdict === "reject") out[index] = { outcome: "rejected" };
    else if (e.result === "added") out[index] = { outcome: "added" };
    else if (e.result === "failed") out[index] = { outcome: "failed", error: `${String(e.error ?? "")}: ${String(e.message ?? "")}` };
    else return null;
  }
  return out.every((r) => r !== undefined) ? (out as BatchEventResult[]) : null;
}

function emptyBatchResult(): BatchResult {
  return { sent: 0, accepted: 0, quarantined: 0, rejected: 0, added: 0, failed: 0, results: [] };
}

/** Counts one event's outcome. */
function tally(result: { sent: number; accepted: number; quarantined: number; rejected: number; added: number }, outcome: BatchOutcome): void {
  if (outcome === "failed") return;
  result.sent += 1;
  result[outcome] += 1;
}

interface Identity {
  user_id: string;
  guest_secret: string;
}

interface Tokens {
  auth_token: string;
  refresh_token: string;
  /** ms since the epoch. */
  auth_expires_at: number;
  refresh_expires_at: number;
}

interface Queue {
  next: number;
  dropped: number;
  items: { id: number; body: string }[];
}

/** An HTTP answer the client will not retry (4xx), or the last one after every retry. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`HTTP ${status}: ${typeof body === "string" ? body : JSON.stringify(body)}`);
    this.name = "HttpError";
  }
}

/**
 * Sends one contract's events: validates each locally (an event the server would reject is
 * refused and never sent), signs in with the game's token provider or as a guest (keeping the
 * identity), refreshes the token before it expires, retries network errors and 5xx with exponential backoff and jitter, and queues
 * events in a bounded persistent queue flushed in batches.
 */
export class ContractClient<E> {
  private readonly store: KeyValueStore;
  private readonly fetchFn: typeof fetch;
  private readonly random: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly now: () => number;
  private tokens: Tokens | null = null;
  /** The provider's last token (ms since the epoch), kept in memory only: the game owns it. */
  private provided: { token: string; expiresAt: number | null } | null = null;
  /** Set by a 401: the provider is asked for a new token, not its cached one. */
  private forceRefresh = false;
  private flushing: Promise<FlushResult> | null = null;

  constructor(
    readonly contract: ContractInfo<E>,
    private readonly options: ClientOptions,
  ) {
    this.store = options.store ?? new MemoryStore();
    this.fetchFn = options.fetch ?? ((input, init) => fetch(input, init));
    this.random = options.random ?? Math.random;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.now = options.now ?? Date.now;
    const saved = this.store.get(this.key("tokens"));
    this.tokens = saved === null ? null : (JSON.parse(saved) as Tokens);
  }

  private key(name: string): string {
    return `contractc.${this.contract.name}.${name}`;
  }

  /** The guest's `user_id`, once logged in. */
  get userId(): string | null {
    const saved = this.store.get(this.key("identity"));
    return saved === null ? null : (JSON.parse(saved) as Identity).user_id;
  }

  /** Events waiting in the queue, and how many were dropped because it was full. */
  get queued(): number {
    return this.loadQueue().items.length;
  }

  get dropped(): number {
    return this.loadQueue().dropped;
  }

  /** Validates locally against the contract; throws `ContractViolationError` on a rejection. */
  check(event: E): Violation[] {
    const violations = this.contract.validate(event, new Date(this.now()));
    if (verdictOf(violations) === "reject") throw new ContractViolationError(violations);
    return violations;
  }

  /** Sends one event now (single-event route); throws `HttpError` on a 4xx or after the last retry. */
  async send(event: E): Promise<SendResult> {
    this.check(event);
    return this.post(this.contract.route, "application/json", this.contract.encode(event));
  }

  /**
   * Sends events now to the batch route: JSON arrays of at most `maxBatchEvents` (and 500) events
   * and 3 MB per request. Events the server did not acknowledge (a network error, a 5xx, or a record the
   * deployed API failed) are sent again, alone, with backoff; an acknowledged one never is.
   * Throws `BatchError` (its `result` says what became of each event) when some event was still
   * not acknowledged after the last attempt or on a 4xx.
   */
  async sendBatch(events: readonly E[]): Promise<BatchResult> {
    for (const event of events) this.check(event);
    const route = this.batchRoute();
    const bodies = events.map((e) => this.contract.encode(e));
    const result = emptyBatchResult();
    let failure: unknown = null;
    for (let start = 0; start < bodies.length; ) {
      const chunk = bodies.slice(start, start + this.batchLength(bodies.slice(start)));
      start += chunk.length;
      const outcome =
        failure === null
          ? await this.deliver(route, chunk, () => undefined)
          : { results: chunk.map((): BatchEventResult => ({ outcome: "failed", error: "not sent" })), failure };
      for (const r of outcome.results) {
        tally(result, r.outcome);
        if (r.outcome === "failed") result.failed += 1;
        result.results.push(r);
      }
      failure = outcome.failure;
    }
    if (failure !== null) throw new BatchError(result, failure);
    return result;
  }

  /** Validates and queues an event (persisted); `flush` sends the queue. */
  enqueue(event: E): void {
    this.check(event);
    const queue = this.loadQueue();
    const limit = this.options.maxQueuedEvents ?? 1000;
    queue.items.push({ id: queue.next, body: this.contract.encode(event) });
    queue.next += 1;
    while (queue.items.length > limit) {
      queue.items.shift();
      queue.dropped += 1;
    }
    this.saveQueue(queue);
  }

  /**
   * Sends the queue in batches. Events leave the queue only once the server answered for them
   * (accepted, quarantined, or rejected: a rejected event would be rejected again); on a network
   * error or 5xx after the last retry they stay for the next flush.
   */
  flush(): Promise<FlushResult> {
    if (this.flushing === null) {
      this.flushing = this.flushQueue().finally(() => {
        this.flushing = null;
      });
    }
    return this.flushing;
  }

  /** Flushes before quitting; in a browser, call from `pagehide` (the queue survives anyway). */
  async close(): Promise<FlushResult> {
    return this.flush();
  }

  private async flushQueue(): Promise<FlushResult> {
    const result: FlushResult = { sent: 0, accepted: 0, quarantined: 0, rejected: 0, added: 0, remaining: 0 };
    const route = this.batchRoute();
    for (;;) {
      const items = this.loadQueue().items.slice(0, MAX_EVENTS_PER_BATCH_REQUEST);
      const batch = items.slice(0, this.batchLength(items.map((i) => i.body)));
      if (batch.length === 0) break;
      // Acknowledged events leave the queue as soon as their answer is in, before any retry of
      // the others: a crash in between never sends them twice.
      const outcome = await this.deliver(
        route,
        batch.map((i) => i.body),
        (done) => {
          const ids = new Set(done.map((k) => batch[k]?.id));
          const current = this.loadQueue();
          current.items = current.items.filter((i) => !ids.has(i.id));
          this.saveQueue(current);
        },
      );
      for (const r of outcome.results) tally(result, r.outcome);
      if (outcome.failure !== null) throw outcome.failure;
    }
    result.remaining = this.loadQueue().items.length;
    return result;
  }

  private batchRoute(): string {
    if (this.contract.batchRoute === null) throw new Error(`contract ${this.contract.name} has no batch route`);
    return this.contract.batchRoute;
  }

  /** How many of `bodies` the next batch request carries: within the contract's limits and the deployed API's. */
  private batchLength(bodies: readonly string[]): number {
    const events = Math.max(1, Math.min(this.contract.maxBatchEvents, MAX_EVENTS_PER_BATCH_REQUEST));
    const bytes = Math.min(MAX_BATCH_REQUEST_BYTES, this.contract.maxBodyBytes * events);
    return batchLength(bodies, events, bytes);
  }

  /**
   * Sends `bodies` (encoded events, at most `batchLength()`) as one JSON array, then what is not
   * acknowledged yet, until every event is or the attempts run out: a network error or a 5xx
   * without per-event results is retried whole, the events of a failed record alone, with the
   * backoff of `withRetry`; a 4xx stops (a 401 first re-authenticates once). `acknowledged` gets
   * the indexes of each answer's acknowledged events as it comes in. Never throws: `failure` is
   * the last failure when some event was not acknowledged, else null.
   */
  private async deliver(
    route: string,
    bodies: readonly string[],
    acknowledged: (indexes: number[]) => void,
  ): Promise<{ results: BatchEventResult[]; failure: unknown }> {
    const results: BatchEventResult[] = bodies.map(() => ({ outcome: "failed" }));
    let pending = bodies.map((_, i) => i);
    const attempts = this.options.maxAttempts ?? 5;
    let reauthenticated = false;
    let failure: unknown = null;
    for (let attempt = 1; ; attempt += 1) {
      let answer: SendResult | null = null;
      try {
        const token = await this.token();
        answer = await this.request(route, token, "application/json", `[${pending.map((i) => bodies[i]).join(",")}]`);
      } catch (error) {
        failure = error;
        // A login that failed was retried already: only a network error is worth another try.
        if (error instanceof HttpError) break;
      }
      if (answer !== null) {
        if (answer.status === 401 && !reauthenticated) {
          reauthenticated = true;
          this.forgetToken();
          attempt -= 1;
          continue;
        }
        if (answer.status !== 200 && answer.status < 500) {
          failure = new HttpError(answer.status, answer.body);
          break;
        }
        // A 200 without readable results acknowledged the whole request.
        let read = readBatchResults(answer.body, pending.length);
        if (read === null && answer.status === 200) read = pending.map((): BatchEventResult => ({ outcome: "added" }));
        if (read === null) {
          failure = new HttpError(answer.status, answer.body);
        } else {
          const done: number[] = [];
          const still: number[] = [];
          read.forEach((r, k) => {
            const i = pending[k] ?? 0;
            results[i] = r;
            (r.outcome === "failed" ? still : done).push(i);
          });
          if (done.length > 0) acknowledged(done);
          pending = still;
          if (still.length > 0) failure = new HttpError(answer.status, answer.body);
        }
      }
      if (pending.length === 0) return { results, failure: null };
      if (attempt >= attempts) break;
      await this.sleep(this.backoffMs(attempt));
    }
    const why = failure instanceof Error ? failure.message : String(failure);
    for (const i of pending) results[i] = { outcome: "failed", error: results[i]?.error ?? why };
    return { results, failure };
  }

  private loadQueue(): Queue {
    const saved = this.store.get(this.key("queue"));
    return saved === null ? { next: 0, dropped: 0, items: [] } : (JSON.parse(saved) as Queue);
  }

  private saveQueue(queue: Queue): void {
    this.store.set(this.key("queue"), JSON.stringify(queue));
  }

  private url(route: string): string {
    return new URL(route, this.options.baseUrl).toString();
  }

  private loginUrl(path: string): string {
    return new URL(path, this.options.loginBaseUrl ?? this.options.baseUrl).toString();
  }

  /** A signal that aborts a request after `timeoutMs` (none where `AbortSignal.timeout` is missing). */
  private deadline(): AbortSignal | undefined {
    return typeof AbortSignal !== "undefined" && typeof AbortSignal.timeout === "function"
      ? AbortSignal.timeout(this.options.timeoutMs ?? 30_000)
      : undefined;
  }

  /** One POST, no retry: the answer (any status), or throws on a network error. */
  private async request(route: string, token: string, contentType: string, body: string): Promise<SendResult> {
    return this.answerOf(
      await this.fetchFn(this.url(route), {
        method: "POST",
        headers: {
          Authorization: token,
          "Content-Type": contentType,
          "X-Contract-Version": this.contract.version,
        },
        body,
        signal: this.deadline(),
      }),
    );
  }

  /** A response's status and body (JSON when it parses, else the text). */
  private async answerOf(response: Response): Promise<SendResult> {
    const text = await response.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // a plain-text answer stays text
    }
    return { status: response.status, body };
  }

  /** The wait before attempt `attempt + 1`: full jitter under a doubling ceiling. */
  private backoffMs(attempt: number): number {
    const base = this.options.baseBackoffMs ?? 200;
    const cap = this.options.maxBackoffMs ?? 10_000;
    return Math.floor(this.random() * Math.min(cap, base * 2 ** (attempt - 1)));
  }

  /** One request with retries on network errors and 5xx; 401 once re-authenticates. */
  private async post(route: string, contentType: string, body: string): Promise<SendResult> {
    let reauthenticated = false;
    for (;;) {
      const token = await this.token();
      const answer = await this.withRetry(() =>
        this.fetchFn(this.url(route), {
          method: "POST",
          headers: {
            Authorization: token,
            "Content-Type": contentType,
            "X-Contract-Version": this.contract.version,
          },
          body,
          signal: this.deadline(),
        }),
      );
      if (answer.status === 401 && !reauthenticated) {
        reauthenticated = true;
        this.forgetToken();
        continue;
      }
      if (answer.status !== 200) throw new HttpError(answer.status, answer.body);
      return answer;
    }
  }

  private async withRetry(request: () => Promise<Response>): Promise<SendResult> {
    const attempts = this.options.maxAttempts ?? 5;
    for (let attempt = 1; ; attempt += 1) {
      let failure: unknown;
      try {
        const answer = await this.answerOf(await request());
        if (answer.status < 500) return answer;
        failure = new HttpError(answer.status, answer.body);
      } catch (error) {
        failure = error;
      }
      if (attempt >= attempts) throw failure;
      await this.sleep(this.backoffMs(attempt));
    }
  }

  private setTokens(tokens: Tokens | null): void {
    this.tokens = tokens;
    this.store.set(this.key("tokens"), JSON.stringify(tokens));
  }

  /** After a 401: the next request gets a fresh token (the provider forced, or a guest login). */
  private forgetToken(): void {
    this.provided = null;
    this.forceRefresh = true;
    if (this.options.tokenProvider === undefined) this.setTokens(null);
  }

  /** The provider's token while it is not within the refresh margin of its expiry, else a new one. */
  private async providedToken(provider: TokenProvider): Promise<string> {
    const margin = (this.options.refreshMarginSeconds ?? 60) * 1000;
    const held = this.provided;
    if (held !== null && (held.expiresAt === null || held.expiresAt - margin > this.now())) return held.token;
    const given = await provider(this.forceRefresh);
    if (typeof given?.token !== "string" || given.token === "") throw new Error("the token provider gave no token");
    // Cleared only once a token came: a provider that failed is forced again next time.
    this.forceRefresh = false;
    this.provided = { token: given.token, expiresAt: given.expiresAt?.getTime() ?? null };
    return given.token;
  }

  /** A token valid for at least the refresh margin: the game's, or the saved one, a refreshed one, or a login. */
  private async token(): Promise<string> {
    if (this.options.tokenProvider !== undefined) return this.providedToken(this.options.tokenProvider);
    const margin = (this.options.refreshMarginSeconds ?? 60) * 1000;
    const now = this.now();
    if (this.tokens !== null && this.tokens.auth_expires_at - margin > now) return this.tokens.auth_token;
    if (this.tokens !== null && this.tokens.refresh_expires_at - margin > now) {
      const refreshed = await this.refresh(this.tokens.refresh_token);
      if (refreshed !== null) return refreshed;
    }
    return this.login();
  }

  private async refresh(refreshToken: string): Promise<string | null> {
    const url = `${this.loginUrl("refresh-access-token")}?refresh_token=${encodeURIComponent(refreshToken)}`;
    try {
      const answer = await this.withRetry(() =>
        this.fetchFn(url, { headers: { "X-Contract-Version": this.contract.version } }),
      );
      if (answer.status !== 200) return null;
      return this.acceptTokens(answer.body, refreshToken);
    } catch {
      return null;
    }
  }

  /** Logs in as a guest: the saved guest if there is one, else a new guest whose identity is kept. */
  async login(): Promise<string> {
    const saved = this.store.get(this.key("identity"));
    const query = new URLSearchParams(this.options.loginQuery ?? {});
    if (saved !== null) {
      const identity = JSON.parse(saved) as Identity;
      query.set("user_id", identity.user_id);
      query.set("guest_secret", identity.guest_secret);
    }
    const search = query.toString();
    const url = this.loginUrl("login-as-guest") + (search === "" ? "" : `?${search}`);
    const answer = await this.withRetry(() => this.fetchFn(url, { headers: { "X-Contract-Version": this.contract.version } }));
    if (answer.status !== 200) throw new HttpError(answer.status, answer.body);
    const body = answer.body as { user_id?: string; guest_secret?: string };
    if (typeof body.user_id === "string" && typeof body.guest_secret === "string") {
      const identity: Identity = { user_id: body.user_id, guest_secret: body.guest_secret };
      this.store.set(this.key("identity"), JSON.stringify(identity));
    }
    return this.acceptTokens(answer.body, null);
  }

  private acceptTokens(body: unknown, previousRefresh: string | null): string {
    const b = body as Partial<{
      auth_token: string;
      refresh_token: string;
      auth_token_expires_in: number;
      refresh_token_expires_in: number;
    }>;
    if (typeof b.auth_token !== "string") throw new HttpError(200, body);
    const now = this.now();
    const refresh = b.refresh_token ?? previousRefresh ?? "";
    this.setTokens({
      auth_token: b.auth_token,
      refresh_token: refresh,
      auth_expires_at: now + (b.auth_token_expires_in ?? 900) * 1000,
      refresh_expires_at:
        b.refresh_token_expires_in !== undefined
          ? now + b.refresh_token_expires_in * 1000
          : (this.tokens?.refresh_expires_at ?? 0),
    });
    return b.auth_token;
  }
}
