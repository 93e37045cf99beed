import t, { type Test } from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hex } from '../rig/core/hex.ts';
import { createLogger, logToFile, redactInLogs } from '../rig/core/log.ts';
import { secretForms } from '../rig/core/secret-forms.ts';

/**
 * The log sink scrubs a port's traced bytes as a stream: a password whose bytes arrive in two (or
 * three) received chunks, one trace line each, must not be readable from the lines, at any split
 * offset, with another port's chunk in between. Lines have the shape rig/serial/serial-link.ts logs
 * (`{path, rx: hex(chunk)}`, spaced lower-case hex). The filler around the password is bytes that occur
 * in no form of it, so every one of them must come through unmasked (no blanket masking).
 */
const dir = mkdtempSync(join(tmpdir(), 'plugrig-log-stream-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const file = join(dir, 'trace.log');
logToFile(file);
const PASSWORD = 'Tr1cky"pa55 wörd';
redactInLogs([PASSWORD]);
const log = createLogger({ slot: 1 }, 'trace');
const pw = Buffer.from(PASSWORD, 'utf8');
const filler = (n: number, seed: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (seed + i) % 16));

let caseNo = 0;
/** Trace `chunks` as port `path`'s received bytes, another port's chunk between each two; the lines of `path`. */
function trace(chunks: Buffer[]): Array<{ rx: string }> {
  const path = `/dev/ttyUSB-case${caseNo++}`;
  const before = readLines().length;
  for (const c of chunks) {
    log.trace({ path, rx: hex(c) }, 'rx');
    log.trace({ path: '/dev/ttyUSB-other', rx: hex(filler(5, 3)) }, 'rx');
  }
  return readLines()
    .slice(before)
    .map((l) => JSON.parse(l) as { path: string; rx: string })
    .filter((l) => l.path === path);
}

function readLines(): string[] {
  return readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
}

/** The bytes a reader can still see in the lines (masked runs dropped). */
function visible(lines: Array<{ rx: string }>): number[] {
  return lines.flatMap((l) => l.rx.split(' ').filter((x) => x !== '' && x !== '***').map((x) => parseInt(x, 16)));
}

function judge(t: Test, lines: Array<{ rx: string }>, fillerBytes: number, what: string): void {
  const seen = visible(lines);
  const leaked = seen.filter((b) => pw.includes(b));
  t.same(leaked, [], `${what}: no byte of the password readable`);
  t.equal(seen.length, fillerBytes, `${what}: every filler byte still traced (${seen.length}/${fillerBytes})`);
}

t.test('a password split in two received chunks, at every offset', async (t) => {
  for (let i = 1; i < pw.length; i++) {
    const a = Buffer.concat([filler(7, 0), pw.subarray(0, i)]);
    const b = Buffer.concat([pw.subarray(i), filler(9, 5)]);
    judge(t, trace([a, b]), 16, `split at byte ${i}`);
  }
});

t.test('a password split in three received chunks, at every pair of offsets', async (t) => {
  for (let i = 1; i < pw.length - 1; i++) {
    for (let j = i + 1; j < pw.length; j++) {
      const lines = trace([Buffer.concat([filler(4, 1), pw.subarray(0, i)]), pw.subarray(i, j), Buffer.concat([pw.subarray(j), filler(3, 2)])]);
      const seen = visible(lines);
      if (seen.some((b) => pw.includes(b)) || seen.length !== 7) judge(t, lines, 7, `split at bytes ${i} and ${j}`);
    }
  }
  t.pass(`${((pw.length - 2) * (pw.length - 1)) / 2} three-way splits judged (failures above)`);
});

t.test('a password one byte a chunk, and whole in one chunk', async (t) => {
  judge(t, trace([filler(3, 0), ...[...pw].map((b) => Buffer.from([b])), filler(3, 7)]), 6, 'one byte a chunk');
  judge(t, trace([Buffer.concat([filler(2, 0), pw, filler(2, 4)])]), 4, 'whole');
});

t.test('no form of the password anywhere in the log file', async (t) => {
  const text = readFileSync(file, 'utf8');
  for (const f of secretForms(PASSWORD)) t.notOk(text.includes(f), `form ${JSON.stringify(f).slice(0, 40)} absent`);
});
