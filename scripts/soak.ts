/**
 * Soak: the issue's four figures.
 * (a) many virtual flashes through the real flasher and SerialLink on the virtual bus, on a line with
 *     byte errors, with every chip fault sprinkled in, in virtual (model) time: a 1 MiB-class
 *     OpenBeken UA image over a chip holding the stock Tuya firmware, the factory flow's stock backup
 *     read first (CRC-checked) and handed to the flasher as the copy it restores stray writes from.
 *     Every figure is counted against the SIMULATOR (its flash content, the erase/program commands
 *     it ran), never against what the flasher claims; stray writes/erases are listed by region.
 * (b) SIGKILL the station at random moments of a 4-slot run (scripts/bench-lib/sigkill-soak.ts);
 * (c) the interlock property run (test/jig-interlock-property.worker.ts, two worker threads);
 * (d) the faulted 200-unit station run (scripts/bench-defects.ts --units N --json, a child process).
 * (b)-(d) run beside (a); each prints its own wall time.
 *
 *   node --import=tsx scripts/soak.ts [--units 1000] [--image-kib N] [--backup app|full|none]
 *                                     [--ber 1e-5] [--seed 1] [--sequences 100000] [--kills 50]
 *                                     [--defect-units 200] [--json]
 *
 * --image-kib N flashes an N KiB pattern instead of the OpenBeken image; --sequences 0, --kills 0 and
 * --defect-units 0 skip figures (c), (b), (d). Exit 0 when every target is met (completed >= 99.5 % of
 * the units without a permanent fault, 0 wrong-content units reported passed, every permanently
 * faulted unit failed naming its fault, 0 interlock violations, 0 SIGKILL violations, the defect run's
 * targets met), 1 otherwise, 2 on bad arguments.
 */
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { makeSyntheticImage } from '../firmware/synthetic.ts';
import { Bk7231Flasher, type FlashCopy, type FlasherRecoveryStats, type OutsideRestore } from '../rig/bk7231/flasher.ts';
import { flashRegionOf, type FlashRegion } from '../rig/bk7231/outside-guard.ts';
import { ModemLineReset } from '../rig/bk7231/reset.ts';
import { VirtualClock } from '../rig/core/clock.ts';
import { PlugrigError } from '../rig/core/errors.ts';
import { createLogger } from '../rig/core/log.ts';
import { mulberry32 } from '../rig/core/prng.ts';
import { SerialLink } from '../rig/serial/serial-link.ts';
import { backupRange, type StockBackupRegion } from '../suites/flash-backup.ts';
import { VirtualBk7231, type Bk7231Faults, type FlashOperation } from '../sim/bk7231/virtual-bk7231.ts';
import { FaultyUart, type UartFaultOptions } from '../sim/serial/uart-faults.ts';
import { VirtualSerialBus } from '../sim/serial/virtual-binding.ts';

