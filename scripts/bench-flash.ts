/**
 * Flash benchmark: the real flasher over the real SerialPortStream on the virtual serial bus
 * against the virtual BK7231N, reported as ratios measured in one run, for two starting points:
 * (a) the factory case, a chip holding a different 1 MiB image, and (b) a blank chip. Each write
 * is divided by a floor computed from the chip's content alone (scripts/bench-lib/floor.ts, not
 * from the flasher's plan) and by the classic bk7231tools scheme run in-process. Unmodified
 * bk7231tools end to end through `plugrig sim --pty` (case 5, bench-lib/thirdparty-e2e.ts) runs
 * when BK7231TOOLS_DIR names a local checkout (Debian's python3-serial is all it needs for
 * write_flash); without one that comparison is reported as skipped.
 *
 *   node --import=tsx scripts/bench-flash.ts [--quick] [--json] [--resets N] [--e2e-only]
 *
 * --quick runs every case in virtual (model) time; --resets sets the get-bus sample (default 1000);
 * --e2e-only runs case 5 alone (it takes minutes of wall time); --e2e-rounds N repeats its timed
 * runs N times, interleaved, and judges the median of the per-round ratios; --e2e-profile DIR then
 * runs each tool once more per start under `strace -c -f` and ours under `node --cpu-prof` (not timed);
 * --e2e-other DIR times the `plugrig flash` of another checkout (built) in every round too;
 * --e2e-defaults-rounds N (default 1; 0 skips it) times N more pairs with each tool at its own
 * default rate (ours 2000000, bk7231tools 115200: about two minutes each) on a chip holding an image.
 * --e2e-timeline runs each tool once per start with the chip in this process (bench-lib/e2e-timeline.ts)
 * and prints where the time goes: start-up, exit, and per command kind the chip's time and the idle
 * gaps before the commands (not a timed ratio: the harness shares the CPU with the tools).
 * Exit 0 whatever the figures (it is a benchmark); 1 only if a flash itself fails.
 */
import { loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pino } from 'pino';
import { ClassicBk7231Flasher } from './bench-lib/classic-flasher.ts';
import { CommandChannel } from '../rig/bk7231/command-channel.ts';
import { Bk7231Flasher, DEFAULT_BAUD } from '../rig/bk7231/flasher.ts';
import { getBus } from '../rig/bk7231/link.ts';
import { isBlank, sectorAddresses } from '../rig/bk7231/planner.ts';
import * as F from '../rig/bk7231/protocol/frame.ts';
import { SECTOR_SIZE } from '../rig/bk7231/protocol/commands.ts';
import { ModemLineReset } from '../rig/bk7231/reset.ts';
import { RealClock, VirtualClock, type Clock } from '../rig/core/clock.ts';
import { FlashError, LinkError, PlugrigError } from '../rig/core/errors.ts';
import { makeBenchImage, type SyntheticImage } from '../firmware/synthetic.ts';
import { ROM_BAUD } from '../sim/bk7231/virtual-bk7231.ts';
import { openBenchRig, waitForApp, type BenchRig } from './bench-lib/bench-rig.ts';
import { cenPulseMs, classicFloor, getBusFloorMs, writeFloor, type FlashFloor } from './bench-lib/floor.ts';
import { summarize, type Summary } from './bench-lib/stats.ts';
import { findBk7231tools, runThirdPartyE2e, type E2eResult, type E2eStart } from './bench-lib/thirdparty-e2e.ts';
import { parseScriptArgs } from './bench-lib/script-args.ts';

type Mode = 'real' | 'virtual';

