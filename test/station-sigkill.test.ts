import t from 'tap';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mulberry32 } from '../rig/core/prng.ts';
import { makeSyntheticImage } from '../firmware/synthetic.ts';
import type { UnitRecord } from '../reports/unit-record.ts';
import type { StationState } from '../station/station-state.ts';
import type { ResultEvent } from '../suites/model/events.ts';

/**
 * SIGKILL a 4-slot virtual station run at seeded random moments, resuming after each kill:
 * every step the station reported finished is in a unit record, no unit is recorded complete
 * twice, and the next start reports the aborted run and confirms the jig's safe state.
 * PLUGRIG_SIGKILL_KILLS=50 for the soak (default 5, to stay inside a test's time on a loaded 2-core machine).
 */
const KILLS = Number(process.env.PLUGRIG_SIGKILL_KILLS ?? 5);
const SEED = Number(process.env.PLUGRIG_SIGKILL_SEED ?? 18);
const BIN = new URL('../bin/plugrig.mjs', import.meta.url).pathname;
const JIG = new URL('../fixtures/jigs/virtual-4slot.json', import.meta.url).pathname;
const FACTORY = new URL('../fixtures/plans/factory.json', import.meta.url).pathname;

const tmp = mkdtempSync(join(tmpdir(), 'plugrig-sigkill-'));
const runs = join(tmp, 'runs');
mkdirSync(runs);
const runDir = join(runs, 'batch');
// A small image and no stock backup keep a whole 4-slot run to seconds (the moments are what matters).
const im = makeSyntheticImage({ chip: 'BK7231N', kind: 'ua', version: '1.18.42', seed: 9, appBytes: 60_000 });
const imagePath = join(tmp, im.name);
writeFileSync(imagePath, im.bytes);
// The factory plan's flash, provision and smoke suites (its device template and image version).
const factory = JSON.parse(readFileSync(FACTORY, 'utf8')) as Record<string, unknown>;
const plan = {
  schema: 'plugrig.plan/1',
  name: 'sigkill',
  image: factory.image,
  device: factory.device,
  suites: [
    { suite: 'flash', retries: 1, timeoutMs: 180000, diff: true, limits: { flashTime: { high: 60, guardBand: 'none' } } },
    { suite: 'provision' },
    {
      suite: 'smoke',
      retries: 1,
      timeoutMs: 20000,
      limits: { mainsVoltage: { tolerancePct: 10, marginalPct: 5 }, loadPower: { tolerancePct: 10, tolerance: 2 }, powerFactor: { tolerance: 0.1 } },
    },
  ],
};
const planPath = join(tmp, 'sigkill.json');
writeFileSync(planPath, JSON.stringify(plan));

interface Child {
  pid: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: () => string;
  kill: () => void;
}

