/**
 * SIGKILL the station at seeded random moments of a 4-slot virtual run and count what a kill costs:
 * finished steps lost (the station reported them, its unit record or the store lacks them), units
 * recorded twice, restarts that did not confirm the jig safe, died runs the next start did not
 * report, state files left unreadable. The station is the real CLI (`bin/plugrig.mjs run`, from
 * dist/ when current) in a child process; each kill is followed by a restart: mostly `--resume` of
 * the killed batch, sometimes a fresh batch beside it (which must report the killed one and mark it
 * aborted). Every `pauseEvery`-th kill lands inside a station-state write (a preloaded hook holds
 * the N-th write open halfway, sigkill-state-write-pause.mjs), which only a write-aside-and-rename
 * survives. The moments: an event index drawn over the try's expected event count (learned from one
 * uncut calibration run), plus a delay. Used by test/station-sigkill-*.test.ts (all figures must be
 * zero) and by scripts/soak.ts (the figure row).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeSyntheticImage } from '../../firmware/synthetic.ts';
import { mulberry32 } from '../../rig/core/prng.ts';
import { SqliteStore } from '../../rig/store/sqlite-store.ts';
import type { UnitRecord } from '../../reports/unit-record.ts';
import type { StationState } from '../../station/station-state.ts';
import type { ResultEvent } from '../../suites/model/events.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const BIN = join(ROOT, 'bin/plugrig.mjs');
const JIG = join(ROOT, 'fixtures/jigs/virtual-4slot.json');
const PAUSE_HOOK = join(ROOT, 'scripts/bench-lib/sigkill-state-write-pause.mjs');
const PAUSE_MARKER = 'sigkill-soak: paused inside a station state write';
const SLOTS = [1, 2, 3, 4];

export interface SigkillOptions {
  kills: number;
  seed: number;
  /** Every n-th kill lands inside a station-state write (0: none). */
  pauseEvery?: number;
  /** Probability that the restart after a kill is a fresh batch rather than --resume. */
  freshRestart?: number;
  /** Called after every try, for a live log. */
  onTry?: (line: string) => void;
  keepDir?: boolean;
  /** Stop killing once a finding is made (a mutation check wants the first one, not 50). */
  stopAtFirstViolation?: boolean;
}

export interface SigkillFigures {
  kills: number;
  /** Kills that landed inside a station-state write (the hook's pause). */
  killsInStateWrite: number;
  tries: number;
  batches: number;
  /** Finished steps the station reported (events) and the checks looked up. */
  stepsChecked: number;
  /** Of those, missing from the unit record at the kill or from the store at the end. */
  stepsLost: number;
  /** A (run, slot) with more than one complete record, or more than one unit row. */
  unitsTwice: number;
  /** Restarts that opened the jig, and those that confirmed its safe state first. */
  restartsOpeningJig: number;
  jigConfirmedSafe: number;
  /** Kills of a station whose run was in progress, and those a later start reported (and marked aborted). */
  diedRunning: number;
  abortedReported: number;
  /** Kills after which station-state.json did not parse. */
  stateUnreadable: number;
  /** Everything that went wrong, one line each (empty when every figure is as it must be). */
  violations: string[];
  /** Events of one uncut 1-slot run (the moments' scale), and its wall time. */
  calibration: { events: number; ms: number };
  wallMs: number;
  /** CPU time of this process (the checks and polling), apart from the stations'. */
  checkerCpuMs: number;
  dir: string;
}

interface Try {
  pid: number;
  events: ResultEvent[];
  stderr: string;
  code: number | null;
  killed: boolean;
  paused: boolean;
  ms: number;
}

interface Batch {
  dir: string;
  /** Finished steps reported by any try of this batch. */
  reported: Array<{ slot: number; index: number; name: string; attempt: number; status: string }>;
  /** SHA-256 of every unit record a killed try left: each must survive, byte for byte, somewhere in the batch. */
  kept: Map<string, string>;
  /** pids of tries of this batch that died with the run in progress. */
  died: number[];
  completed: boolean;
}