const { values: args } = parseScriptArgs('bench-flash', {
  options: {
    quick: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    resets: { type: 'string', default: '1000' },
    'e2e-only': { type: 'boolean', default: false },
    'e2e-rounds': { type: 'string', default: '1' },
    'e2e-profile': { type: 'string' },
    'e2e-other': { type: 'string' },
    'e2e-defaults-rounds': { type: 'string', default: '1' },
    'e2e-timeline': { type: 'boolean', default: false },
  },
});
const QUICK = args.quick === true;
const RESETS = Number(args.resets);
const E2E_ROUNDS = Number(args['e2e-rounds']);
if (!Number.isInteger(E2E_ROUNDS) || E2E_ROUNDS < 1) {
  process.stderr.write(`bench-flash: --e2e-rounds must be a positive integer, got "${args['e2e-rounds']}"\n`);
  process.exit(2);
}
const E2E_DEFAULTS_ROUNDS = Number(args['e2e-defaults-rounds']);
if (!Number.isInteger(E2E_DEFAULTS_ROUNDS) || E2E_DEFAULTS_ROUNDS < 0) {
  process.stderr.write(`bench-flash: --e2e-defaults-rounds must be a whole number, got "${args['e2e-defaults-rounds']}"\n`);
  process.exit(2);
}
if (!Number.isInteger(RESETS) || RESETS < 1) {
  process.stderr.write(`bench-flash: --resets must be a positive integer, got "${args.resets}"\n`);
  process.exit(2);
}
/** Flasher warnings (retries, re-links, repairs) are collected: each one is an extra round trip to explain. */
const warnings: string[] = [];
const log = pino({ level: 'warn', base: { component: 'bench-flash' } }, {
  write(line: string) {
    const e = JSON.parse(line) as { msg?: string; err?: string; address?: number };
    warnings.push(`${e.msg ?? ''}${e.address !== undefined ? ` @0x${e.address.toString(16)}` : ''}${e.err ? `: ${e.err}` : ''}`);
  },
});
const reset = ModemLineReset.bk7231tools();

/** What the chip holds where the image goes before the write. */
type Start = 'factory' | 'blank';
const START_LABEL: Record<Start, string> = { factory: 'chip holding another 1 MiB image', blank: 'blank chip' };

function startImages(start: Start, image: SyntheticImage): Array<{ address: number; data: Uint8Array }> {
  const data = start === 'factory' ? makeBenchImage(2).bytes : new Uint8Array(image.bytes.length).fill(0xff);
  return [{ address: image.flashOffset, data }];
}

/** The chip's whole flash now (the floor reads it as "the content before the write"). */
function snapshot(rig: BenchRig): (address: number, length: number) => Uint8Array {
  const mem = rig.chip.flash.read(0, rig.chip.flash.size);
  return (address, length) => mem.slice(address, address + length);
}

function makeClock(mode: Mode): Clock {
  return mode === 'real' ? new RealClock() : new VirtualClock();
}

/** Flash content must equal the image, or the run is a failed flash (exit 1), not a slow one. */
function assertFlashed(rig: BenchRig, image: SyntheticImage, what: string): void {
  const got = rig.chip.flash.read(image.flashOffset, image.bytes.length);
  for (let i = 0; i < got.length; i++) {
    if (got[i] !== image.bytes[i]) {
      throw new FlashError(`${what}: flash differs from the image at 0x${(image.flashOffset + i).toString(16)}`, { phase: 'bench', address: image.flashOffset + i });
    }
  }
}

interface FullWriteRun {
  mode: Mode;
  start: Start;
  baud: number;
  measuredMs: number;
  floor: FlashFloor;
  ratio: number;
  /** Image bytes per second of measured time. */
  throughputBps: number;
  commandsSent: number;
  /** Bytes the chip dropped because they arrived while it was busy (a corrupt frame = a retry). */
  chipRxDropped: number;
  warnings: string[];
  hostGapMs: Summary;
  /** Bytes the flasher erased (its plan) and sectors it found already blank. */
  erasedBytes: number;
  sectorsAlreadyBlank: number;
  /**
   * Per-command time the chip model adds that the floor leaves out: each Write4K's last page
   * program (one command in flight cannot hide it) and the ROM turnaround of every command.
   */
  modelTailMs: number;
  /** (measured - floor) explained neither by host gaps nor by model tails: the flasher's extra commands (blank checks), timer slip, stalls. */
  inFlightExcessMs: number;
  eventLoopDelayMs?: { p50: number; p99: number; max: number };
  rig: BenchRig;
}

