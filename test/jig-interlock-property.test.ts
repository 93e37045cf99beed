import t from 'tap';
import { Worker } from 'node:worker_threads';
import type { BatchResult } from './jig-interlock-property.worker.ts';

/**
 * Random command sequences against MainsInterlock, its heartbeat and a recording fake board (see
 * the worker for the model and the invariants): board loss, a board that hangs with its port open
 * (silent, detected within 500 ms as BoardLiveness does), lid and E-stop mid-sequence, lost writes,
 * crashes. 10 000 here (INTERLOCK_SEQUENCES to change it); scripts/soak.ts runs 100 000.
 * Judged also at the plug: mains live (relay and watchdog) with the lid open or the E-stop
 * pressed for longer than detection + watchdog hold is a violation. Two worker threads.
 */
const SEQUENCES = Number(process.env.INTERLOCK_SEQUENCES ?? 10_000);
const FIRST_SEED = 0x5eed0000;
const WORKERS = 2;
const WORKER_URL = new URL('./jig-interlock-property.worker.ts', import.meta.url);

function runWorker(from: number, to: number): Promise<BatchResult> {
  return new Promise((resolve, reject) => {
    // A fresh thread without tap's instrumentation: register only the TypeScript loader, then run.
    const boot = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(WORKER_URL.href)}); })`;
    const w = new Worker(boot, { eval: true, workerData: { from, to }, execArgv: [] });
    w.once('message', (m: BatchResult) => resolve(m));
    w.once('error', reject);
    w.once('exit', (code) => code !== 0 && reject(new Error(`worker exited with ${code}`)));
  });
}

t.test(`interlock holds its invariants over ${SEQUENCES} random sequences`, async (t) => {
  const per = Math.ceil(SEQUENCES / WORKERS);
  const parts = await Promise.all(
    Array.from({ length: WORKERS }, (_, i) => runWorker(FIRST_SEED + i * per, FIRST_SEED + Math.min(SEQUENCES, (i + 1) * per))),
  );
  const sum = (k: keyof Omit<BatchResult, 'examples'>): number => parts.reduce((a, p) => a + p[k], 0);
  const violations = sum('violations');
  t.comment(
    `sequences=${sum('sequences')} commands=${sum('commands')} physical-edges=${sum('edges')} ` +
      `mainsOn-succeeded=${sum('mainsOnOk')} refused=${sum('refused')} violations=${violations}`,
  );
  t.equal(sum('sequences'), SEQUENCES);
  t.equal(violations, 0, parts.flatMap((p) => p.examples).join('\n'));
  // The run must exercise the dangerous paths, not only refusals.
  t.ok(sum('mainsOnOk') > SEQUENCES / 20, `mains was switched on ${sum('mainsOnOk')} times`);
  t.ok(sum('refused') > SEQUENCES / 20, `commands were refused ${sum('refused')} times`);
});