/** Run the kills; never throws for a finding (it is a violation), only for a broken set-up. */
export async function runSigkillSoak(o: SigkillOptions): Promise<SigkillFigures> {
  const t0 = Date.now();
  const cpu0 = process.cpuUsage();
  const rand = mulberry32(o.seed);
  const dir = mkdtempSync(join(tmpdir(), 'plugrig-sigkill-'));
  const runs = join(dir, 'runs');
  const eventsDir = join(dir, 'events');
  mkdirSync(runs);
  mkdirSync(eventsDir);
  const store = join(dir, 'plugrig.sqlite');
  // A small image and no stock backup keep a run short; the smoke suite still switches mains on.
  const im = makeSyntheticImage({ chip: 'BK7231N', kind: 'ua', version: '1.18.42', seed: 9, appBytes: 8000 });
  const imagePath = join(dir, im.name);
  writeFileSync(imagePath, im.bytes);
  const planPath = join(dir, 'sigkill.json');
  writeFileSync(planPath, JSON.stringify(sigkillPlan()));

  const f: SigkillFigures = {
    kills: 0, killsInStateWrite: 0, tries: 0, batches: 0, stepsChecked: 0, stepsLost: 0, unitsTwice: 0,
    restartsOpeningJig: 0, jigConfirmedSafe: 0, diedRunning: 0, abortedReported: 0, stateUnreadable: 0,
    violations: [], calibration: { events: 0, ms: 0 }, wallMs: 0, checkerCpuMs: 0, dir,
  };
  const bad = (msg: string): void => void f.violations.push(msg);
  let tryNo = 0;
  const startTry = (args: string[], kill: Moment | undefined): Promise<Try> => {
    const events = join(eventsDir, `try-${tryNo++}.ndjson`);
    return runTry([...args, '--plan', planPath, '--store', store, '--sim-time', 'virtual', '--image', imagePath, '--events', events, '--json'], events, kill);
  };

  // Calibration: one uncut run of one slot, for the moments' scale (events per slot, events per run).
  // The slots run the same program with a meter each, so one slot's count is each slot's (checked:
  // 49 slot events alone, 196 of 4 together), at a quarter of the CPU of a 4-slot run.
  const cal = await startTry(['--jig', JIG, '--slot', '1', '--out', join(runs, 'calibration')], undefined);
  if (cal.code !== 0) throw new Error(`the uncut calibration run failed (exit ${cal.code}): ${cal.stderr.slice(-600)}`);
  const perSlot = cal.events.filter((e) => 'slot' in e).length;
  const perRun = cal.events.filter((e) => !('slot' in e)).length;
  f.calibration = { events: cal.events.length, ms: cal.ms };

  const batches: Batch[] = [];
  let batch: Batch | undefined;
  /** A died run whose report the next start owes: its directory and pid. */
  const owed = new Map<number, string>();
  let fresh = true;
  let unfinished = SLOTS.length;
  while (f.tries < o.kills * 3 + 10 && !(o.stopAtFirstViolation && f.violations.length)) {
    if (fresh) {
      batch = { dir: join(runs, `batch-${batches.length + 1}`), reported: [], kept: new Map(), died: [], completed: false };
      batches.push(batch);
      unfinished = SLOTS.length;
    }
    const b = batch!;
    let moment: Moment | undefined;
    if (f.kills < o.kills) {
      const every = o.pauseEvery ?? 0;
      const inWrite = every > 0 && f.kills % every === every - 1;
      // Every other one of those: the state write after a unit's record said complete (the record ahead of the state).
      const atCompletion = inWrite && f.kills % (2 * every) === 2 * every - 1;
      const doneAlready = fresh ? 0 : SLOTS.length - unfinished;
      // A fresh try's first state write is where its run begins (no state file before it): not a moment to count.
      if (atCompletion) moment = { pauseComplete: doneAlready + 1 + Math.floor(rand() * unfinished) };
      else if (inWrite) moment = { pauseWrite: (fresh ? 2 : 1) + Math.floor(rand() * 30) };
      else {
        const expected = Math.round(perRun + unfinished * perSlot);
        moment = { afterEvents: (fresh ? 1 : 0) + Math.floor(rand() * expected), delayMs: Math.floor(rand() * 40) };
      }
    }
    const r = await startTry(fresh ? ['--jig', JIG, '--out', b.dir] : ['--resume', b.dir], moment);
    f.tries++;
    const label = `try ${f.tries} (${fresh ? 'fresh' : 'resume'} ${b.dir.slice(runs.length + 1)}, ${moment ? ('pauseComplete' in moment ? `kill in the state write saying ${moment.pauseComplete} complete` : 'pauseWrite' in moment ? `kill in state write ${moment.pauseWrite}` : `kill after ${moment.afterEvents} events + ${moment.delayMs} ms`) : 'uncut'})`;

    // What this start owed: every died run it found is reported by directory and pid.
    for (const m of r.stderr.matchAll(/^run (.+) was interrupted: its station \(pid (\d+)\) died; marked aborted$/gm)) {
      const pid = Number(m[2]);
      if (owed.get(pid) === m[1]) {
        owed.delete(pid);
        f.abortedReported++;
      } else bad(`${label}: reported pid ${pid} in ${m[1]}, which was not owed`);
    }
    const started = r.events.some((e) => e.type === 'run-started');
    // A start that reached its run has reported everything it owed (the reports come first).
    if (started) for (const [pid, d] of owed) if (fresh ? true : d === b.dir) bad(`${label}: started without reporting the died run of pid ${pid} in ${d}`);
    if (r.events.some((e) => e.type === 'slot-started')) {
      f.restartsOpeningJig++;
      if (/^jig in its safe state: slots [\d, ]+ mains, loads, UART and 3V3 off \(confirmed by the I\/O board\)$/m.test(r.stderr)) f.jigConfirmedSafe++;
      else bad(`${label}: opened the jig without confirming its safe state: ${r.stderr.slice(0, 300)}`);
    }

    if (!r.killed) {
      o.onTry?.(`${label}: exit ${r.code} in ${r.ms} ms`);
      // A resume that finds the run finished (its last try ended it just before the kill) has nothing to do.
      const nothingLeft = !fresh && r.code === 2 && /has no unfinished unit to resume/.test(r.stderr) && readState(b.dir)?.status === 'finished';
      if (r.code !== 0 && !nothingLeft) bad(`${label}: the uncut try exited ${r.code}: ${r.stderr.slice(-400)}`);
      b.completed = true;
      checkBatchEnd(b, bad, f);
      if (f.kills >= o.kills) break;
      fresh = true;
      continue;
    }

    // After the kill: the state file must read, and say running by the dead pid once its run had begun.
    let st: StationState | undefined;
    try {
      st = JSON.parse(readFileSync(join(b.dir, 'station-state.json'), 'utf8')) as StationState;
    } catch (e) {
      f.stateUnreadable++;
      bad(`${label}: station-state.json unreadable after the kill: ${(e as Error).message}`);
    }
    // The kill came after the try had ended its run (state finished, written by the killed pid):
    // not a kill mid-run. The batch is done; it is checked as one, and the next try starts a fresh one.
    const endedFirst = st?.status === 'finished' && st.pid === r.pid;
    if (!endedFirst) {
      f.kills++;
      if (r.paused) f.killsInStateWrite++;
    }
    o.onTry?.(`${label}: killed after ${r.events.length} events, ${r.ms} ms${endedFirst ? ' (its run had already finished: not counted)' : ''}`);
    if (st?.status === 'running' && st.pid === r.pid) {
      f.diedRunning++;
      b.died.push(r.pid);
      owed.set(r.pid, b.dir);
    } else if (started && !endedFirst) bad(`${label}: its run had begun, yet the state says ${st?.status} by pid ${st?.pid}`);
    // Every step the station reported finished is in that slot's unit record.
    const recs = new Map(readRecords(b.dir).filter((x) => !x.file.includes('interrupted')).map((x) => [x.rec.slot, x.rec]));
    for (const e of r.events) {
      if (e.type !== 'step-finished') continue;
      f.stepsChecked++;
      const step = { slot: e.slot, index: e.result.index, name: e.result.name, attempt: e.result.attempt, status: e.result.status };
      b.reported.push(step);
      const found = recs.get(e.slot)?.steps.some((s) => s.index === step.index && s.name === step.name && s.attempt === step.attempt && s.status === step.status);
      if (!found) {
        f.stepsLost++;
        bad(`${label}: slot ${e.slot} step ${step.index} '${step.name}' was reported finished but is not in slot-${e.slot}.json`);
      }
    }
    for (const x of readRecords(b.dir)) if (!x.file.includes('interrupted')) b.kept.set(x.sha, `${x.file} after ${label}`);
    if (endedFirst) {
      b.completed = true;
      checkBatchEnd(b, bad, f);
      fresh = true;
      continue;
    }
    if (st) unfinished = Object.values(st.slots).filter((s) => !s.complete).length || SLOTS.length;
    // Mostly resume the killed batch; sometimes start a fresh one beside it (it must report this one).
    fresh = !st || (o.freshRestart ?? 0.25) > rand();
  }
  if (f.kills < o.kills && !(o.stopAtFirstViolation && f.violations.length)) bad(`only ${f.kills} of ${o.kills} kills landed in ${f.tries} tries`);
  for (const [pid, d] of owed) bad(`the died run of pid ${pid} in ${d} was never reported`);
  for (const b of batches) checkBatchHistory(b, bad);
  checkStore(store, batches, bad, f);
  f.batches = batches.length;
  f.wallMs = Date.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  f.checkerCpuMs = Math.round((cpu.user + cpu.system) / 1000);
  if (!o.keepDir) rmSync(dir, { recursive: true, force: true });
  return f;
}