/** `guardOutsideImage`: as `plugrig flash` and the station's flash suite run it (the outside-image guard's CRCs included). */
async function fullWrite(mode: Mode, baud: number, image: SyntheticImage, start: Start, guardOutsideImage = false): Promise<FullWriteRun> {
  const rig = await openBenchRig(makeClock(mode), { initialImages: startImages(start, image) });
  const flasher = new Bk7231Flasher({ port: rig.port, reset, baudRate: baud, fallbackBaudRates: [], log, guardOutsideImage });
  await flasher.connect();
  const floor = writeFloor({ offset: image.flashOffset, image: image.bytes, current: snapshot(rig), baud, chip: rig.chip.timing, flash: rig.chip.flashTiming });
  const eld = mode === 'real' ? monitorEventLoopDelay({ resolution: 1 }) : undefined;
  eld?.enable();
  const sentBefore = flasher.channel.commandsSent;
  const warnedBefore = warnings.length;
  rig.port.record();
  const t0 = rig.clock.now();
  const result = await flasher.write(image.bytes, image.flashOffset);
  const measuredMs = rig.clock.now() - t0;
  const gaps = rig.port.stop();
  eld?.disable();
  assertFlashed(rig, image, `write at ${baud} baud (${mode})`);
  const hostGapMs = summarize(gaps.gaps);
  const commandsSent = flasher.channel.commandsSent - sentBefore;
  const modelTailMs = Math.max(0, result.sectorsWritten - 1) * rig.chip.flashTiming.pageProgramMs + commandsSent * rig.chip.timing.turnaroundMs;
  return {
    mode,
    start,
    baud,
    measuredMs,
    floor,
    ratio: measuredMs / floor.totalMs,
    throughputBps: image.bytes.length / (measuredMs / 1000),
    commandsSent,
    chipRxDropped: rig.chip.counters.rxDropped,
    erasedBytes: result.erasedBytes,
    sectorsAlreadyBlank: result.sectorsAlreadyBlank,
    warnings: warnings.slice(warnedBefore),
    hostGapMs,
    modelTailMs,
    inFlightExcessMs: measuredMs - floor.totalMs - hostGapMs.sum - modelTailMs,
    ...(eld ? { eventLoopDelayMs: { p50: eld.percentile(50) / 1e6, p99: eld.percentile(99) / 1e6, max: eld.max / 1e6 } } : {}),
    rig,
  };
}

interface ReflashRun {
  mode: Mode;
  totalMs: number;
  connectMs: number;
  diffMs: number;
  sectorsWritten: number;
  commandsSent: number;
}

/** Identical image again with diff, from the app: reset + link + baud switch + identify + diff. */
async function reflashIdentical(rig: BenchRig, mode: Mode, baud: number, image: SyntheticImage): Promise<ReflashRun> {
  const before = new Bk7231Flasher({ port: rig.port, reset, baudRate: baud, fallbackBaudRates: [], log });
  // The previous flasher left the chip linked in the ROM; put it back into its application.
  await before.channel.setHostBaud(baud);
  await before.reboot();
  await waitForApp(rig);
  const flasher = new Bk7231Flasher({ port: rig.port, reset, baudRate: baud, fallbackBaudRates: [], log });
  const t0 = rig.clock.now();
  await flasher.connect();
  const t1 = rig.clock.now();
  const result = await flasher.write(image.bytes, image.flashOffset, { diff: true });
  const t2 = rig.clock.now();
  assertFlashed(rig, image, `diff reflash (${mode})`);
  return { mode, totalMs: t2 - t0, connectMs: t1 - t0, diffMs: t2 - t1, sectorsWritten: result.sectorsWritten, commandsSent: flasher.channel.commandsSent };
}

interface ClassicRun {
  mode: Mode;
  start: Start;
  baud: number;
  measuredMs: number;
  floorMs: number;
}

/** The classic scheme as bk7231tools runs it: per sector a blank check, erase, write, CRC. */
async function classicWrite(mode: Mode, baud: number, image: SyntheticImage, start: Start): Promise<ClassicRun> {
  const rig = await openBenchRig(makeClock(mode), { initialImages: startImages(start, image) });
  try {
    const classic = new ClassicBk7231Flasher({ port: rig.port, reset, baudRate: baud, log, skipBlankErase: true });
    await classic.connect();
    const before = snapshot(rig);
    const t0 = rig.clock.now();
    await classic.write(image.bytes, image.flashOffset);
    const measuredMs = rig.clock.now() - t0;
    assertFlashed(rig, image, `classic write at ${baud} baud (${mode}, ${start})`);
    const sectors = sectorAddresses(image.flashOffset, image.bytes.length).map((address) => {
      const data = image.bytes.subarray(address - image.flashOffset, address - image.flashOffset + SECTOR_SIZE);
      return { address, data, blank: isBlank(data), currentlyBlank: isBlank(before(address, SECTOR_SIZE)) };
    });
    return { mode, start, baud, measuredMs, floorMs: classicFloor(sectors, baud, rig.chip.timing, rig.chip.flashTiming, { checkBlank: true }) };
  } finally {
    await rig.close();
  }
}

interface GetBusRun {
  attempts: number;
  linked: number;
  /** Links that needed more than one reset. */
  reResets: number;
  ms: Summary;
  floorMs: number;
}

