import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Parser, type Result } from 'tap-parser';
import { VirtualClock } from '../rig/core/clock.ts';
import { createLogger } from '../rig/core/log.ts';
import { TapListener } from '../reports/tap-listener.ts';
import { teeSink, type ResultEvent } from '../suites/model/events.ts';
import type { SlotResult } from '../suites/model/step-result.ts';
import { runSlot } from '../suites/runner/run-slot.ts';
import type { Step } from '../suites/runner/step.ts';

const dir = mkdtempSync(join(tmpdir(), 'plugrig-tap-listener-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function parse(text: string, strict = false): Promise<{ final: { ok: boolean; count: number; fail: number; skip: number; failures: Array<{ tapError?: string }> }; points: Result[]; subtests: string[] }> {
  return new Promise((resolve) => {
    const points: Result[] = [];
    const subtests: string[] = [];
    const p = new Parser({ strict }, (final) => resolve({ final: final as never, points, subtests }));
    p.on('assert', (r: Result) => points.push(r));
    p.on('line', (l: string) => {
      const m = /^# Subtest: (.*)$/.exec(l.trimEnd());
      if (m) subtests.push(m[1]!);
    });
    p.end(text);
  });
}

const volts = { id: 'v', name: 'mains voltage', unit: 'V', limits: { low: 207, high: 253, marginal: 2 } };
const steps: Step[] = [
  { name: 'good', measurements: [volts], run: async (ctx) => void ctx.measure('v', 230) },
  { name: 'flagged', measurements: [{ ...volts, onMarginal: 'pass-with-flag' }], run: async (ctx) => void ctx.measure('v', 252) },
  { name: 'retried', retries: 1, run: async (ctx) => void ctx.check('second time lucky', ctx.attempt === 2) },
  { name: 'bad', critical: true, measurements: [volts], run: async (ctx) => void ctx.measure('v', 260) },
  { name: 'skipped', run: async () => undefined },
  { name: 'safe state', kind: 'safe-state', run: async (ctx) => void ctx.check('mains off', true) },
];

for (const version of [14, 13] as const) {
  t.test(`TAP ${version}: one subtest per step, each point as the step result says`, async (t) => {
    const out = join(dir, `v${version}`);
    const listener = new TapListener(out, { version });
    let slot: SlotResult | undefined;
    const grab = { emit: (e: ResultEvent) => void (e.type === 'slot-finished' ? (slot = e.result) : undefined) };
    await runSlot(steps, { slot: 1, clock: new VirtualClock(), log: createLogger({}, 'silent'), sink: teeSink(listener, grab) });
    const text = readFileSync(join(out, 'slot-1.tap'), 'utf8');
    t.equal(text.split('\n')[0], `TAP version ${version}`);
    const { final, points, subtests } = await parse(text, true);
    t.same(final.failures.filter((f) => f.tapError), [], 'no TAP format error in strict mode');
    t.same(points.map((p) => [p.name, p.ok]), slot!.steps.map((s) => [s.name, s.status !== 'fail']), 'top-level points mirror the step statuses');
    t.equal(points.find((p) => p.name === 'skipped')?.skip, "critical step 'bad' failed");
    t.same(subtests, points.filter((p) => !p.skip).map((p) => p.name), 'every subtest is closed by a point of the same name');
    t.match(text, /verdict: marginal\n\s+decision: accept-flagged/, 'the flagged marginal is rendered with its verdict');
    t.match(text, /# attempt 1 of 2: fail \(check failed: second time lucky\)/, 'earlier attempts are kept as comments');
    t.match(text, /not ok \d+ - bad: mains voltage: above the high limit 253/);
    t.equal(final.ok, false);
    if (version === 13 && existsSync('/usr/bin/prove')) {
      // Perl's harness (TAP::Harness 3.44) reads the v13 file: no parse errors, the failed step counted.
      const p = spawnSync('/usr/bin/prove', ['--exec', 'cat', join(out, 'slot-1.tap')], { encoding: 'utf8' });
      t.notMatch(p.stdout, /Parse errors/, 'prove finds no parse error');
      t.match(p.stdout, /Tests: 6 Failed: 1\)/, 'prove counts 6 steps, 1 failed');
    }
  });
}

t.test('the listener refuses to render a step whose points disagree with its status', async (t) => {
  const listener = new TapListener(join(dir, 'bug'));
  await listener.emit({ type: 'slot-started', slot: 1, steps: [], at: '' });
  const lie = { index: 0, name: 'x', kind: 'main' as const, status: 'pass' as const, flagged: false, attempt: 1, maxAttempts: 1, earlierAttempts: [], checks: [{ name: 'c', ok: false, attempt: 1, t: 0 }], measurements: [], startedT: 0, finishedT: 0, ms: 0, startedAt: '', finishedAt: '' };
  await t.rejects(listener.emit({ type: 'step-finished', slot: 1, result: lie }), {
    name: 'StoreError',
    code: 'E_STORE',
    message: "TAP rendering of step 'x' disagrees with its status pass: report not written",
    context: { slot: 1, step: 'x', status: 'pass', tapPoint: 'not ok', path: join(dir, 'bug', 'slot-1.tap') },
  }, 'typed, naming slot, step, status, the point it rendered and the file');
  await listener.close();
});