type Moment = { afterEvents: number; delayMs: number } | { pauseWrite: number } | { pauseComplete: number };

function sigkillPlan(): Record<string, unknown> {
  const factory = JSON.parse(readFileSync(join(ROOT, 'fixtures/plans/factory.json'), 'utf8')) as Record<string, unknown>;
  return {
    schema: 'plugrig.plan/1',
    name: 'sigkill',
    image: factory.image,
    device: factory.device,
    suites: [
      { suite: 'flash', retries: 1, timeoutMs: 180000, diff: true, limits: { flashTime: { high: 60, guardBand: 'none' } } },
      { suite: 'provision' },
      { suite: 'smoke', retries: 1, timeoutMs: 20000, limits: { mainsVoltage: { tolerancePct: 10, marginalPct: 5 }, loadPower: { tolerancePct: 10, tolerance: 2 }, powerFactor: { tolerance: 0.1 } } },
    ],
  };
}

/** One station process: run it, and SIGKILL it at the moment (if any). */
async function runTry(args: string[], eventsPath: string, moment: Moment | undefined): Promise<Try> {
  const t0 = Date.now();
  const pausing = moment !== undefined && ('pauseWrite' in moment || 'pauseComplete' in moment);
  const node = pausing ? ['--import', PAUSE_HOOK] : [];
  const env: NodeJS.ProcessEnv = { ...process.env, PLUGRIG_LOG: 'silent', NODE_OPTIONS: '' };
  if (moment && 'pauseWrite' in moment) env.PLUGRIG_SIGKILL_PAUSE_WRITE = String(moment.pauseWrite);
  if (moment && 'pauseComplete' in moment) env.PLUGRIG_SIGKILL_PAUSE_COMPLETE = String(moment.pauseComplete);
  const child = spawn(process.execPath, [...node, BIN, 'run', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  child.stdout.resume();
  let exited = false;
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.on('exit', (code, signal) => {
      exited = true;
      res({ code, signal });
    }),
  );
  let killed = false;
  let paused = false;
  const sleep = (ms: number): Promise<unknown> => Promise.race([new Promise((r) => setTimeout(r, ms)), exit]);
  try {
    if (pausing) {
      while (!exited && !stderr.includes(PAUSE_MARKER)) await sleep(5);
      paused = !exited;
    } else if (moment) {
      const lines = lineCounter(eventsPath);
      try {
        while (!exited && lines() < moment.afterEvents) await sleep(10);
      } finally {
        lines.close();
      }
      if (!exited) await sleep(moment.delayMs);
    }
    if (moment && !exited) killed = child.kill('SIGKILL');
    const e = await exit;
    return { pid: child.pid!, events: readEvents(eventsPath), stderr, code: e.code, killed: killed && e.signal === 'SIGKILL', paused, ms: Date.now() - t0 };
  } finally {
    if (!exited) child.kill('SIGKILL');
  }
}

/** Lines in a growing file, reading only what was appended since the last call. */
function lineCounter(path: string): { (): number; close(): void } {
  let fd: number | undefined;
  let lines = 0;
  const buf = Buffer.alloc(64 * 1024);
  const count = (): number => {
    if (fd === undefined) {
      if (!existsSync(path)) return 0;
      fd = openSync(path, 'r');
    }
    for (let n = readSync(fd, buf); n > 0; n = readSync(fd, buf)) for (let i = 0; i < n; i++) if (buf[i] === 10) lines++;
    return lines;
  };
  count.close = (): void => {
    if (fd !== undefined) closeSync(fd);
  };
  return count;
}

/** The events a child wrote before it died (a torn last line is not an event it reported). */
function readEvents(path: string): ResultEvent[] {
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

function readState(dir: string): StationState | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, 'station-state.json'), 'utf8')) as StationState;
  } catch {
    return undefined;
  }
}