/** Get-bus after an RTS reset, the chip back in its application before every attempt. */
async function getBusRepeated(n: number): Promise<GetBusRun> {
  const rig = await openBenchRig(new VirtualClock());
  try {
    const channel = new CommandChannel(rig.port, log);
    const times: number[] = [];
    let reResets = 0;
    // Vary (deterministically) how long the app runs before each reset, so no attempt relies on
    // the exact state the previous one left behind.
    let lcg = 12345;
    for (let i = 0; i < n; i++) {
      const t0 = rig.clock.now();
      try {
        const r = await getBus(channel, { reset, log });
        times.push(rig.clock.now() - t0);
        if (r.resetAttempts > 1) reResets++;
      } catch (e) {
        if (!(e instanceof LinkError)) throw e;
      }
      await channel.send(F.reboot());
      lcg = (Math.imul(lcg, 1103515245) + 12345) >>> 0;
      await waitForApp(rig, 5 + ((lcg >>> 16) % 50) + (lcg & 0xff) / 256);
    }
    const pulse = cenPulseMs(reset.steps, 'R');
    return { attempts: n, linked: times.length, reResets, ms: summarize(times), floorMs: getBusFloorMs(pulse, ROM_BAUD) };
  } finally {
    await rig.close();
  }
}

// ---- report ----

interface Row {
  case: string;
  metric: string;
  value: string;
  target?: string;
  pass?: boolean;
  mode: Mode | 'mixed';
}

const s = (ms: number): string => `${(ms / 1000).toFixed(3)} s`;
const r = (x: number): string => x.toFixed(3);

function fullWriteRows(c: string, run: FullWriteRun): Row[] {
  const b = run.baud;
  const f = run.floor;
  return [
    { case: c, metric: `${START_LABEL[run.start]}: 1 MiB write+verify @${b} / floor`, value: r(run.ratio), target: '<= 1.10', pass: run.ratio <= 1.1, mode: run.mode },
    { case: c, metric: `  measured / floor`, value: `${s(run.measuredMs)} / ${s(f.totalMs)}`, mode: run.mode },
    {
      case: c,
      metric: `  floor = wire + erase + last page + CRC`,
      value: `${s(f.wireMs)} + ${s(f.eraseMs)} + ${f.lastPageMs.toFixed(1)} ms + ${f.crcMs.toFixed(1)} ms`,
      mode: run.mode,
    },
    { case: c, metric: `  floor's erase cover (4K / 32K / 64K)`, value: `${f.erases['4K']} / ${f.erases['32K']} / ${f.erases['64K']}`, mode: run.mode },
    { case: c, metric: `  ours: erased, sectors already blank`, value: `${run.erasedBytes / 1024} KiB, ${run.sectorsAlreadyBlank}`, mode: run.mode },
    { case: c, metric: `  effective payload throughput`, value: `${(run.throughputBps / 1024).toFixed(1)} KiB/s`, mode: run.mode },
    {
      case: c,
      metric: `  excess: host gaps (n, med, p95, sum)`,
      value: `${run.hostGapMs.n}, ${run.hostGapMs.median.toFixed(2)}, ${run.hostGapMs.p95.toFixed(2)}, ${run.hostGapMs.sum.toFixed(0)} ms`,
      mode: run.mode,
    },
    { case: c, metric: `  excess: model tails (page + turnaround)`, value: `${run.modelTailMs.toFixed(0)} ms`, mode: run.mode },
    { case: c, metric: `  excess: rest (blank checks, sim slip)`, value: `${run.inFlightExcessMs.toFixed(0)} ms`, mode: run.mode },
    { case: c, metric: `  commands sent / floor's, chip RX dropped`, value: `${run.commandsSent} / ${f.commands}, ${run.chipRxDropped}`, mode: run.mode },
    ...(run.eventLoopDelayMs
      ? [{ case: c, metric: '  event-loop delay p50 / p99 / max', value: `${run.eventLoopDelayMs.p50.toFixed(2)} / ${run.eventLoopDelayMs.p99.toFixed(2)} / ${run.eventLoopDelayMs.max.toFixed(1)} ms`, mode: run.mode }]
      : []),
    ...run.warnings.slice(0, 5).map((w) => ({ case: c, metric: '  flasher warning', value: w, mode: run.mode })),
  ];
}

/** ours / classic with its target (issue 6 §5: ≤ 0.62 on a chip holding an image, ≤ 0.97 on a blank one). */
function versusRows(c: string, ours: FullWriteRun, classic: ClassicRun, mode: Mode): Row[] {
  const ratio = ours.measuredMs / classic.measuredMs;
  const target = ours.start === 'factory' ? 0.62 : 0.97;
  return [
    { case: c, metric: `${START_LABEL[ours.start]}: ours / classic @${ours.baud}${mode === 'virtual' ? ' (model time)' : ''}`, value: r(ratio), target: `<= ${target}`, pass: ratio <= target, mode },
    { case: c, metric: '  ours / classic seconds', value: `${s(ours.measuredMs)} / ${s(classic.measuredMs)}`, mode },
    { case: c, metric: '  classic / its floor', value: r(classic.measuredMs / classic.floorMs), mode },
  ];
}

