// A minimal test runner: every check prints `ok - name` or `FAIL - name: reason`, and the suite
// ends with `<suite>: N passed, M failed` (tests/clients/run.sh adds these up).

let passed = 0;
let failed = 0;

export async function test(name: string, body: () => void | Promise<void>): Promise<void> {
  try {
    await body();
    passed += 1;
    console.log(`ok - ${name}`);
  } catch (error) {
    failed += 1;
    const reason = error instanceof Error ? (error.stack ?? error.message) : String(error);
    console.log(`FAIL - ${name}: ${reason}`);
  }
}

export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

export function assertEqual<T>(actual: T, expected: T, what: string): void {
  const a = JSON.stringify(actual, (_k, v: unknown) => (typeof v === "bigint" ? `${v}n` : v));
  const e = JSON.stringify(expected, (_k, v: unknown) => (typeof v === "bigint" ? `${v}n` : v));
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

export function finish(suite: string): void {
  console.log(`${suite}: ${passed} passed, ${failed} failed`);
  process.exitCode = failed === 0 ? 0 : 1;
}