function readRecords(dir: string): Array<{ file: string; rec: UnitRecord; sha: string }> {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((x) => /^slot-\d+(\.interrupted-\d+)?\.json$/.test(x))
    .map((file) => {
      const bytes = readFileSync(join(dir, file));
      return { file, rec: JSON.parse(bytes.toString('utf8')) as UnitRecord, sha: createHash('sha256').update(bytes).digest('hex') };
    });
}

/** A completed batch: every unit recorded complete exactly once, the rest kept as interrupted tries. */
function checkBatchEnd(b: Batch, bad: (m: string) => void, f: SigkillFigures): void {
  const all = readRecords(b.dir);
  for (const slot of SLOTS) {
    const complete = all.filter((x) => x.rec.slot === slot && x.rec.complete);
    if (complete.length > 1) {
      f.unitsTwice++;
      bad(`${b.dir}: slot ${slot} recorded complete ${complete.length} times (${complete.map((x) => x.file).join(', ')})`);
    }
    if (complete.length === 0) bad(`${b.dir}: slot ${slot} never recorded complete`);
  }
  for (const x of all) {
    const idx = x.rec.steps.map((s) => s.index);
    if (new Set(idx).size !== idx.length) bad(`${b.dir}/${x.file}: a step recorded twice`);
    if (!x.rec.complete && !x.file.includes('.interrupted-')) bad(`${b.dir}/${x.file}: incomplete, yet not kept as an interrupted try`);
  }
}