const { values: args } = parseArgs({
  options: {
    units: { type: 'string', default: '1000' },
    'image-kib': { type: 'string' },
    backup: { type: 'string', default: 'app' },
    ber: { type: 'string', default: '1e-5' },
    seed: { type: 'string', default: '1' },
    sequences: { type: 'string', default: '100000' },
    kills: { type: 'string', default: '50' },
    'defect-units': { type: 'string', default: '200' },
    json: { type: 'boolean', default: false },
  },
});
function intArg(name: string, v: string | undefined, min: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    process.stderr.write(`soak: --${name} must be an integer >= ${min}, got "${v}"\n`);
    process.exit(2);
  }
  return n;
}
const UNITS = intArg('units', args.units, 1);
const SEED = intArg('seed', args.seed, 0);
const SEQUENCES = intArg('sequences', args.sequences, 0);
const KILLS = intArg('kills', args.kills, 0);
const DEFECT_UNITS = intArg('defect-units', args['defect-units'], 0);
const BER = Number(args.ber);
if (!(BER >= 0 && BER <= 1)) {
  process.stderr.write(`soak: --ber must be a probability, got "${args.ber}"\n`);
  process.exit(2);
}
if (!['app', 'full', 'none'].includes(args.backup!)) {
  process.stderr.write(`soak: --backup must be app, full or none, got "${args.backup}"\n`);
  process.exit(2);
}
const BACKUP = args.backup === 'none' ? null : (args.backup as StockBackupRegion);
const OFFSET = 0x11000;
const FLASH_SIZE = 0x200000;
const obk = makeSyntheticImage({ chip: 'BK7231N', kind: 'ua', version: '1.18.42', seed: 1 });
function pattern(length: number, seed: number): Uint8Array {
  let x = seed * 2654435761 || 1;
  return Uint8Array.from({ length }, () => ((x = (x * 1103515245 + 12345) >>> 0) >>> 16) & 0xff);
}
const image = args['image-kib'] === undefined ? obk.bytes : pattern(intArg('image-kib', args['image-kib'], 4) * 1024, 424242);
const IMAGE_NAME = args['image-kib'] === undefined ? `${obk.name} (${image.length} bytes)` : `${image.length / 1024} KiB pattern`;
/** The image as written: whole sectors (the flasher keeps the flash's bytes in a partial last one). */
const IMAGE_END = OFFSET + Math.ceil(image.length / 4096) * 4096;
const log = createLogger({}, 'silent');

/** A fault that no recovery can (or may) undo: the unit must fail, naming it. */
type Permanent = 'locked-sr' | 'unknown-flash-id' | 'dead-sector' | 'no-link';
/** What the unit must fail with when its fault is permanent. */
const CAUSE: Record<Permanent, RegExp> = {
  'locked-sr': /status register still protects the flash/,
  'unknown-flash-id': /unknown SPI flash part/,
  'dead-sector': /verify failed at|writing sector .* failed/,
  'no-link': /no reply to LinkCheck/,
};

interface UnitPlan {
  seed: number;
  chip: Bk7231Faults;
  flashId?: [number, number, number];
  line: UartFaultOptions;
  recoverable: string[];
  permanent?: Permanent;
}

/**
 * Fault sprinkling per unit (seeded): every unit sees the line's byte errors and occasional late and
 * stale replies; recoverable chip faults hit about one unit in six each; a permanent fault about one
 * unit in a hundred.
 */
/** Sectors of the image the flasher programs (an all-0xFF sector is erased only: a program fault there hits nothing). */
const PROGRAMMED = Array.from({ length: (IMAGE_END - OFFSET) / 4096 }, (_, k) => OFFSET + 4096 * k).filter((a) => image.subarray(a - OFFSET, a - OFFSET + 4096).some((b) => b !== 0xff));

function planUnit(i: number, faults: boolean): UnitPlan {
  const rnd = mulberry32(SEED * 1_000_003 + i);
  const seed = 1 + i;
  if (!faults) return { seed, chip: {}, line: {}, recoverable: [] };
  const sectors = (IMAGE_END - OFFSET) / 4096;
  const chip: Bk7231Faults = {};
  const recoverable: string[] = [];
  const brownOuts: Array<{ during: 'erase' | 'write'; nth: number }> = [];
  if (rnd() < 0.15) {
    brownOuts.push({ during: 'erase', nth: 1 + Math.floor(rnd() * 4) });
    recoverable.push('brown-out mid-erase');
  }
  if (rnd() < 0.15) {
    brownOuts.push({ during: 'write', nth: 1 + Math.floor(rnd() * sectors) });
    recoverable.push('brown-out mid-write');
  }
  if (brownOuts.length) chip.brownOuts = brownOuts;
  if (rnd() < 0.15) {
    chip.missLinkWindows = 1 + Math.floor(rnd() * 2);
    recoverable.push('missed link window');
  }
  if (rnd() < 0.15) {
    chip.failPrograms = { [PROGRAMMED[Math.floor(rnd() * PROGRAMMED.length)]!]: 1 + Math.floor(rnd() * 2) };
    recoverable.push('sector fails to program (transient)');
  }
  const line: UartFaultOptions = { seed: seed * 7919, byteErrorRate: BER, delayRate: 0.002, delayMs: 300, staleLinkCheckRate: 0.002 };
  const plan: UnitPlan = { seed, chip, line, recoverable };
  const p = rnd();
  if (p < 0.0025) {
    plan.permanent = 'locked-sr';
    chip.statusRegisterLocked = true;
  } else if (p < 0.005) {
    plan.permanent = 'unknown-flash-id';
    plan.flashId = [0x5e, 0x77, 0x15];
  } else if (p < 0.0075) {
    plan.permanent = 'dead-sector';
    chip.failPrograms = { ...chip.failPrograms, [PROGRAMMED[Math.floor(rnd() * PROGRAMMED.length)]!]: Infinity };
  } else if (p < 0.01) {
    plan.permanent = 'no-link';
    chip.missLinkWindows = 1000;
  }
  return plan;
}

