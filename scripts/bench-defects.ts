/**
 * Defect detection table: every injectable defect of the virtual plug through the factory plan on
 * the virtual 4-slot jig (virtual time), plus good units, printed as defect -> the first step that
 * failed -> its message -> did the jig end in its safe state. Target: every defect caught by the
 * step that names it, no good unit failed. 'stock firmware still running' is a unit that skipped
 * the flash station, so it goes through the verify plan (a flashing plan overwrites the stock app).
 *
 *   node --import=tsx scripts/bench-defects.ts [--good N] [--seed S] [--shunt-units N] [--json]
 *   node --import=tsx scripts/bench-defects.ts --units 200 [--fault-rate 0.15] [--seed S] [--shard i/n] [--json]
 *   node --import=tsx scripts/bench-defects.ts --units 200 --combine shard0.json shard1.json ...
 *
 * --units N: N units through the factory plan, four at a time, each unit drawn from the seed (its
 * BL0937 parts, its MAC), about a --fault-rate share of them carrying one plug fault (a sim defect,
 * or an HTTP transport fault `http-<kind>` put in the slot's jig-file `faults` block); the faulted
 * units take the fault kinds in turn from seeded shuffles of the whole list, so every kind is in the
 * mix once there are as many faulted units as kinds (an independent draw per unit left 7 of 20 out of
 * the 200-unit run). Prints how many faulted units were failed by the step naming their fault, in
 * three groups: issue 10's plug faults (HTTP timeouts and stalls, refused during boot, boot loops into
 * safe mode, malformed/truncated JSON, negative status), issue 8's metering hardware defects (with the
 * shunt +10 % defect's detection ceiling: the share of drawn units whose factors no in-tolerance parts
 * give, and which of the run's shunt units were such), and the other unit defects; and how many good
 * units failed.
 * --shard i/n runs only every n-th 4-slot batch (from the same unit list and seeds), so n processes
 * share the run; --combine prints the whole run's table from their --json files.
 * --shunt-units N (default 200, 0 to skip): after the table, the shunt defect's detection probability
 * measured on N drawn units and N good ones through calibrate + the factor check
 * (scripts/bench-lib/shunt-detection.ts): one unit per defect cannot say how often a defect that
 * good parts can mimic is caught.
 * The flash suite writes a 200 kB synthetic image; the stock backup is left out of the bench's copy
 * of the factory plan (it reads 1.15 MB per unit and finds no defect). Exit 0 when the targets are
 * met, 1 when not, 2 on bad arguments.
 */
import { readFileSync } from 'node:fs';
import { mulberry32 } from '../rig/core/prng.ts';
import { parseJig } from '../rig/jig/jig-config.ts';
import { loadPlan, parsePlan, type LoadedPlan } from '../suites/plan/load-plan.ts';
import { PLUG_DEFECT_NAMES } from '../sim/plug/plug-defects.ts';
import { BL0937_DEFECT_NAMES } from '../sim/plug/bl0937/defects.ts';
import { ObkPlug } from '../sim/plug/obk-plug.ts';
import { measureShuntDetection, SHUNT_DEFECT, shuntDetectionCeiling, shuntDetectionLines, shuntSeparable } from './bench-lib/shunt-detection.ts';
import { classify, DEFECT_EXPECTATIONS, fixtureJigText, HTTP_FAULT_NAMES, runBatch, STOCK_FIRMWARE, uncoveredDefects, type UnitOutcome, type UnitSpec } from './bench-lib/defect-run.ts';
import { parseScriptArgs } from './bench-lib/script-args.ts';

