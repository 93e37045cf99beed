/**
 * Soak: many virtual flashes through the real flasher and SerialLink on the virtual bus, on a
 * line with byte errors, with every chip fault sprinkled in, each in virtual (model) time; then the
 * interlock property run. Prints a table; every figure is counted against the SIMULATOR (its flash
 * content, its counters), never against what the flasher claims.
 *
 *   node --import=tsx scripts/soak.ts [--units 1000] [--image-kib 256] [--ber 1e-5] [--seed 1]
 *                                     [--sequences 100000] [--json]
 *
 * Exit 0 when every target is met (completed >= 99.5 % of the units without a permanent fault,
 * 0 wrong-content units reported passed, every permanently faulted unit failed naming its fault,
 * 0 interlock violations), 1 otherwise.
 */
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { Bk7231Flasher, type FlasherRecoveryStats } from '../rig/bk7231/flasher.ts';
import { ModemLineReset } from '../rig/bk7231/reset.ts';
import { VirtualClock } from '../rig/core/clock.ts';
import { createLogger } from '../rig/core/log.ts';
import { mulberry32 } from '../rig/core/prng.ts';
import { SerialLink } from '../rig/serial/serial-link.ts';
import { VirtualBk7231, type Bk7231Faults } from '../sim/bk7231/virtual-bk7231.ts';
import { FaultyUart, type UartFaultOptions } from '../sim/serial/uart-faults.ts';
import { VirtualSerialBus } from '../sim/serial/virtual-binding.ts';