interface UnitOutcome {
  plan: UnitPlan;
  passed: boolean;
  error?: string;
  /** Region the flasher's error names (a changed range outside the image it could not restore). */
  errorRegion?: string;
  /** The simulated flash holds the image, and nothing outside it changed. */
  contentRight: boolean;
  outsideRight: boolean;
  /** Flash time (connect + write), the backup read left out as the station does. */
  modelMs: number;
  backupMs: number;
  stats: FlasherRecoveryStats;
  restores: OutsideRestore[];
  /** Erase/program commands the chip ran outside the image that the flasher did not send there. */
  strays: Array<{ region: FlashRegion; kind: FlashOperation['kind']; address: number }>;
  lineFaults: number;
  brownOuts: number;
}

/** Outside-image operations the chip ran, minus the guard's own restores (its sectors, inside its time span). */
function strayOperations(ops: readonly FlashOperation[], restores: readonly OutsideRestore[]): UnitOutcome['strays'] {
  const out: UnitOutcome['strays'] = [];
  for (const op of ops) {
    const wrapped = op.address % FLASH_SIZE;
    if (op.address < FLASH_SIZE && wrapped >= OFFSET && wrapped < IMAGE_END) continue;
    const sector = wrapped - (wrapped % 4096);
    if (op.address < FLASH_SIZE && restores.some((r) => r.sectors.includes(sector) && op.atMs >= r.fromMs && op.atMs <= r.toMs)) continue;
    out.push({ region: flashRegionOf(op.address, FLASH_SIZE), kind: op.kind, address: op.address });
  }
  return out;
}

async function flashUnit(plan: UnitPlan): Promise<UnitOutcome> {
  const clock = new VirtualClock();
  const bus = new VirtualSerialBus(clock);
  // Factory case: the stock Tuya firmware (bootloader, app, storage, RF/MAC), block-protected SR.
  const chip = new VirtualBk7231({ seed: plan.seed, initialSr: 0x4004, faults: plan.chip, ...(plan.flashId ? { flashId: plan.flashId } : {}) });
  const line = new FaultyUart(chip, plan.line);
  bus.attach('dut', line, { modemLines: true });
  chip.powerOn();
  const link = await SerialLink.open({ path: 'sim:dut', baudRate: 115200, clock, binding: bus.binding });
  await link.setModemLines({ dtr: false, rts: false });
  await clock.sleep(400);
  const before = chip.flash.read(0, chip.flash.size);
  const ops: FlashOperation[] = [];
  chip.onFlashOperation((op) => ops.push(op));
  const flasher = new Bk7231Flasher({ port: link, reset: ModemLineReset.bk7231tools(), log, guardOutsideImage: true });
  const t0 = clock.now();
  let backupMs = 0;
  let passed = false;
  let error: string | undefined;
  let errorRegion: string | undefined;
  let restores: OutsideRestore[] = [];
  try {
    const info = await flasher.connect();
    let original: FlashCopy | undefined;
    if (BACKUP) {
      // As the flash suite does: the stock backup before anything is written (CRC-checked reads).
      const r = backupRange(BACKUP, info.flashSize);
      const b0 = clock.now();
      original = { offset: r.offset, data: await flasher.read(r.offset, r.length) };
      backupMs = clock.now() - b0;
    }
    const w = await flasher.write(image, OFFSET, original ? { original } : {});
    restores = w.outsideRestored;
    passed = true;
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
    if (e instanceof PlugrigError && typeof e.context.region === 'string') errorRegion = e.context.region;
  }
  const modelMs = clock.now() - t0 - backupMs;
  await link.close();
  const now = chip.flash.read(0, chip.flash.size);
  const contentRight = Buffer.compare(now.subarray(OFFSET, OFFSET + image.length), image) === 0;
  const outsideRight = Buffer.compare(now.subarray(0, OFFSET), before.subarray(0, OFFSET)) === 0 && Buffer.compare(now.subarray(OFFSET + image.length), before.subarray(OFFSET + image.length)) === 0;
  const c = line.counters;
  return {
    plan, passed, contentRight, outsideRight, modelMs, backupMs, stats: { ...flasher.stats }, restores, strays: strayOperations(ops, restores),
    lineFaults: c.flipped + c.dropped + c.duplicated + c.delayed + c.staleLinkChecks, brownOuts: chip.counters.brownOuts,
    ...(error ? { error } : {}), ...(errorRegion ? { errorRegion } : {}),
  };
}