/** Every batch: no record a kill left was lost or changed, every kept try is listed, every died try is in the history once. */
function checkBatchHistory(b: Batch, bad: (m: string) => void): void {
  const all = readRecords(b.dir);
  const shas = new Set(all.map((x) => x.sha));
  for (const [sha, what] of b.kept) if (!shas.has(sha)) bad(`${b.dir}: the record ${what} is gone or was changed`);
  let st: StationState;
  try {
    st = JSON.parse(readFileSync(join(b.dir, 'station-state.json'), 'utf8')) as StationState;
  } catch (e) {
    bad(`${b.dir}: station-state.json unreadable at the end: ${(e as Error).message}`);
    return;
  }
  if (st.status === 'running') bad(`${b.dir}: still says running at the end`);
  if (b.completed && st.status !== 'finished') bad(`${b.dir}: completed, yet the state says ${st.status}`);
  const listed = new Set(Object.values(st.slots).flatMap((s) => s.interrupted));
  for (const x of all) if (x.file.includes('.interrupted-') && !listed.has(x.file)) bad(`${b.dir}: ${x.file} is kept but not listed in the state`);
  for (const pid of b.died) {
    const n = st.history.filter((h) => h.event.startsWith('aborted') && h.event.includes(`(pid ${pid})`)).length;
    if (n !== 1) bad(`${b.dir}: the death of pid ${pid} is in the history ${n} times`);
  }
}