const { values: args, positionals } = parseScriptArgs('bench-defects', {
  options: {
    units: { type: 'string' },
    good: { type: 'string', default: '3' },
    seed: { type: 'string', default: '1' },
    'fault-rate': { type: 'string', default: '0.15' },
    json: { type: 'boolean', default: false },
    shard: { type: 'string' },
    combine: { type: 'boolean', default: false },
    'shunt-units': { type: 'string', default: '200' },
  },
  allowPositionals: true,
});
function int(name: string, v: string | undefined, min: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    process.stderr.write(`bench-defects: --${name} must be an integer >= ${min}, got "${v}"\n`);
    process.exit(2);
  }
  return n;
}
const SEED = int('seed', args.seed, 1);
const GOOD = int('good', args.good, 0);
const UNITS = args.units === undefined ? undefined : int('units', args.units, 1);
const SHUNT_UNITS = int('shunt-units', args['shunt-units'], 0);
const FAULT_RATE = Number(args['fault-rate']);
if (!(FAULT_RATE >= 0 && FAULT_RATE <= 1)) {
  process.stderr.write(`bench-defects: --fault-rate must be between 0 and 1, got "${args['fault-rate']}"\n`);
  process.exit(2);
}

/** --shard i/n: only the 4-slot batches whose index is i modulo n (same units, same seeds as the whole run). */
const SHARD = (() => {
  if (args.shard === undefined) return { i: 0, n: 1 };
  const m = /^(\d+)\/(\d+)$/.exec(args.shard);
  if (!m || Number(m[2]) < 1 || Number(m[1]) >= Number(m[2])) {
    process.stderr.write(`bench-defects: --shard must be i/n with 0 <= i < n, got "${args.shard}"\n`);
    process.exit(2);
  }
  return { i: Number(m[1]), n: Number(m[2]) };
})();

const PLANS = new URL('../fixtures/plans', import.meta.url).pathname;
/** Front ends drawn for the shunt defect's detection ceiling (parts only: about 0.6 s; ±0.7 % at 95 %). */
const CEILING_DRAWS = 20_000;
const JIG = parseJig(JSON.parse(fixtureJigText('virtual-4slot.json')), 'virtual-4slot');
const SLOTS = JIG.slots.map((s) => s.id);

/** The factory plan as shipped, without the stock-firmware backup (see the header). */
function factoryPlan(): LoadedPlan {
  const shipped = loadPlan('factory', PLANS);
  const raw = structuredClone(shipped.plan) as unknown as { suites: Array<Record<string, unknown>> };
  for (const s of raw.suites) if (s.suite === 'flash') delete s.backup;
  return { ...shipped, plan: parsePlan(raw, `${shipped.source} (bench copy, no backup)`) };
}

const missing = uncoveredDefects();
if (missing.length > 0) {
  process.stderr.write(`bench-defects: no expected step for ${missing.join(', ')}\n`);
  process.exit(1);
}

interface Row extends UnitOutcome {
  plan: string;
  batch: number;
  /** shunt +10 % units: a perfect measurement could separate the unit's parts from in-tolerance ones. */
  separable?: boolean;
}

/** Issue 10's plug faults ((d): "HTTP timeouts and stalls, connection refused during boot, reboot loops into safe mode, malformed or truncated JSON, a negative status code"). */
const ISSUE10_PLUG_FAULTS: readonly string[] = ['http-timeout', 'http-stalls', 'http-stall-mid-body', 'http-refuse-during-boot', 'boot-loop', 'http-malformed-json', 'http-truncated-json', 'http-negative-status'];
/** Issue 8's metering hardware defects (the BL0937 front end). */
const METERING_DEFECTS: readonly string[] = BL0937_DEFECT_NAMES;

/** For a shunt +10 % unit: could a perfect measurement separate its parts from in-tolerance ones (the simulator's truth)? */
function shuntSeparability(vj: Parameters<NonNullable<Parameters<typeof runBatch>[0]['inspect']>>[0], slot: number): boolean | undefined {
  const plug = vj.slot(slot).plug;
  return plug instanceof ObkPlug ? shuntSeparable(plug.bl0937.truth().frontEnd) : undefined;
}