/** Interlock property sequences in two worker threads (test/jig-interlock-property.worker.ts). */
async function interlockRun(sequences: number): Promise<{ sequences: number; violations: number; mainsOnOk: number; refused: number; examples: string[] }> {
  const url = new URL('../test/jig-interlock-property.worker.ts', import.meta.url);
  const run = (from: number, to: number): Promise<{ sequences: number; violations: number; mainsOnOk: number; refused: number; examples: string[] }> =>
    new Promise((resolve, reject) => {
      const boot = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(url.href)}); })`;
      const w = new Worker(boot, { eval: true, workerData: { from, to }, execArgv: [] });
      w.once('message', resolve);
      w.once('error', reject);
      w.once('exit', (code) => code !== 0 && reject(new Error(`interlock worker exited with ${code}`)));
    });
  const first = 0x50a40000;
  const half = Math.ceil(sequences / 2);
  const parts = await Promise.all([run(first, first + half), run(first + half, first + sequences)]);
  return {
    sequences: parts.reduce((a, p) => a + p.sequences, 0),
    violations: parts.reduce((a, p) => a + p.violations, 0),
    mainsOnOk: parts.reduce((a, p) => a + p.mainsOnOk, 0),
    refused: parts.reduce((a, p) => a + p.refused, 0),
    examples: parts.flatMap((p) => p.examples),
  };
}

/** Figure (b): h25's SIGKILL soak, loaded by path so this script runs (without that row) where it is absent. */
interface SigkillRow {
  kills: number;
  killsInStateWrite: number;
  stepsChecked: number;
  stepsLost: number;
  unitsTwice: number;
  restartsOpeningJig: number;
  jigConfirmedSafe: number;
  diedRunning: number;
  abortedReported: number;
  stateUnreadable: number;
  violations: string[];
  wallMs: number;
}
async function sigkillRun(kills: number): Promise<SigkillRow | { missing: string }> {
  const path = './bench-lib/sigkill-soak.ts';
  let mod: { runSigkillSoak?: (o: { kills: number; seed: number; pauseEvery?: number }) => Promise<SigkillRow> };
  try {
    mod = (await import(path)) as typeof mod;
  } catch (e) {
    return { missing: `scripts/bench-lib/sigkill-soak.ts not loadable (${(e as Error).message.split('\n')[0]})` };
  }
  if (typeof mod.runSigkillSoak !== 'function') return { missing: 'scripts/bench-lib/sigkill-soak.ts has no runSigkillSoak' };
  return mod.runSigkillSoak({ kills, seed: SEED, pauseEvery: 5 });
}

/** Figure (d): h23's faulted station run, as a child process (its own --json figures). */
interface DefectRow {
  units: number;
  faulted: number;
  caught: number;
  goodFailed: number;
  unsafe: number;
  met: boolean;
  wallSeconds: number;
}
function defectRun(units: number): Promise<DefectRow | { missing: string }> {
  return new Promise((resolve) => {
    const script = new URL('./bench-defects.ts', import.meta.url).pathname;
    const child = spawn(process.execPath, ['--import=tsx', script, '--units', String(units), '--seed', String(SEED), '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => {
      try {
        resolve(JSON.parse(out) as DefectRow);
      } catch {
        resolve({ missing: `bench-defects.ts exited ${code} without JSON: ${(err || out).trim().split('\n').slice(-1)[0] ?? ''}` });
      }
    });
  });
}

const started = performance.now();
const since = (t: number): number => (performance.now() - t) / 1000;
// (b)-(d) run beside the flashes (other processes and threads); each keeps its own wall time.
const timed = async <T>(p: () => Promise<T>): Promise<{ value: T; wallS: number }> => {
  const t = performance.now();
  return { value: await p(), wallS: since(t) };
};
const interlockP = SEQUENCES > 0 ? timed(() => interlockRun(SEQUENCES)) : undefined;
const sigkillP = KILLS > 0 ? timed(() => sigkillRun(KILLS)) : undefined;
const defectsP = DEFECT_UNITS > 0 ? timed(() => defectRun(DEFECT_UNITS)) : undefined;

// Fault-free baseline: the same image, backup and starting content on a clean line.
const BASELINE_UNITS = Math.min(20, UNITS);
const baseline: UnitOutcome[] = [];
for (let i = 0; i < BASELINE_UNITS; i++) baseline.push(await flashUnit(planUnit(i, false)));
const outcomes: UnitOutcome[] = [];
for (let i = 0; i < UNITS; i++) {
  outcomes.push(await flashUnit(planUnit(i, true)));
  if (!args.json && process.stderr.isTTY && i % 10 === 9) process.stderr.write(`\rsoak: ${i + 1}/${UNITS} units`);
}
if (!args.json && process.stderr.isTTY) process.stderr.write('\n');
const flashWallS = since(started);
const interlock = await interlockP;
const sigkill = await sigkillP;
const defects = await defectsP;

const mean = (xs: number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
const eligible = outcomes.filter((o) => !o.plan.permanent);
const permanent = outcomes.filter((o) => o.plan.permanent);
const right = (o: UnitOutcome): boolean => o.passed && o.contentRight && o.outsideRight;
const completed = eligible.filter(right);
const wrongPassed = outcomes.filter((o) => o.passed && !(o.contentRight && o.outsideRight));
const permanentNamed = permanent.filter((o) => !o.passed && o.error !== undefined && CAUSE[o.plan.permanent!].test(o.error));
const sum = (k: keyof FlasherRecoveryStats): number => outcomes.reduce((a, o) => a + o.stats[k], 0);
const baseMs = mean(baseline.map((o) => o.modelMs));
const faultyMs = mean(eligible.filter((o) => o.passed).map((o) => o.modelMs));
const failures = eligible.filter((o) => !right(o));
const byFault = new Map<string, number>();
for (const o of outcomes) for (const f of o.plan.recoverable) byFault.set(f, (byFault.get(f) ?? 0) + 1);

/** Where the stray writes and erases landed, and what became of them. */
const REGIONS: FlashRegion[] = ['bootloader', 'app', 'OTA/download', 'RF/MAC', 'config/KV', 'Tuya storage', 'beyond flash'];
const strayTable = REGIONS.map((region) => {
  const hit = outcomes.filter((o) => o.strays.some((x) => x.region === region));
  const ops = outcomes.flatMap((o) => o.strays.filter((x) => x.region === region));
  const restored = outcomes.flatMap((o) => o.restores.filter((r) => r.region === region));
  return {
    region,
    erases: ops.filter((x) => x.kind === 'erase').length,
    programs: ops.filter((x) => x.kind === 'program').length,
    units: hit.length,
    restoredBlank: restored.filter((r) => r.source === 'blank').length,
    restoredCopy: restored.filter((r) => r.source !== 'blank').length,
    failedNamingIt: outcomes.filter((o) => !o.passed && o.errorRegion === region).length,
  };
});

const completedPct = (100 * completed.length) / Math.max(1, eligible.length);
const sigkillRow = sigkill && !('missing' in sigkill.value) ? sigkill.value : undefined;
const defectRow = defects && !('missing' in defects.value) ? defects.value : undefined;
const ok =
  completedPct >= 99.5 &&
  wrongPassed.length === 0 &&
  permanentNamed.length === permanent.length &&
  baseline.every(right) &&
  (!interlock || interlock.value.violations === 0) &&
  (!sigkill || (sigkillRow !== undefined && sigkillRow.violations.length === 0)) &&
  (!defects || (defectRow !== undefined && defectRow.met));
const figures = {
  units: UNITS,
  image: IMAGE_NAME,
  imageBytes: image.length,
  backup: BACKUP ?? 'none',
  byteErrorRate: BER,
  lineFaultEvents: outcomes.reduce((a, o) => a + o.lineFaults, 0),
  brownOuts: outcomes.reduce((a, o) => a + o.brownOuts, 0),
  recoverableFaults: Object.fromEntries(byFault),
  unitsWithoutPermanentFault: eligible.length,
  completed: completed.length,
  completedPct,
  permanentFaultUnits: permanent.length,
  permanentFailedNamingFault: permanentNamed.length,
  wrongContentReportedPassed: wrongPassed.length,
  commandRetries: sum('commandRetries'),
  relinks: sum('relinks'),
  sectorRewrites: sum('sectorRewrites'),
  baudFallbacks: sum('baudFallbacks'),
  outsideRestores: sum('outsideRestores'),
  rfRestores: sum('rfRestores'),
  strays: strayTable,
  baselineModelS: baseMs / 1000,
  faultyModelS: faultyMs / 1000,
  timeOverheadPct: 100 * (faultyMs / baseMs - 1),
  meanBackupModelS: mean(outcomes.map((o) => o.backupMs)) / 1000,
  flashWallS,
  interlock: interlock ? { sequences: interlock.value.sequences, violations: interlock.value.violations, mainsOnOk: interlock.value.mainsOnOk, refused: interlock.value.refused, wallS: interlock.wallS } : null,
  sigkill: sigkill ? { ...sigkill.value, wallS: sigkill.wallS } : null,
  defects: defects ? { ...defects.value, wallS: defects.wallS } : null,
  wallS: since(started),
  failures: failures.slice(0, 20).map((o) => ({ unit: o.plan.seed, faults: o.plan.recoverable, error: o.error, region: o.errorRegion, contentRight: o.contentRight, outsideRight: o.outsideRight })),
  ok,
};

if (args.json) {
  process.stdout.write(JSON.stringify(figures, null, 2) + '\n');
} else {
  const row = (k: string, v: string, target = ''): string => `${k.padEnd(56)} ${v.padStart(16)}  ${target}`;
  const sk = sigkill?.value;
  const df = defects?.value;
  const lines = [
    `(a) ${UNITS} virtual flashes of ${IMAGE_NAME} at 0x${OFFSET.toString(16)} over the stock Tuya firmware, stock backup '${BACKUP ?? 'none'}' read first, byte-error rate ${BER} both ways, seed ${SEED} (model time)`,
    '',
    row('figure', 'value', 'target'),
    row('line fault events (bit flips, late/stale replies)', String(figures.lineFaultEvents)),
    row('brown-outs that happened', String(figures.brownOuts)),
    ...[...byFault].map(([f, n]) => row(`  units with ${f}`, String(n))),
    row('units completed (no permanent fault)', `${completed.length}/${eligible.length} = ${completedPct.toFixed(2)} %`, '>= 99.5 %'),
    row('permanent-fault units failed naming the fault', `${permanentNamed.length}/${permanent.length}`, 'all'),
    row('wrong flash content reported passed (sim flash)', String(wrongPassed.length), '0'),
    row('retries: commands re-sent', String(figures.commandRetries)),
    row('retries: re-links', String(figures.relinks)),
    row('retries: sectors rewritten', String(figures.sectorRewrites)),
    row('retries: baud fallbacks', String(figures.baudFallbacks)),
    row('ranges outside the image restored (CRC-proved)', String(figures.outsideRestores)),
    row('  of which the RF/MAC sector', String(figures.rfRestores)),
    row('mean flash time, fault-free / faulty (model s)', `${(baseMs / 1000).toFixed(2)} / ${(faultyMs / 1000).toFixed(2)}`),
    row('time overhead vs fault-free', `${figures.timeOverheadPct.toFixed(1)} %`),
    row('mean stock backup read, left out above (model s)', figures.meanBackupModelS.toFixed(2)),
    '',
    '    stray writes/erases by region (chip commands outside the image the flasher did not aim there)',
    `    ${'region'.padEnd(14)} ${'erases'.padStart(7)} ${'writes'.padStart(7)} ${'units'.padStart(6)} ${'restored:blank'.padStart(15)} ${'restored:copy'.padStart(14)} ${'failed naming it'.padStart(17)}`,
    ...strayTable.map((r) => `    ${r.region.padEnd(14)} ${String(r.erases).padStart(7)} ${String(r.programs).padStart(7)} ${String(r.units).padStart(6)} ${String(r.restoredBlank).padStart(15)} ${String(r.restoredCopy).padStart(14)} ${String(r.failedNamingIt).padStart(17)}`),
    '    (beyond flash: the address had a bit >= 21 flipped; the flash aliases it onto the sector meant)',
    ...failures.slice(0, 10).map((o) => `  failed unit ${o.plan.seed} [${o.plan.recoverable.join(', ')}]: ${o.error ?? `content ${o.contentRight ? 'right' : 'WRONG'}, outside ${o.outsideRight ? 'unchanged' : 'CHANGED'}`}`),
    `(a) flashes: ${flashWallS.toFixed(0)} s wall`,
    '',
    ...(sk === undefined
      ? ['(b) SIGKILL: skipped (--kills 0)']
      : 'missing' in sk
        ? [`(b) SIGKILL: not run: ${sk.missing}`]
        : [
            row(`(b) SIGKILL kills of a 4-slot run (${sk.killsInStateWrite} inside a state write)`, String(sk.kills), '50'),
            row('    finished steps lost', `${sk.stepsLost} of ${sk.stepsChecked}`, '0'),
            row('    units recorded twice', String(sk.unitsTwice), '0'),
            row('    restarts that confirmed the jig safe', `${sk.jigConfirmedSafe}/${sk.restartsOpeningJig}`, 'all'),
            row('    killed runs reported (and marked aborted)', `${sk.abortedReported}/${sk.diedRunning}`, 'all'),
            row('    state files left unreadable', String(sk.stateUnreadable), '0'),
            ...sk.violations.slice(0, 5).map((v) => `    violation: ${v}`),
            `(b) SIGKILL: ${sigkill!.wallS.toFixed(0)} s wall`,
          ]),
    '',
    ...(interlock ? [row('(c) interlock sequences / violations', `${interlock.value.sequences} / ${interlock.value.violations}`, '>= 100000 / 0'), ...interlock.value.examples.map((e) => `  interlock: ${e}`), `(c) interlock: ${interlock.wallS.toFixed(0)} s wall`] : ['(c) interlock: skipped (--sequences 0)']),
    '',
    ...(df === undefined
      ? ['(d) faulted station run: skipped (--defect-units 0)']
      : 'missing' in df
        ? [`(d) faulted station run: not run: ${df.missing}`]
        : [
            row(`(d) ${df.units} units, 4-slot jig, plug faults: faulted failed by the step naming it`, `${df.caught}/${df.faulted}`, 'all'),
            row('    good units failed', String(df.goodFailed), '0'),
            row('    jig not in its safe state at the end', String(df.unsafe), '0'),
            `(d) scripts/bench-defects.ts --units ${df.units}: ${defects!.wallS.toFixed(0)} s wall`,
          ]),
    '',
    `${ok ? 'all targets met' : 'TARGETS MISSED'} (${figures.wallS.toFixed(0)} s wall)`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
}
process.exit(ok ? 0 : 1);