/** The store: one unit row per run and slot, every reported step committed, runs ended as they ended. */
function checkStore(path: string, batches: Batch[], bad: (m: string) => void, f: SigkillFigures): void {
  const store = SqliteStore.open(path);
  try {
    for (const b of batches) {
      let runId: string | undefined;
      try {
        runId = (JSON.parse(readFileSync(join(b.dir, 'station-state.json'), 'utf8')) as StationState).run?.runId;
      } catch {
        continue; // reported by checkBatchHistory
      }
      if (!runId) continue;
      const run = store.db.prepare('SELECT status FROM runs WHERE run_id = ?').get(runId) as { status: string } | undefined;
      if (!run) {
        if (b.reported.length) bad(`${b.dir}: run ${runId} is not in the store`);
        continue;
      }
      if (b.completed && run.status !== 'finished') bad(`${b.dir}: the store says run ${runId} is ${run.status}`);
      if (!b.completed && run.status === 'running') bad(`${b.dir}: the store still says run ${runId} is running`);
      const units = store.db.prepare('SELECT slot, complete FROM units WHERE run_id = ? ORDER BY slot').all(runId) as Array<{ slot: number; complete: number }>;
      const slots = units.map((u) => u.slot);
      if (new Set(slots).size !== slots.length) {
        f.unitsTwice++;
        bad(`${b.dir}: the store holds a slot of run ${runId} twice`);
      }
      if (b.completed && units.filter((u) => u.complete).length !== SLOTS.length) bad(`${b.dir}: the store has ${units.filter((u) => u.complete).length} complete units of 4`);
      // Every reported step is a row (counted: a step reported twice by two tries is two rows).
      const rows = store.db.prepare('SELECT u.slot, s.step_index, s.name, s.attempt, s.status FROM steps s JOIN units u ON u.unit_id = s.unit_id WHERE u.run_id = ?').all(runId) as Array<{ slot: number; step_index: number; name: string; attempt: number; status: string }>;
      const have = new Map<string, number>();
      for (const x of rows) {
        const k = `${x.slot}|${x.step_index}|${x.name}|${x.attempt}|${x.status}`;
        have.set(k, (have.get(k) ?? 0) + 1);
      }
      for (const s of b.reported) {
        const k = `${s.slot}|${s.index}|${s.name}|${s.attempt}|${s.status}`;
        const n = have.get(k) ?? 0;
        if (n === 0) {
          f.stepsLost++;
          bad(`${b.dir}: slot ${s.slot} step ${s.index} '${s.name}' was reported finished but is not in the store`);
        } else have.set(k, n - 1);
      }
    }
  } finally {
    store.close();
  }
}