const E2E_BAUD = 921_600;

/** With --e2e-other: the other checkout's runs, per round, against the same round's bk7231tools and ours. */
function otherRows(e2e: E2eResult, start: E2eStart): Row[] {
  const rounds = [...new Set(e2e.runs.map((x) => x.round))];
  const triples = rounds.flatMap((round) => {
    const at = (tool: string): E2eResult['runs'][number] | undefined => e2e.runs.find((x) => x.tool === tool && x.start === start && x.round === round && !x.defaults);
    const other = at('plugrig-other');
    const theirs = at('bk7231tools');
    const ours = at('plugrig');
    return other && theirs && ours ? [{ other, theirs, ours }] : [];
  });
  if (triples.length === 0) return [];
  const med = (xs: number[]): number => {
    const v = [...xs].sort((a, b) => a - b);
    return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
  };
  return [
    { case: '5', metric: `  other checkout (${args['e2e-other']}) / bk7231tools, median`, value: `${r(med(triples.map((x) => x.other.ms / x.theirs.ms)))} (${triples.map((x) => r(x.other.ms / x.theirs.ms)).join(', ')})`, mode: 'real' },
    { case: '5', metric: '  ours / other checkout, median', value: `${r(med(triples.map((x) => x.ours.ms / x.other.ms)))} (${triples.map((x) => `${s(x.ours.ms)} / ${s(x.other.ms)}`).join('; ')})`, mode: 'real' },
    ...(triples.every((x) => x.other.cpuS !== null && x.ours.cpuS !== null)
      ? [{ case: '5', metric: '  CPU ours / other checkout', value: triples.map((x) => `${x.ours.cpuS!.toFixed(2)} / ${x.other.cpuS!.toFixed(2)} s`).join('; '), mode: 'real' as const }]
      : []),
  ];
}

/** Case 5d: each tool at its own default rate (ours 2000000, bk7231tools 115200), chip holding another image. */
function defaultsRows(e2e: E2eResult): Row[] {
  const runs = e2e.runs.filter((x) => x.defaults);
  const pairs = [...new Set(runs.map((x) => x.round))].flatMap((round) => {
    const ours = runs.find((x) => x.tool === 'plugrig' && x.round === round);
    const theirs = runs.find((x) => x.tool === 'bk7231tools' && x.round === round);
    return ours && theirs ? [{ ours, theirs, ratio: ours.ms / theirs.ms }] : [];
  });
  if (pairs.length === 0) return [];
  const v = pairs.map((p) => p.ratio).sort((a, b) => a - b);
  const ratio = v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
  const { ours, theirs } = pairs[0]!;
  return [
    {
      case: '5d',
      metric: `${START_LABEL.factory}: ours @${ours.baud} (default) / bk7231tools @${theirs.baud} (default), end to end${pairs.length > 1 ? ` (median of ${pairs.length})` : ''}`,
      value: r(ratio),
      target: '<= 0.09',
      pass: ratio <= 0.09,
      mode: 'real',
    },
    { case: '5d', metric: '  plugrig flash / bk7231tools write_flash, start to exit', value: pairs.map((p) => `${s(p.ours.ms)} / ${s(p.theirs.ms)}`).join('; '), mode: 'real' },
    ...(pairs.every((p) => p.ours.flashS !== null) ? [{ case: '5d', metric: '  plugrig: port open to done / start-up and exit', value: pairs.map((p) => `${p.ours.flashS!.toFixed(2)} / ${s(p.ours.ms - p.ours.flashS! * 1000)}`).join('; '), mode: 'real' as const }] : []),
  ];
}