async function runUnits(specs: ReadonlyArray<{ defects: readonly string[] }>, plan: LoadedPlan, seed0: number, onRow: (r: Row) => void): Promise<{ rows: Row[]; modelMs: number }> {
  const rows: Row[] = [];
  let modelMs = 0;
  for (let i = 0, batch = 0; i < specs.length; i += SLOTS.length, batch++) {
    if (batch % SHARD.n !== SHARD.i) continue;
    const units: UnitSpec[] = specs.slice(i, i + SLOTS.length).map((s, k) => ({ slot: SLOTS[k]!, defects: s.defects }));
    const separable = new Map<number, boolean | undefined>();
    const inspect: Parameters<typeof runBatch>[0]['inspect'] = (vj, outcomes) => {
      for (const o of outcomes) if (o.defects.includes(SHUNT_DEFECT)) separable.set(o.slot, shuntSeparability(vj, o.slot));
    };
    const r = await runBatch({ jig: JIG, plan, units, seed: seed0 + batch, inspect });
    modelMs += r.modelMs;
    for (const o of r.outcomes) {
      const sep = separable.get(o.slot);
      const row = { ...o, plan: plan.plan.name, batch: seed0 + batch, ...(sep !== undefined ? { separable: sep } : {}) };
      rows.push(row);
      onRow(row);
    }
  }
  return { rows, modelMs };
}

const wall0 = performance.now();
const pad = (s: string, n: number): string => (s.length >= n ? s : s + ' '.repeat(n - s.length));
/** The human-readable table: stdout, or stderr when stdout carries --json. */
const out = (s: string): void => {
  (args.json ? process.stderr : process.stdout).write(s);
};

