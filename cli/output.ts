import { cliStdout } from './io.ts';

/** JSON on stdout for --json: stable key order, numbers as numbers, no colour. */
export function printJson(value: unknown): void {
  cliStdout().write(JSON.stringify(value, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v), 2) + '\n');
}