const { values: args } = parseArgs({
  options: {
    units: { type: 'string', default: '1000' },
    'image-kib': { type: 'string', default: '256' },
    ber: { type: 'string', default: '1e-5' },
    seed: { type: 'string', default: '1' },
    sequences: { type: 'string', default: '100000' },
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
const IMAGE_BYTES = intArg('image-kib', args['image-kib'], 4) * 1024;
const SEED = intArg('seed', args.seed, 0);
const SEQUENCES = intArg('sequences', args.sequences, 0);
const BER = Number(args.ber);
if (!(BER >= 0 && BER <= 1)) {
  process.stderr.write(`soak: --ber must be a probability, got "${args.ber}"\n`);
  process.exit(2);
}
const OFFSET = 0x11000;
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
function planUnit(i: number, faults: boolean): UnitPlan {
  const rnd = mulberry32(SEED * 1_000_003 + i);
  const seed = 1 + i;
  if (!faults) return { seed, chip: {}, line: {}, recoverable: [] };
  const sectors = IMAGE_BYTES / 4096;
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
    chip.failPrograms = { [OFFSET + 4096 * Math.floor(rnd() * sectors)]: 1 + Math.floor(rnd() * 2) };
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
    chip.failPrograms = { ...chip.failPrograms, [OFFSET + 4096 * Math.floor(rnd() * sectors)]: Infinity };
  } else if (p < 0.01) {
    plan.permanent = 'no-link';
    chip.missLinkWindows = 1000;
  }
  return plan;
}

function pattern(length: number, seed: number): Uint8Array {
  let x = seed * 2654435761 || 1;
  return Uint8Array.from({ length }, () => ((x = (x * 1103515245 + 12345) >>> 0) >>> 16) & 0xff);
}

interface UnitOutcome {
  plan: UnitPlan;
  passed: boolean;
  error?: string;
  /** The simulated flash holds the image, and nothing outside it changed. */
  contentRight: boolean;
  outsideRight: boolean;
  modelMs: number;
  stats: FlasherRecoveryStats;
  lineFaults: number;
  brownOuts: number;
}

const image = pattern(IMAGE_BYTES, 424242);

async function flashUnit(plan: UnitPlan): Promise<UnitOutcome> {
  const clock = new VirtualClock();
  const bus = new VirtualSerialBus(clock);
  // Factory case: other firmware where the image goes, block-protected SR, as shipped plugs are.
  const chip = new VirtualBk7231({
    seed: plan.seed,
    initialSr: 0x4004,
    initialImages: [{ address: OFFSET, data: pattern(IMAGE_BYTES, plan.seed + 1) }],
    faults: plan.chip,
    ...(plan.flashId ? { flashId: plan.flashId } : {}),
  });
  const line = new FaultyUart(chip, plan.line);
  bus.attach('dut', line, { modemLines: true });
  chip.powerOn();
  const link = await SerialLink.open({ path: 'sim:dut', baudRate: 115200, clock, binding: bus.binding });
  await link.setModemLines({ dtr: false, rts: false });
  await clock.sleep(400);
  const before = chip.flash.read(0, chip.flash.size);
  const flasher = new Bk7231Flasher({ port: link, reset: ModemLineReset.bk7231tools(), log, guardOutsideImage: true });
  const t0 = clock.now();
  let passed = false;
  let error: string | undefined;
  try {
    await flasher.connect();
    await flasher.write(image, OFFSET);
    passed = true;
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
  }
  const modelMs = clock.now() - t0;
  await link.close();
  const now = chip.flash.read(0, chip.flash.size);
  const contentRight = Buffer.compare(now.subarray(OFFSET, OFFSET + IMAGE_BYTES), image) === 0;
  const outsideRight = Buffer.compare(now.subarray(0, OFFSET), before.subarray(0, OFFSET)) === 0 && Buffer.compare(now.subarray(OFFSET + IMAGE_BYTES), before.subarray(OFFSET + IMAGE_BYTES)) === 0;
  const c = line.counters;
  return { plan, passed, contentRight, outsideRight, modelMs, stats: { ...flasher.stats }, lineFaults: c.flipped + c.dropped + c.duplicated + c.delayed + c.staleLinkChecks, brownOuts: chip.counters.brownOuts, ...(error ? { error } : {}) };
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

const started = performance.now();
// Fault-free baseline: the same image and starting content on a clean line.
const BASELINE_UNITS = Math.min(20, UNITS);
const baseline: UnitOutcome[] = [];
for (let i = 0; i < BASELINE_UNITS; i++) baseline.push(await flashUnit(planUnit(i, false)));
const outcomes: UnitOutcome[] = [];
for (let i = 0; i < UNITS; i++) {
  outcomes.push(await flashUnit(planUnit(i, true)));
  if (!args.json && process.stderr.isTTY && i % 10 === 9) process.stderr.write(`\rsoak: ${i + 1}/${UNITS} units`);
}
if (!args.json && process.stderr.isTTY) process.stderr.write('\n');
const interlock = SEQUENCES > 0 ? await interlockRun(SEQUENCES) : undefined;

const mean = (xs: number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
const eligible = outcomes.filter((o) => !o.plan.permanent);
const permanent = outcomes.filter((o) => o.plan.permanent);
const completed = eligible.filter((o) => o.passed && o.contentRight && o.outsideRight);
const wrongPassed = outcomes.filter((o) => o.passed && !(o.contentRight && o.outsideRight));
const permanentNamed = permanent.filter((o) => !o.passed && o.error !== undefined && CAUSE[o.plan.permanent!].test(o.error));
const sum = (k: keyof FlasherRecoveryStats): number => outcomes.reduce((a, o) => a + o.stats[k], 0);
const baseMs = mean(baseline.map((o) => o.modelMs));
const faultyMs = mean(eligible.filter((o) => o.passed).map((o) => o.modelMs));
const failures = eligible.filter((o) => !(o.passed && o.contentRight && o.outsideRight));
const byFault = new Map<string, number>();
for (const o of outcomes) for (const f of o.plan.recoverable) byFault.set(f, (byFault.get(f) ?? 0) + 1);

const completedPct = (100 * completed.length) / Math.max(1, eligible.length);
const ok = completedPct >= 99.5 && wrongPassed.length === 0 && permanentNamed.length === permanent.length && baseline.every((o) => o.passed && o.contentRight && o.outsideRight) && (!interlock || interlock.violations === 0);
const figures = {
  units: UNITS,
  imageBytes: IMAGE_BYTES,
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
  rfRestores: sum('rfRestores'),
  baselineModelS: baseMs / 1000,
  faultyModelS: faultyMs / 1000,
  timeOverheadPct: 100 * (faultyMs / baseMs - 1),
  interlock: interlock ? { sequences: interlock.sequences, violations: interlock.violations, mainsOnOk: interlock.mainsOnOk, refused: interlock.refused } : null,
  wallS: (performance.now() - started) / 1000,
  failures: failures.slice(0, 10).map((o) => ({ unit: o.plan.seed, faults: o.plan.recoverable, error: o.error, contentRight: o.contentRight, outsideRight: o.outsideRight })),
  ok,
};

if (args.json) {
  process.stdout.write(JSON.stringify(figures, null, 2) + '\n');
} else {
  const row = (k: string, v: string, target = ''): string => `${k.padEnd(52)} ${v.padStart(14)}  ${target}`;
  const lines = [
    `soak: ${UNITS} virtual flashes of a ${IMAGE_BYTES / 1024} KiB image at 0x${OFFSET.toString(16)}, byte-error rate ${BER} both ways, seed ${SEED} (model time)`,
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
    row('RF/MAC sectors restored after a stray write', String(figures.rfRestores)),
    row('mean flash time, fault-free / faulty (model s)', `${(baseMs / 1000).toFixed(2)} / ${(faultyMs / 1000).toFixed(2)}`),
    row('time overhead vs fault-free', `${figures.timeOverheadPct.toFixed(1)} %`),
    ...(interlock ? [row('interlock sequences / violations', `${interlock.sequences} / ${interlock.violations}`, '>= 100000 / 0')] : []),
    '',
    ...failures.slice(0, 10).map((o) => `  failed unit ${o.plan.seed} [${o.plan.recoverable.join(', ')}]: ${o.error ?? `content ${o.contentRight ? 'right' : 'WRONG'}, outside ${o.outsideRight ? 'unchanged' : 'CHANGED'}`}`),
    ...(interlock?.examples ?? []).map((e) => `  interlock: ${e}`),
    `${ok ? 'all targets met' : 'TARGETS MISSED'} (${figures.wallS.toFixed(0)} s wall)`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
}
process.exit(ok ? 0 : 1);