/** Case 5: ours / unmodified bk7231tools, process start to exit, through `plugrig sim --pty`. */
function e2eRows(e2e: E2eResult | string): Row[] {
  if (typeof e2e === 'string') return [{ case: '5', metric: 'unmodified bk7231tools through plugrig sim --pty', value: e2e, mode: 'real' }];
  const rows: Row[] = [];
  for (const start of ['factory', 'blank'] as const) {
    const rounds = [...new Set(e2e.runs.map((x) => x.round))];
    const pairs = rounds.flatMap((round) => {
      const ours = e2e.runs.find((x) => x.tool === 'plugrig' && x.start === start && x.round === round && !x.defaults);
      const theirs = e2e.runs.find((x) => x.tool === 'bk7231tools' && x.start === start && x.round === round && !x.defaults);
      return ours && theirs ? [{ ours: ours.ms, theirs: theirs.ms, ratio: ours.ms / theirs.ms, cpu: [ours.cpuS, theirs.cpuS] as const, flashS: ours.flashS }] : [];
    });
    if (pairs.length === 0) continue;
    const median = (xs: number[]): number => {
      const v = [...xs].sort((a, b) => a - b);
      return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
    };
    const ratio = median(pairs.map((p) => p.ratio));
    const target = start === 'factory' ? 0.62 : 0.97;
    rows.push(
      {
        case: '5',
        metric: `${START_LABEL[start]}: ours / bk7231tools @${E2E_BAUD}, end to end${pairs.length > 1 ? ` (median of ${pairs.length})` : ''}`,
        value: r(ratio),
        target: `<= ${target}`,
        pass: ratio <= target,
        mode: 'real',
      },
      { case: '5', metric: '  plugrig flash / bk7231tools write_flash, start to exit', value: pairs.map((p) => `${s(p.ours)} / ${s(p.theirs)}`).join('; '), mode: 'real' },
      ...(pairs.length > 1 ? [{ case: '5', metric: '  per-round ratios', value: pairs.map((p) => r(p.ratio)).join(', '), mode: 'real' as const }] : []),
      ...(pairs.every((p) => p.cpu[0] !== null && p.cpu[1] !== null)
        ? [{ case: '5', metric: '  CPU (user+sys) plugrig / bk7231tools', value: pairs.map((p) => `${p.cpu[0]!.toFixed(2)} / ${p.cpu[1]!.toFixed(2)} s`).join('; '), mode: 'real' as const }]
        : []),
      ...otherRows(e2e, start),
      ...(pairs.every((p) => p.flashS !== null)
        ? [{ case: '5', metric: '  plugrig: port open to done / start-up and exit', value: pairs.map((p) => `${p.flashS!.toFixed(2)} / ${s(p.ours - p.flashS! * 1000)}`).join('; '), mode: 'real' as const }]
        : []),
    );
  }
  rows.push(...defaultsRows(e2e));
  for (const p of e2e.profiles) {
    const what = `${p.tool}, ${START_LABEL[p.start]}`;
    if (p.syscalls) rows.push({ case: '5p', metric: `  ${what}: syscalls (strace -c -f)`, value: `${p.syscalls.total} (${p.syscalls.errors} failed): ${p.syscalls.top.map((x) => `${x.name} ${x.calls}`).join(', ')}`, mode: 'real' });
    if (p.selfMs.length) {
      const total = p.selfMs.reduce((n, x) => n + x.ms, 0);
      rows.push({ case: '5p', metric: `  ${what}: self time (node --cpu-prof, ${s(total)} sampled)`, value: p.selfMs.slice(0, 8).map((x) => `${x.group} ${x.ms.toFixed(0)}`).join(', ') + ' ms', mode: 'real' });
    }
  }
  rows.push(
    { case: '5', metric: `  plugrig --help, start to exit (${e2e.plugrigEntry === 'dist' ? 'compiled dist/' : 'sources via tsx: run npm run build'})`, value: s(e2e.helpMs), mode: 'real' },
    { case: '5', metric: '  chip CRC after every run = image CRC', value: `0x${e2e.runs[0]?.chipCrc.toString(16) ?? '-'} (${e2e.runs.length} runs)`, mode: 'real' },
    { case: '5', metric: '  load average before / after', value: `${e2e.loadAverage.before.map((x) => x.toFixed(1)).join(' ')} / ${e2e.loadAverage.after.map((x) => x.toFixed(1)).join(' ')}`, mode: 'real' },
  );
  return rows;
}

function table(rows: Row[]): string {
  const head = ['case', 'metric', 'measured', 'target', 'verdict', 'mode'];
  const cells = rows.map((x) => [x.case, x.metric, x.value, x.target ?? '', x.pass === undefined ? '' : x.pass ? 'PASS' : 'MISS', x.mode]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]): string => c.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

