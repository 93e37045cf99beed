import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UnitRecordWriter, type UnitRecord } from '../reports/unit-record.ts';
import type { StepResult } from '../suites/model/step-result.ts';

const CHILD = new URL('./fixtures/unit-record-child.ts', import.meta.url).pathname;
const root = mkdtempSync(join(tmpdir(), 'plugrig-record-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));

/** Run the child, SIGKILL it once `killWhen(announced)` says so (after `delayMs`); resolve the announced steps. */
function runAndKill(dir: string, mode: 'slow' | 'storm', killWhen: (announced: string[]) => boolean, delayMs: number): Promise<{ announced: string[]; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import=tsx', CHILD, dir, mode], { stdio: ['ignore', 'pipe', 'inherit'] });
    const announced: string[] = [];
    let buf = '';
    let armed = false;
    child.stdout.on('data', (chunk: Buffer) => {
      buf += chunk.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) if (l.startsWith('finished ')) announced.push(l.slice('finished '.length));
      if (!armed && killWhen(announced)) {
        armed = true;
        setTimeout(() => child.kill('SIGKILL'), delayMs);
      }
    });
    child.on('error', reject);
    child.on('exit', (_code, signal) => resolve({ announced: [...announced], signal }));
  });
}

function readRecord(dir: string): UnitRecord {
  return JSON.parse(readFileSync(join(dir, 'slot-7.json'), 'utf8')) as UnitRecord;
}

t.test('SIGKILL mid-step: every finished step is in the record, the record is valid and marked incomplete', async (t) => {
  const dir = join(root, 'slow');
  const { announced, signal } = await runAndKill(dir, 'slow', (a) => a.length >= 3, 100);
  t.equal(signal, 'SIGKILL', 'the child was killed, not finished');
  t.same(announced, ['step 1', 'step 2', 'step 3']);
  const rec = readRecord(dir);
  t.equal(rec.complete, false, 'an interrupted unit reads as incomplete');
  t.equal(rec.verdict, null);
  t.same(rec.steps.map((s) => s.name), announced, 'all finished steps persisted');
  t.same(rec.plannedSteps.slice(-2), ['in progress when killed', 'safe state']);
  for (const s of rec.steps) {
    t.equal(s.status, 'pass');
    t.match(s.measurements, [{ id: 'v', taken: true, verdict: 'pass' }]);
  }
  t.same(readdirSync(dir).filter((f) => f.includes('.tmp-')), [], 'no temporary file left between writes');
});

for (const delay of [5, 40, 120]) {
  t.test(`SIGKILL during a storm of writes (${delay} ms after the first step): never a torn record`, async (t) => {
    const dir = join(root, `storm-${delay}`);
    const { announced, signal } = await runAndKill(dir, 'storm', (a) => a.length >= 1, delay);
    t.equal(signal, 'SIGKILL');
    const rec = readRecord(dir); // throws on a torn file
    const names = rec.steps.map((s) => s.name);
    t.same(names.slice(0, announced.length), announced, `the ${announced.length} announced steps are all there, in order`);
    t.ok(names.length <= announced.length + 1, 'at most the step whose announcement the kill cut off is extra');
    t.equal(rec.complete, false);
  });
}

t.test('the writer rewrites the whole record per event; a finished slot is complete', async (t) => {
  const dir = join(root, 'direct');
  const w = new UnitRecordWriter(dir, { wallTime: () => '2026-12-01T00:00:00.000Z' });
  await w.emit({ type: 'slot-started', slot: 1, steps: [{ name: 'a', kind: 'main' }, { name: 'safe', kind: 'safe-state' }], at: '2026-12-01T00:00:00.000Z' });
  const path = join(dir, 'slot-1.json');
  t.match(JSON.parse(readFileSync(path, 'utf8')), { slot: 1, complete: false, steps: [] }, 'written at slot start');
  await w.emit({ type: 'unit', slot: 1, facts: { mac: 'c8:47:8c:00:00:01' } });
  const step = { index: 0, name: 'a', kind: 'main', status: 'pass', flagged: false, attempt: 1, maxAttempts: 1, earlierAttempts: [], measurements: [], checks: [], startedT: 0, finishedT: 1, ms: 1, startedAt: '', finishedAt: '' } satisfies StepResult;
  await w.emit({ type: 'step-finished', slot: 1, result: step });
  t.match(JSON.parse(readFileSync(path, 'utf8')), { unit: { mac: 'c8:47:8c:00:00:01' }, steps: [{ name: 'a' }] }, 'written after the step');
  await w.emit({ type: 'slot-finished', slot: 1, result: { slot: 1, verdict: 'pass', flagged: false, aborted: false, unit: { mac: 'c8:47:8c:00:00:01' }, steps: [step], ms: 1, startedAt: '', finishedAt: 'end' } });
  t.match(JSON.parse(readFileSync(path, 'utf8')), { complete: true, verdict: 'pass', finishedAt: 'end' });
});