if (UNITS === undefined) {
  // The table: one unit per defect, then the good units.
  const factory = factoryPlan();
  const onFactory = DEFECT_EXPECTATIONS.filter((e) => e.defect !== STOCK_FIRMWARE).map((e) => ({ defects: [e.defect] }));
  const good = Array.from({ length: GOOD }, () => ({ defects: [] as string[] }));
  out(`defect detection: factory plan on the virtual 4-slot jig (virtual time), seed ${SEED}\n\n`);
  out(`${pad('defect', 38)}${pad('first failing step', 64)}${pad('message', 0)}\n`);
  const rows: Row[] = [];
  const print = (r: Row): void => {
    const d = r.defects.length === 0 ? 'none (good unit)' : DEFECT_EXPECTATIONS.find((e) => e.defect === r.defects[0])?.what ?? r.defects.join('+');
    const c = classify(r);
    rows.push(r);
    out(`${pad(`${d}${r.plan === 'factory' ? '' : ` [${r.plan}]`}`, 38)}${pad(r.firstFail?.name ?? '(none: PASS)', 64)}${r.firstFail?.reason ?? ''}\n`);
    out(`${' '.repeat(38)}-> ${c}; jig ended ${r.safe ? 'safe' : 'NOT SAFE'} (mains ${r.end?.mainsEnergised ? 'ON' : 'off'}, UART ${r.end?.uartConnected ? 'connected' : 'isolated'}, loads ${r.end?.loadsOn.length ? r.end.loadsOn.join(',') : 'off'})\n`);
  };
  const a = await runUnits([...onFactory, ...good], factory, SEED, print);
  const verify = loadPlan('verify', PLANS);
  const b = await runUnits([{ defects: [STOCK_FIRMWARE] }], verify, SEED + 100, print);
  const faulted = rows.filter((r) => r.defects.length > 0);
  const caught = faulted.filter((r) => classify(r) === 'caught by its step').length;
  const goodFailed = rows.filter((r) => classify(r) === 'good, failed').length;
  const unsafe = rows.filter((r) => !r.safe).length;
  const wall = (performance.now() - wall0) / 1000;
  const met = caught === faulted.length && goodFailed === 0 && unsafe === 0;
  out(`\n${caught} of ${faulted.length} defects caught by the step that names them; ${faulted.filter((r) => classify(r) === 'caught by another step').length} by another step; ${faulted.filter((r) => classify(r) === 'missed').length} missed\n`);
  out(`${rows.length - faulted.length - goodFailed} of ${rows.length - faulted.length} good units passed; ${rows.length - unsafe} of ${rows.length} slots ended in the safe state\n`);
  out(`modelled ${((a.modelMs + b.modelMs) / 1000).toFixed(0)} s in ${Math.ceil(rows.length / SLOTS.length)} batches of up to ${SLOTS.length} slots; wall ${wall.toFixed(0)} s\n`);
  const shunt = SHUNT_UNITS > 0 ? await measureShuntDetection({ n: SHUNT_UNITS, seed: SEED }) : undefined;
  if (shunt) out(`\n${shuntDetectionLines(shunt).join('\n')}\n  (${(shunt.wallMs / 1000).toFixed(0)} s wall)\n\n`);
  out(`targets ${met ? 'met' : 'NOT met'}\n`);
  if (args.json) process.stdout.write(JSON.stringify({ seed: SEED, rows: rows.map((r) => ({ defects: r.defects, plan: r.plan, firstFail: r.firstFail ?? null, detection: classify(r), safe: r.safe })), caught, faulted: faulted.length, goodFailed, unsafe, wallSeconds: wall, met, ...(shunt ? { shuntDetection: shunt } : {}) }, null, 2) + '\n');
  process.exitCode = met ? 0 : 1;
} else {
  // Many units with faults sprinkled in, drawn from the seed (or --combine: the shards' --json outputs).
  const faults: readonly string[] = [...PLUG_DEFECT_NAMES, ...HTTP_FAULT_NAMES];
  let rows: UnitsRow[];
  let modelMs: number;
  let shards = 1;
  if (args.combine) {
    const parts = positionals.map((f) => JSON.parse(readFileSync(f, 'utf8')) as { rows: UnitsRow[]; modelSeconds: number; units: number; seed: number });
    rows = parts.flatMap((p) => p.rows);
    modelMs = parts.reduce((n, p) => n + p.modelSeconds * 1000, 0);
    shards = parts.length;
    out(`${parts[0]?.units ?? '?'} units through the factory plan on the virtual 4-slot jig (virtual time), seed ${parts[0]?.seed ?? '?'}, from ${parts.length} shard(s): ${positionals.join(' ')}\n`);
    for (const r of rows) if (r.detection !== 'good, passed' && r.detection !== 'caught by its step') out(`  unit ${r.unit} (slot ${r.slot}, ${r.mac}): ${r.defects.join('+') || 'good'}${separabilityNote(r.separable)}: ${r.detection}: ${r.firstFail ? `${r.firstFail.name}: ${r.firstFail.reason}` : 'passed'}\n`);
  } else {
    const rnd = mulberry32(SEED * 7477);
    const deal = dealer(faults, mulberry32(SEED * 7477 + 1));
    const specs = Array.from({ length: UNITS }, () => (rnd() < FAULT_RATE ? { defects: [deal()] } : { defects: [] as string[] }));
    out(`${UNITS} units through the factory plan on the virtual 4-slot jig (virtual time), seed ${SEED}, fault rate ${FAULT_RATE}${SHARD.n > 1 ? `, shard ${SHARD.i}/${SHARD.n}` : ''}\n`);
    let done = 0;
    const tally: Record<string, number> = { faulted: 0, good: 0, 'caught by its step': 0, 'caught by another step': 0, missed: 0, 'good, passed': 0, 'good, failed': 0 };
    rows = [];
    const r = await runUnits(specs, factoryPlan(), SEED * 1000, (row) => {
      done++;
      const c = classify(row);
      const unit = (row.batch - SEED * 1000) * SLOTS.length + SLOTS.indexOf(row.slot) + 1;
      rows.push({ unit, slot: row.slot, mac: row.mac, defects: row.defects, detection: c, firstFail: row.firstFail ?? null, safe: row.safe, ...(row.separable !== undefined ? { separable: row.separable } : {}) });
      if (c !== 'good, passed' && c !== 'caught by its step') out(`  unit ${unit} (slot ${row.slot}, ${row.mac}): ${row.defects.join('+') || 'good'}${separabilityNote(row.separable)}: ${c}: ${row.firstFail ? `${row.firstFail.name}: ${row.firstFail.reason}` : 'passed'}\n`);
      tally[c === 'good, passed' || c === 'good, failed' ? 'good' : 'faulted']++;
      tally[c]++;
      if (done % 20 === 0) out(`  ... ${done} units, ${((performance.now() - wall0) / 1000).toFixed(0)} s: ${tally.faulted} faulted (${tally['caught by its step']} by their step), ${tally.good} good (${tally['good, failed']} failed)\n`);
    });
    modelMs = r.modelMs;
  }
  const wall = (performance.now() - wall0) / 1000;
  const faulted = rows.filter((r) => r.defects.length > 0);
  const good = rows.filter((r) => r.defects.length === 0);
  const count = (xs: UnitsRow[], c: string): number => xs.filter((r) => r.detection === c).length;
  out(`\n${pad('fault', 26)}${pad('units', 7)}${pad('caught by its step', 20)}${pad('by another step', 17)}missed\n`);
  for (const f of faults) {
    const xs = faulted.filter((r) => r.defects[0] === f);
    if (xs.length === 0) continue;
    out(`${pad(f, 26)}${pad(String(xs.length), 7)}${pad(String(count(xs, 'caught by its step')), 20)}${pad(String(count(xs, 'caught by another step')), 17)}${count(xs, 'missed')}\n`);
  }
  const caught = count(faulted, 'caught by its step');
  const goodFailed = count(good, 'good, failed');
  const unsafe = rows.filter((r) => !r.safe).length;
  const met = caught === faulted.length && goodFailed === 0 && unsafe === 0;
  const batches = Math.ceil(rows.length / SLOTS.length);
  out(`\n${faulted.length} faulted units: ${caught} failed by the step naming their fault, ${count(faulted, 'caught by another step')} by another step, ${count(faulted, 'missed')} passed\n`);
  const group = (names: readonly string[]): { xs: UnitsRow[]; line: string; kinds: number } => {
    const xs = faulted.filter((r) => names.includes(r.defects[0]!));
    const kinds = names.filter((n) => xs.some((r) => r.defects[0] === n)).length;
    const absent = names.filter((n) => !xs.some((r) => r.defects[0] === n));
    return { xs, kinds, line: `${xs.length} unit${xs.length === 1 ? "" : "s"}, ${kinds} of ${names.length} kinds in the mix${absent.length ? ` (NOT in it: ${absent.join(', ')})` : ''}; ${count(xs, 'caught by its step')} failed by the step naming the fault, ${count(xs, 'caught by another step')} by another step, ${count(xs, 'missed')} passed` };
  };
  const plugFaults = group(ISSUE10_PLUG_FAULTS);
  out(`  issue 10 plug faults (HTTP timeout, stall, stall mid-body, refused during boot, reboot loop into safe mode, malformed JSON, truncated JSON, negative status): ${plugFaults.line}\n`);
  const metering = group(METERING_DEFECTS);
  out(`  issue 8 metering hardware defects (BL0937 CF/CF1 open, SEL stuck high/low, divider -20 %, shunt +10 %): ${metering.line}\n`);
  const shunt = faulted.filter((r) => r.defects[0] === SHUNT_DEFECT);
  const ceiling = shuntDetectionCeiling(CEILING_DRAWS);
  const inReach = shunt.filter((r) => r.separable === true);
  out(
    `    shunt +10 %: ${count(shunt, 'caught by its step')} of ${shunt.length} caught; detection ceiling ${((100 * ceiling.separable) / ceiling.n).toFixed(1)} % (of ${ceiling.n} front ends drawn as the simulator draws them, parts ±${ceiling.tolerancePct} %, a perfect measurement separates ${ceiling.separable}: the rest have in-tolerance parts giving the same factors; scripts/bench-lib/shunt-detection.ts); ` +
      `of this run's ${shunt.length}, ${inReach.length} within reach (${count(inReach, 'caught by its step')} caught), ${shunt.filter((r) => r.separable === false).length} beyond it (${count(shunt.filter((r) => r.separable === false), 'caught by its step')} caught)${shunt.some((r) => r.separable === undefined) ? `, ${shunt.filter((r) => r.separable === undefined).length} not judged` : ''}\n`,
  );
  const other = group(faults.filter((f) => !ISSUE10_PLUG_FAULTS.includes(f) && !METERING_DEFECTS.includes(f)));
  out(`  other unit defects (relay stuck, button open, LED dead, image does not boot, Wi-Fi never joins): ${other.line}\n`);
  out(`${good.length} good units: ${good.length - goodFailed} passed, ${goodFailed} failed\n`);
  out(`${rows.length - unsafe} of ${rows.length} slots ended in the safe state\n`);
  out(`modelled ${(modelMs / 1000).toFixed(0)} s of station time (${(modelMs / 1000 / batches).toFixed(0)} s per 4-slot batch, ${(modelMs / 1000 / rows.length).toFixed(1)} s per unit); wall ${wall.toFixed(0)} s${args.combine ? ` to combine ${shards} shard(s)` : ''}\n`);
  const plugMet = count(plugFaults.xs, 'caught by its step') === plugFaults.xs.length && plugFaults.kinds === ISSUE10_PLUG_FAULTS.length && goodFailed === 0 && unsafe === 0;
  out(`issue 10 (d) on its plug faults (every kind in the mix, each unit failed by the step naming its fault, no good unit failed, every slot safe): ${plugMet ? 'met' : 'NOT met'}\n`);
  out(`targets (every faulted unit of the mix failed by its step, no good unit failed, every slot safe) ${met ? 'met' : 'NOT met'}\n`);
  if (args.json) process.stdout.write(JSON.stringify({ seed: SEED, units: UNITS ?? rows.length, shard: args.shard ?? null, faulted: faulted.length, caught, goodFailed, unsafe, modelSeconds: modelMs / 1000, wallSeconds: wall, met, rows }, null, 2) + '\n');
  process.exitCode = met ? 0 : 1;
}

/** " (beyond the ceiling)" for a shunt unit a perfect measurement could not separate from good parts. */
function separabilityNote(separable: boolean | undefined): string {
  return separable === undefined ? '' : separable ? ' (within the detection ceiling)' : ' (beyond the detection ceiling: in-tolerance parts give its factors)';
}

/**
 * Fault kinds in turn from seeded shuffles of `kinds` (a new shuffle each time one is used up): every
 * kind appears once per len(kinds) faulted units, in an order the seed decides.
 */
function dealer(kinds: readonly string[], rnd: () => number): () => string {
  let deck: string[] = [];
  return () => {
    if (deck.length === 0) {
      deck = [...kinds];
      for (let i = deck.length - 1; i > 0; i--) {
        const j = Math.floor(rnd() * (i + 1));
        [deck[i], deck[j]] = [deck[j]!, deck[i]!];
      }
    }
    return deck.pop()!;
  };
}

/** One unit of a --units run as --json writes it (and --combine reads it). */
interface UnitsRow {
  unit: number;
  slot: number;
  mac: string;
  defects: readonly string[];
  detection: string;
  firstFail: { name: string; reason: string } | null;
  safe: boolean;
  separable?: boolean;
}