/** Case 5 where a bk7231tools checkout is given; otherwise why it was skipped. */
async function e2eCase(image: SyntheticImage, progress: (m: string) => void): Promise<E2eResult | string> {
  const dir = findBk7231tools();
  if (!dir) return process.env.BK7231TOOLS_DIR ? `BK7231TOOLS_DIR=${process.env.BK7231TOOLS_DIR} has no bk7231tools/__main__.py: skipped` : 'BK7231TOOLS_DIR not set: skipped';
  const starts: E2eStart[] = ['factory', 'blank'];
  return runThirdPartyE2e({ bk7231toolsDir: dir, image: image.bytes, other: makeBenchImage(2).bytes, offset: image.flashOffset, baud: E2E_BAUD, starts, rounds: E2E_ROUNDS, defaultsRounds: E2E_DEFAULTS_ROUNDS, ourDefaultBaud: DEFAULT_BAUD, log, progress, ...(args['e2e-profile'] ? { profileDir: args['e2e-profile'] } : {}), ...(args['e2e-other'] ? { otherPlugrig: args['e2e-other'] } : {}) });
}

async function main(): Promise<number> {
  const loadAtStart = loadavg();
  const image = makeBenchImage();
  const writeMode: Mode = QUICK ? 'virtual' : 'real';
  const progress = (m: string): void => {
    if (!args.json) process.stderr.write(`bench: ${m}\n`);
  };
  if (args['e2e-timeline']) {
    const dir = findBk7231tools();
    if (!dir) {
      process.stderr.write('bench-flash: --e2e-timeline needs BK7231TOOLS_DIR naming a bk7231tools checkout\n');
      return 2;
    }
    const { runE2eTimeline, timelineText } = await import('./bench-lib/e2e-timeline.ts');
    const t = await runE2eTimeline({ bk7231toolsDir: dir, image: image.bytes, other: makeBenchImage(2).bytes, offset: image.flashOffset, baud: E2E_BAUD, starts: ['factory', 'blank'], tools: ['plugrig', 'bk7231tools'], log, progress });
    process.stdout.write(args.json ? JSON.stringify(t, null, 2) + '\n' : timelineText(t) + '\n');
    return 0;
  }
  if (args['e2e-only']) {
    const e2e = await e2eCase(image, progress);
    if (args.json) process.stdout.write(JSON.stringify({ loadAverageAtStart: loadAtStart, bk7231tools: e2e, rows: e2eRows(e2e) }, null, 2) + '\n');
    else process.stdout.write(table(e2eRows(e2e)) + '\n');
    return 0;
  }

  const ours: Record<Start, { b921: FullWriteRun; b2m: FullWriteRun }> = {} as never;
  let reflash: ReflashRun | undefined;
  for (const start of ['factory', 'blank'] as const) {
    progress(`case 1: ${START_LABEL[start]}, 1 MiB write+verify at 921600 (${writeMode})`);
    const b921 = await fullWrite(writeMode, 921_600, image, start);
    if (start === 'factory') {
      progress(`case 2: identical reflash with diff at 921600 (${writeMode})`);
      reflash = await reflashIdentical(b921.rig, writeMode, 921_600, image);
    }
    await b921.rig.close();
    progress(`case 1: ${START_LABEL[start]}, 1 MiB write+verify at 2000000 (${writeMode})`);
    const b2m = await fullWrite(writeMode, 2_000_000, image, start);
    await b2m.rig.close();
    ours[start] = { b921, b2m };
  }

  progress(`case 3: ${RESETS} virtual resets`);
  const bus = await getBusRepeated(RESETS);

  const versus: Row[] = [];
  const classic: Record<string, ClassicRun> = {};
  for (const start of ['factory', 'blank'] as const) {
    progress(`case 4: classic at 921600, ${START_LABEL[start]} (${writeMode})`);
    classic[`${start}-921600-${writeMode}`] = await classicWrite(writeMode, 921_600, image, start);
    versus.push(...versusRows('4', ours[start].b921, classic[`${start}-921600-${writeMode}`]!, writeMode));
    let unguardedVirtualMs = ours[start].b921.measuredMs;
    if (writeMode === 'real') {
      progress(`case 4: ours and classic at 921600, ${START_LABEL[start]} (virtual)`);
      const v = await fullWrite('virtual', 921_600, image, start);
      await v.rig.close();
      unguardedVirtualMs = v.measuredMs;
      classic[`${start}-921600-virtual`] = await classicWrite('virtual', 921_600, image, start);
      versus.push(...versusRows('4', v, classic[`${start}-921600-virtual`]!, 'virtual'));
    }
    // What the end-to-end case runs: plugrig flash guards the flash outside the image (about 1.3 MB of CheckCRC).
    progress(`case 4: ours with the outside-image guard at 921600, ${START_LABEL[start]} (virtual)`);
    const guarded = await fullWrite('virtual', 921_600, image, start, true);
    await guarded.rig.close();
    versus.push({
      case: '4',
      metric: '  ours with the outside-image guard (as plugrig flash runs it) / classic (model time)',
      value: `${r(guarded.measuredMs / classic[`${start}-921600-virtual`]!.measuredMs)} (${s(guarded.measuredMs)}, the guard ${s(guarded.measuredMs - unguardedVirtualMs)})`,
      mode: 'virtual',
    });
  }
  progress('case 4: ours at 2000000 and classic at 115200, factory case (virtual)');
  const w2mv = writeMode === 'virtual' ? ours.factory.b2m : await fullWrite('virtual', 2_000_000, image, 'factory');
  if (w2mv !== ours.factory.b2m) await w2mv.rig.close();
  const classic115v = await classicWrite('virtual', 115_200, image, 'factory');
  classic['factory-115200-virtual'] = classic115v;
  const defaults = w2mv.measuredMs / classic115v.measuredMs;

  progress('case 5: unmodified bk7231tools end to end through plugrig sim --pty (real time)');
  const e2e = await e2eCase(image, progress);
  const rf = reflash!;
  const rows: Row[] = [
    ...fullWriteRows('1a', ours.factory.b921),
    ...fullWriteRows('1a', ours.factory.b2m),
    ...fullWriteRows('1b', ours.blank.b921),
    ...fullWriteRows('1b', ours.blank.b2m),
    { case: '2', metric: 'identical reflash, diff, incl. reset+link+baud', value: s(rf.totalMs), target: '<= 2 s', pass: rf.totalMs <= 2000, mode: rf.mode },
    { case: '2', metric: '  connect / diff+verify', value: `${s(rf.connectMs)} / ${s(rf.diffMs)}`, mode: rf.mode },
    { case: '2', metric: '  ratio to full write @921600', value: r(rf.totalMs / ours.factory.b921.measuredMs), mode: rf.mode },
    { case: '3', metric: `get-bus success (${bus.linked}/${bus.attempts})`, value: `${((100 * bus.linked) / bus.attempts).toFixed(1)} %`, target: '100 %', pass: bus.linked === bus.attempts, mode: 'virtual' },
    { case: '3', metric: '  get-bus ms median / p95 / max', value: `${bus.ms.median.toFixed(1)} / ${bus.ms.p95.toFixed(1)} / ${bus.ms.max.toFixed(1)}`, mode: 'virtual' },
    { case: '3', metric: '  median / floor (pulse + LinkCheck RTT)', value: `${r(bus.ms.median / bus.floorMs)} (floor ${bus.floorMs.toFixed(1)} ms)`, mode: 'virtual' },
    { case: '3', metric: '  links needing a second reset', value: String(bus.reResets), mode: 'virtual' },
    ...versus,
    { case: '4', metric: 'ours @2000000 / classic @115200 (model time)', value: r(defaults), target: '<= 0.09', pass: defaults <= 0.09, mode: 'virtual' },
    { case: '4', metric: '  ours / classic seconds', value: `${s(w2mv.measuredMs)} / ${s(classic115v.measuredMs)}`, mode: 'virtual' },
    ...e2eRows(e2e),
  ];

  if (args.json) {
    const strip = ({ rig: _rig, ...rest }: FullWriteRun): Omit<FullWriteRun, 'rig'> => rest;
    const out = {
      quick: QUICK,
      loadAverageAtStart: loadAtStart,
      image: { name: image.name, bytes: image.bytes.length, offset: image.flashOffset },
      fullWrite: {
        factory: { b921600: strip(ours.factory.b921), b2000000: strip(ours.factory.b2m) },
        blank: { b921600: strip(ours.blank.b921), b2000000: strip(ours.blank.b2m) },
      },
      reflash: rf,
      getBus: bus,
      classic,
      bk7231tools: e2e,
      rows,
    };
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  } else {
    process.stdout.write(`plugrig flash benchmark — ${image.name}, ${image.bytes.length} bytes at 0x${image.flashOffset.toString(16)}; writes in ${writeMode === 'real' ? 'REAL time' : 'MODEL (virtual) time'}\n`);
    process.stdout.write(`load average at start ${loadAtStart.map((x) => x.toFixed(2)).join(' ')} (real-time figures suffer from CPU contention)\n\n`);
    process.stdout.write(table(rows) + '\n');
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    const detail = e instanceof PlugrigError ? JSON.stringify(e.toJSON()) : e instanceof Error ? (e.stack ?? e.message) : String(e);
    process.stderr.write(`bench-flash: flash failed: ${detail}\n`);
    process.exit(1);
  },
);