function start(args: string[], events: string): Child {
  const child = spawn('node', [BIN, 'run', ...args, '--sim-time', 'virtual', '--image', imagePath, '--events', events, '--json'], { env: { ...process.env, PLUGRIG_LOG: 'silent' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  child.stdout.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.on('exit', (code, signal) => res({ code, signal })));
  return { pid: child.pid!, exited, stderr: () => err, kill: () => child.kill('SIGKILL') };
}

/** The events a child wrote before it died (a torn last line is not an event it reported). */
function reported(path: string): ResultEvent[] {
  if (!existsSync(path)) return [];
  const out: ResultEvent[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    try {
      out.push(JSON.parse(line) as ResultEvent);
    } catch {
      // torn or empty
    }
  }
  return out;
}

const sha = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');
const records = (): Array<{ file: string; rec: UnitRecord }> =>
  readdirSync(runDir)
    .filter((f) => /^slot-\d+(\.interrupted-\d+)?\.json$/.test(f))
    .map((f) => ({ file: f, rec: JSON.parse(readFileSync(join(runDir, f), 'utf8')) as UnitRecord }));

t.test(`SIGKILL at ${KILLS} seeded moments of a 4-slot run, resumed after each`, async (t) => {
  const rand = mulberry32(SEED);
  let kills = 0;
  let lostSteps = 0;
  let checkedSteps = 0;
  let kept = new Map<string, string>(); // slot-N.json -> sha256, before a resume renames it
  let previousPid: number | undefined;
  for (let i = 0; ; i++) {
    const events = join(tmp, `events-${i}.ndjson`);
    const child = start(i === 0 ? ['--jig', JIG, '--plan', planPath, '--out', runDir] : ['--resume', runDir], events);
    const last = kills >= KILLS;
    let finished = false;
    if (!last) {
      // A moment: after a random number of reported events, plus a random delay.
      const afterEvents = 1 + Math.floor(rand() * 45);
      const delayMs = Math.floor(rand() * 400);
      const done = child.exited.then(() => (finished = true));
      while (!finished && reported(events).length < afterEvents) await new Promise((r) => setTimeout(r, 15));
      if (!finished) await Promise.race([new Promise((r) => setTimeout(r, delayMs)), done]);
      if (!finished) {
        child.kill();
        kills++;
      }
    }
    const exit = await child.exited;
    const err = child.stderr();
    if (i > 0) {
      // The next start: the interrupted run is reported and marked, the jig confirmed safe.
      t.match(err, new RegExp(`run ${runDir} was interrupted: its station \\(pid ${previousPid}\\) died; marked aborted`), `start ${i} reports the run pid ${previousPid} left`);
      t.match(err, /jig in its safe state: slots [\d, ]+ mains, loads, UART and 3V3 off \(confirmed by the I\/O board\)/, `start ${i} confirmed the jig's safe state before testing`);
      // The records the previous try left were kept byte for byte under their interrupted names.
      const st = JSON.parse(readFileSync(join(runDir, 'station-state.json'), 'utf8')) as StationState;
      t.ok(st.history.some((h) => h.event.includes(`pid ${previousPid}) died`)), 'the state file keeps the abort in its history');
      const keptNow = new Map(Object.values(st.slots).flatMap((s) => s.interrupted.map((f) => [f, sha(join(runDir, f))] as const)));
      for (const [orig, hash] of kept) t.ok([...keptNow.values()].includes(hash), `${orig} of the killed try is kept unchanged`);
    }
    if (exit.signal !== 'SIGKILL') {
      t.equal(exit.code, 0, `the last try finished every unit: ${err.slice(-400)}`);
      break;
    }
    // After the kill: the state file says running, by a process that is gone.
    const st = JSON.parse(readFileSync(join(runDir, 'station-state.json'), 'utf8')) as StationState;
    t.equal(st.status, 'running');
    t.equal(st.pid, child.pid);
    // Every step the station reported finished is in that slot's record.
    const recs = new Map(records().filter((r) => !r.file.includes('interrupted')).map((r) => [r.rec.slot, r.rec]));
    for (const e of reported(events)) {
      if (e.type !== 'step-finished') continue;
      checkedSteps++;
      const rec = recs.get(e.slot);
      const found = rec?.steps.some((s) => s.index === e.result.index && s.name === e.result.name && s.attempt === e.result.attempt && s.status === e.result.status);
      if (!found) lostSteps++;
    }
    kept = new Map(readdirSync(runDir).filter((f) => /^slot-\d+\.json$/.test(f)).map((f) => [f, sha(join(runDir, f))]));
    previousPid = child.pid;
    if (i > KILLS + 20) break;
  }
  t.equal(kills, KILLS, `${KILLS} kills landed mid-run`);
  t.ok(checkedSteps > 0, `${checkedSteps} reported steps checked`);
  t.equal(lostSteps, 0, '0 finished steps lost');
  const all = records();
  for (const { file, rec } of all) {
    const idx = rec.steps.map((s) => s.index);
    t.same(idx, [...new Set(idx)], `${file}: no step recorded twice`);
  }
  const complete = all.filter((r) => r.rec.complete);
  t.same(complete.map((r) => r.rec.slot).sort(), [1, 2, 3, 4], 'every unit recorded complete exactly once');
  const macs = complete.map((r) => r.rec.unit.mac);
  t.equal(new Set(macs).size, 4, 'four different units');
  t.ok(all.filter((r) => !r.rec.complete).every((r) => r.file.includes('.interrupted-')), 'every incomplete record is a kept interrupted try');
  const st = JSON.parse(readFileSync(join(runDir, 'station-state.json'), 'utf8')) as StationState;
  t.equal(st.status, 'finished');
  t.equal(st.history.filter((h) => h.event.startsWith('aborted')).length, KILLS, 'each kill is in the history once');
});
