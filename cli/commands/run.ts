import { closeSync, existsSync, openSync, writeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { basename, dirname, join, resolve } from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { RealClock, VirtualClock, type Clock } from '../../rig/core/clock.ts';
import { ConfigError, ImageError } from '../../rig/core/errors.ts';
import { checkPathText, confinedPath } from '../../rig/core/confined-path.ts';
import { logDestinationChosen, logToFile, rootLogger } from '../../rig/core/log.ts';
import { checkBaud, prepareOutputDir } from '../args.ts';
import { loadJigFile } from '../../rig/jig/jig-config.ts';
import { DEFAULT_BAUD } from '../../rig/bk7231/flasher.ts';
import { classifyImage } from '../../firmware/image.ts';
import { makeSyntheticImage } from '../../firmware/synthetic.ts';
import { nativeEndpoints } from '../../rig/endpoints/native.ts';
import { simPlugAddress, startVirtualJig, usesSim } from '../../sim/jig/in-process-jig.ts';
import { DEFAULT_VIRTUAL_WIFI } from '../../sim/jig/virtual-jig.ts';
import { DEVICES_DIR, plugResolver, stationProvisioning } from './dut.ts';
import { resolveDeviceTemplate } from '../../rig/dut/device-template.ts';
import { loadSimTemplate } from '../../sim/plug/obk-template.ts';
import { runStationDetailed, type StationSlotResult } from '../../station/run-station.ts';
import { abortedByDeath, bringForwardFromRecords, closeFromRecords, describeUnfinished, findInterrupted, findInterruptedRuns, markAborted, processAlive, recommitRunRecords, unfinishedSlots, unitRecordsOf } from '../../station/recover.ts';
import { readStationState, type StationState } from '../../station/station-state.ts';
import { parseSerialOption, scanSerials } from '../../station/unit-serial.ts';
import type { ResultSink } from '../../suites/model/events.ts';
import { RunView } from '../run-view.ts';
import { loadPlan } from '../../suites/plan/load-plan.ts';
import { assertRunnable } from '../../suites/registry.ts';
import type { MeasurementResult } from '../../suites/model/measurement.ts';
import { cliStderr, cliStdout } from '../io.ts';
import { printJson } from '../output.ts';
import { EXIT } from '../failure.ts';
import { PACKAGE_ROOT } from '../../rig/core/package-root.ts';
import { checkStorePath, DEFAULT_STORE_PATH, openStationStore } from '../../rig/store/station-store.ts';
import { SqliteStore } from '../../rig/store/sqlite-store.ts';
import { isPostgresUrl, redactUrl } from '../../rig/store/store-location.ts';
import { loadStationConfig } from '../../rig/store/station-config.ts';

/**
 * The run-end reports (JUnit through xmlbuilder2, HTML): imported when a run ends, not at start, which
 * a killed or refused run never reaches (about 0.4 s of CPU at every start on Node 20).
 */
const runReports = (): Promise<typeof import('../../reports/store-reports.ts')> => import('../../reports/store-reports.ts');

export const DEFAULT_SIM_JIG = join(PACKAGE_ROOT, 'fixtures/jigs/virtual-4slot.json');
export const PLAN_DIR = join(PACKAGE_ROOT, 'fixtures/plans');
export const DEFAULT_PLAN = 'factory';

interface RunArgs {
  jig?: string;
  sim?: boolean;
  plan: string;
  image?: string;
  baud: number;
  out?: string;
  slot?: Array<string | number>;
  serial?: string[];
  resume?: string;
  simTime?: 'real' | 'virtual';
  events?: string;
  json?: boolean;
  store: string;
  forward?: string;
  station?: string;
}

export const runCommand: CommandModule<object, RunArgs> = {
  command: 'run',
  builder: (y: Argv) =>
    y
      .option('jig', { type: 'string', describe: 'jig file, or the name of one in fixtures/jigs (default with --sim: fixtures/jigs/virtual-4slot.json)' })
      .option('sim', { type: 'boolean', describe: 'run on the in-process virtual jig' })
      .option('plan', { type: 'string', default: DEFAULT_PLAN, describe: 'plan name (fixtures/plans/<name>.json) or path to a plan file' })
      .option('image', { type: 'string', describe: 'OpenBeken image (default with --sim: a synthetic OpenBK7231N QIO image)' })
      .option('baud', { type: 'number', default: DEFAULT_BAUD })
      .option('slot', { type: 'array', string: true, describe: 'only these slot ids (--slot 1,2 or --slot 1 2)' })
      .option('serial', { type: 'array', string: true, describe: 'operator serials per slot: --serial 1=ABC,2=DEF (else scanned from stdin when the plan asks)' })
      .option('resume', { type: 'string', describe: 'resume the unfinished units of an interrupted run directory' })
      .option('sim-time', { choices: ['real', 'virtual'] as const, describe: 'virtual jig: model time (the default; exact modelled durations, independent of the CPU) or wall time' })
      .option('events', { type: 'string', describe: 'append every result event to FILE as NDJSON, written before the run goes on' })
      .option('out', { type: 'string', describe: 'directory for TAP reports, unit records and plugrig.log; must be new or empty (default runs/<timestamp>)' })
      .option('store', { type: 'string', default: DEFAULT_STORE_PATH, describe: "the station's traceability store (SQLite); every finished step is committed to it" })
      .option('forward', { type: 'string', describe: 'central store (postgres://...) to forward finished units to at the end of the run; the station store keeps them until it succeeds' })
      .option('station', { type: 'string', describe: 'station config file (fixtures/stations/*.json): the station id, name and line its runs are stored under, and the central store to forward to' })
      .option('json', { type: 'boolean' }) as unknown as Argv<RunArgs>,
  handler: async (args: ArgumentsCamelCase<RunArgs>) => {
    const log = rootLogger().child({ cmd: 'run' });
    // --resume: the interrupted run's own plan, jig and directory; only its unfinished units.
    let resume: StationState | undefined;
    if (args.resume) resume = await resumable(resolve(args.resume));
    const plan = loadPlan(resume?.run?.plan.source ?? args.plan, PLAN_DIR);
    assertRunnable(plan.plan, plan.source);
    const jigArg = resume?.run?.jig.source ?? args.jig ?? (args.sim ? DEFAULT_SIM_JIG : undefined);
    if (!jigArg) throw new ConfigError('no jig: give --jig <file>, or --sim for the virtual jig', { step: 'args' });
    const jigPath = jigFileOf(jigArg);
    const jig = loadJigFile(jigPath);
    const virtual = usesSim(jig);
    if (args.sim && !virtual) throw new ConfigError(`--sim given, but jig ${jigPath} names real ports (no sim: devices)`, { step: 'args' });
    if (args.simTime === 'virtual' && !virtual) throw new ConfigError('--sim-time virtual needs the virtual jig (--sim)', { step: 'args' });
    checkBaud(args.baud);
    const slots = resume ? unfinishedSlots(resume).map((u) => u.slot) : parseSlots(args.slot, jig.slots.map((x) => x.id));
    if (resume && slots.length === 0 && !abortedByDeath(resume)) throw new ConfigError(`run ${args.resume} ${resume.status === 'finished' ? 'finished; it has' : 'has'} no unfinished unit to resume`, { step: 'args' });
    if (resume && slots.length === 0) {
      // Its station died after the last unit's record: nothing to test, the run is closed from its records.
      checkStorePath(args.store);
      await closeRunFromRecords(resolve(args.resume!), resume, args.store, plan.plan.policy.minYieldPct, args.json === true);
      return;
    }
    const serialPattern = plan.plan.unit?.serial?.pattern;
    const serials = parseSerialOption(args.serial ?? [], { slots, ...(serialPattern !== undefined ? { pattern: serialPattern } : {}) });
    if (resume) for (const u of unfinishedSlots(resume)) if (typeof u.standing.unit.serial === 'string' && !serials.has(u.slot)) serials.set(u.slot, u.standing.unit.serial);

    // A plan without a flash suite (verify, calibrate) needs no image.
    const flashes = plan.plan.suites.some((e) => e.suite === 'flash');
    let image: { bytes: Uint8Array; offset: number; name: string; sha256?: string } | undefined;
    const imageFile = args.image ?? (plan.plan.image.file ? resolve(dirname(plan.source), plan.plan.image.file) : undefined);
    if (!flashes) image = undefined;
    else if (imageFile) {
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(await readFile(imageFile));
      } catch (e) {
        throw new ImageError(`cannot read image ${imageFile}: ${(e as Error).message}`, { step: 'image' });
      }
      const info = classifyImage({ name: basename(imageFile), bytes, targetChip: 'BK7231N' });
      const want = plan.plan.image.version;
      if (want && info.version !== want) throw new ImageError(`image ${imageFile} is version ${info.version ?? 'unknown'}, plan '${plan.plan.name}' wants ${want}`, { step: 'image' });
      const toWrite = info.bytesToWrite(false);
      image = { bytes: toWrite.bytes, offset: toWrite.offset, name: info.name, sha256: info.sha256 };
    } else if (virtual) {
      const im = makeSyntheticImage({ chip: 'BK7231N', kind: 'qio', version: plan.plan.image.version ?? '1.18.42', seed: 1 });
      const info = classifyImage({ name: im.name, bytes: im.bytes, targetChip: 'BK7231N' });
      const toWrite = info.bytesToWrite(false);
      image = { bytes: toWrite.bytes, offset: toWrite.offset, name: `${im.name} (synthetic)`, sha256: info.sha256 };
    } else throw new ConfigError('give --image <OpenBK7231N_QIO_*.bin> for a real jig', { step: 'args' });
    const wasImage = resume?.run?.image?.sha256;
    if (wasImage && image?.sha256 && wasImage !== image.sha256) throw new ConfigError(`run ${args.resume} flashed an image with sha256 ${wasImage.slice(0, 16)}…; give the same --image to resume it`, { step: 'args' });
    // The plan asks for a serial per unit: the ones not given are scanned (one line per unit).
    if (serialPattern !== undefined) {
      const missing = slots.filter((id) => !serials.has(id));
      if (missing.length) {
        const rl = createInterface({ input: process.stdin, terminal: false });
        try {
          const scanned = await scanSerials(missing, { pattern: serialPattern, lines: rl[Symbol.asyncIterator](), prompt: (text) => cliStderr().write(text), have: serials });
          for (const [id, v] of scanned) serials.set(id, v);
        } finally {
          rl.close();
        }
      }
    }

    checkStorePath(args.store);
    // The store lags the records by up to one event per slot after a kill: bring it up to them first.
    if (resume) recommitRecords(args.store, resolve(args.resume!), resume, { required: true });
    if (args.events !== undefined) checkPathText(args.events, '--events');
    const stationConfig = args.station ? loadStationConfig(args.station) : undefined;
    const forwardTo = args.forward ?? stationConfig?.central;
    if (args.forward !== undefined && !isPostgresUrl(args.forward)) throw new ConfigError(`--forward ${args.forward}: not a postgres:// URL`, { step: 'args' });
    // Last of the checks, so a refused run leaves no directory behind; still before any hardware.
    const outDir = resume
      ? resolve(args.resume!)
      : await prepareOutputDir(args.out ?? join('runs', new Date().toISOString().replace(/[:.]/g, '-')), {
          option: '--out',
          mustBeEmpty: 'a run directory holds one batch: name a new directory, or leave --out out for runs/<timestamp>',
        });
    if (!logDestinationChosen()) logToFile(confinedPath(outDir, resume ? `plugrig-resume-${Date.now()}.log` : 'plugrig.log', 'log file'));
    // A station that died left its runs marked running: say where their units stood, mark them aborted.
    if (!resume) {
      for (const r of findInterruptedRuns(dirname(outDir))) {
        await markAborted(r);
        recommitRecords(args.store, r.dir, r.state, { required: false });
        cliStderr().write(`run ${r.dir} was interrupted: its station (pid ${r.state.pid}) died; marked aborted\n${describeUnfinished(r).map((l) => `  ${l}\n`).join('')}  resume its unfinished units: plugrig run --resume ${r.dir}\n`);
      }
    }
    // johnny-five keeps wall-clock timers, so real jigs run in real time; the in-process virtual jig can run on model time.
    // Four virtual slots need more CPU than wall time gives on 2 cores: the virtual jig defaults to model time.
    const simTime = args.simTime ?? (virtual ? 'virtual' : 'real');
    const clock: Clock = simTime === 'virtual' ? new VirtualClock() : new RealClock();
    // The composition root: the machine's endpoints, plus the virtual jig's when the file names one.
    const endpoints = nativeEndpoints();
    // A plan that provisions gets the flash-backed OpenBeken plug. TRANSITIONAL for the others (verify,
    // flash-only): an unprovisioned OpenBeken plug has no LED/button/relay pins, so the pin-level model stands in.
    const provisions = plan.plan.suites.some((e) => e.suite === 'provision');
    // A plan that talks to OpenBeken without flashing or provisioning (verify) expects units already
    // flashed and provisioned: the virtual jig starts its plugs that way, with the plan's template.
    const talksHttp = plan.plan.suites.some((e) => HTTP_SUITES.has(e.suite));
    const preflash = virtual && !flashes && !provisions && talksHttp;
    const templatePath = plan.plan.device ? resolveDeviceTemplate(plan.plan.device.template, { baseDir: dirname(plan.source), devicesDir: DEVICES_DIR }) : undefined;
    if (preflash && !templatePath) throw new ConfigError(`plan '${plan.plan.name}' talks to OpenBeken but names no device template (plan "device": {"template": ...})`, { step: 'plan' });
    const provisioning = provisions || talksHttp
      ? stationProvisioning({ ...(plan.plan.device ? { templateRef: plan.plan.device.template } : {}), planDir: dirname(plan.source), jig, jigPath, ...(virtual ? { virtualWifi: DEFAULT_VIRTUAL_WIFI } : {}) })
      : undefined;
    const sim = virtual
      ? startVirtualJig(jig, {
          clock,
          endpoints,
          // The virtual station network is the station's network: the credentials the plugs are given.
          ...(provisioning?.wifi ? { wifi: provisioning.wifi } : {}),
          plugModel: provisions || preflash ? 'obk' : 'pin-level',
          ...(preflash ? { preflashed: { template: loadSimTemplate(templatePath!), ...(plan.plan.image.version ? { version: plan.plan.image.version } : {}) } } : {}),
        })
      : undefined;
    const stored = openStationStore({
      path: args.store,
      jig,
      ...(stationConfig ? { station: stationConfig.station } : {}),
      ...(image ? { image: { name: image.name, ...(image.sha256 ? { sha256: image.sha256 } : {}), origin: imageFile ?? 'synthetic' } } : {}),
      onAborted: (runs) => {
        for (const r of runs) cliStderr().write(`plugrig: run ${r.runId} (started ${r.startedAt}) was left unfinished: marked aborted in ${args.store}${r.unfinished.map((u) => `; slot ${u.slot} after ${u.lastStep ? `step '${u.lastStep.name}'` : 'no step'}`).join('')}\n`);
      },
    });
    const t0 = clock.now();
    const sinks: ResultSink[] = [];
    if (!args.json) sinks.push(new RunView(cliStderr()));
    const events = args.events ? ndjsonSink(args.events) : undefined;
    if (events) sinks.push(events.sink);
    let results: StationSlotResult[];
    let abortSignal: string | undefined;
    let abortReason: string | undefined;
    try {
      const run = await runStationDetailed({
        jig,
        jigPath,
        plan,
        ...(image ? { image } : {}),
        baudRate: args.baud,
        outDir,
        // The station's stock dumps beside its store: a batch with one stock image is read once.
        stockLibrary: join(dirname(resolve(args.store)), 'stock-firmware'),
        clock,
        log,
        endpoints,
        slots,
        serials,
        sinks: [stored.sink, ...sinks],
        notices: cliStderr(),
        ...(resume ? { resume } : {}),
        onOpened: (states) => {
          const safe = states.every((x) => x.state.mains === 'off' && x.state.uart === 'off' && x.state.power3v3 === 'off' && Object.values(x.state.loads).every((l) => l === 'off'));
          cliStderr().write(`jig ${safe ? 'in its safe state' : 'NOT confirmed safe'}: slots ${states.map((x) => x.slot).join(', ')} mains, loads, UART and 3V3 ${safe ? 'off (confirmed by the I/O board)' : 'not all confirmed off'}\n`);
        },
        ...(provisioning ? { provisioning, resolveHttp: plugResolver(sim, endpoints), ...(virtual ? { defaultPlug: (id: number) => ({ url: simPlugAddress(id) }) } : {}) } : {}),
      });
      results = run.slots;
      abortSignal = run.signal;
      abortReason = run.abortReason;
    } finally {
      await sim?.vj.dispose();
      stored.store.close();
      events?.close();
    }
    const forwarded = forwardTo ? await forwardRun(stored.store.path, forwardTo) : undefined;
    // TAP 14/13, JUnit, HTML and JSON of the run, rendered from what the store holds.
    const reports = stored.sink.runId ? await (await runReports()).writeRunReportsFromStore(args.store, stored.sink.runId, outDir) : { error: 'the store has no run id' };
    if ('error' in reports) cliStderr().write(`plugrig: run reports not written: ${reports.error}\n`);
    const seconds = (clock.now() - t0) / 1000;
    const passed = results.filter((r) => r.verdict === 'pass').length;
    const flashTime = (r: StationSlotResult): number | undefined => r.steps.flatMap((st) => st.measurements).find((m) => m.id === 'flashTime' && m.taken)?.value;
    if (args.json)
      printJson({
        jig: jig.name,
        plan: plan.plan.name,
        image: image?.name,
        seconds,
        passed,
        failed: results.length - passed,
        out: outDir,
        store: { path: args.store, runId: stored.sink.runId, ...(forwarded ? { forward: forwarded } : {}) },
        reports: 'paths' in reports ? Object.fromEntries(reports.paths) : { error: reports.error },
        slots: results.map((r) => ({ slot: r.slot, verdict: r.verdict, flagged: r.flagged, mac: r.unit.mac, flashSeconds: flashTime(r), tap: r.tap, record: r.record, ...(r.unit.stockBackup ? { stockBackup: r.unit.stockBackup } : {}), steps: r.steps.map((x) => ({ name: x.name, status: x.status, attempt: x.attempt })) })),
      });
    else {
      cliStdout().write(`jig ${jig.name}${virtual ? ' (virtual)' : ''}, plan ${plan.plan.name}${image ? `, image ${image.name}` : ''}\n\n`);
      for (const r of results) {
        const ft = flashTime(r);
        cliStdout().write(`slot ${r.slot}  ${r.verdict === 'pass' ? (r.flagged ? 'PASS (flagged)' : 'PASS') : 'FAIL'}  MAC ${String(r.unit.mac ?? '?')}  ${ft !== undefined ? `flash ${ft.toFixed(1)} s  ` : ''}record ${r.record}\n`);
        const b = r.unit.stockBackup as { path: string; bytes: number; sha256: string; source?: string } | undefined;
        if (b) cliStdout().write(`        stock firmware backed up before flashing: ${b.path} (${b.bytes} bytes, sha256 ${b.sha256.slice(0, 16)}…${b.source === 'crc-match' ? "; the station's stored dump, matched by the chip's CRCs, not read again" : ''})\n`);
        for (const st of r.steps) {
          const tag = st.status === 'pass' ? (st.flagged ? 'flag' : 'ok  ') : st.status === 'skip' ? 'skip' : 'FAIL';
          const retry = st.attempt > 1 ? ` (attempt ${st.attempt} of ${st.maxAttempts})` : '';
          cliStdout().write(`  ${tag}  ${st.name}${retry}${st.status === 'fail' && st.reason ? `: ${st.reason}` : ''}\n`);
        }
        for (const m of r.steps.flatMap((st) => st.measurements)) cliStdout().write(`        ${formatMeasurement(m)}\n`);
      }
      cliStdout().write(`\n${passed} of ${results.length} slots passed in ${seconds.toFixed(1)} s${simTime === 'virtual' ? ' (model time)' : ''}\n`);
      cliStdout().write(yieldTable(results, plan.plan.policy.minYieldPct, abortReason));
      if ('paths' in reports) cliStdout().write(`reports ${[...reports.paths.values()].join(' ')}\n`);
      cliStdout().write(`store ${args.store}, run ${stored.sink.runId ?? '?'}${forwarded ? `; forwarded ${forwarded.forwarded} unit(s) to ${forwarded.to}${forwarded.error ? ` (stopped: ${forwarded.error})` : ''}` : ''}\n`);
    }
    const yieldPct = results.length ? (100 * passed) / results.length : 0;
    // A store or a unit record that refused a write (disk full, locked, permission) failed the run, whatever the units did.
    const refusedRecord = results.find((r) => r.recordError?.code === 'E_STORE')?.recordError;
    if (stored.sink.failure) cliStderr().write(`plugrig: ${stored.sink.failure.message}\n`);
    if (refusedRecord && refusedRecord.message !== stored.sink.failure?.message) cliStderr().write(`plugrig: ${refusedRecord.message}\n`);
    if (abortSignal) process.exitCode = SIGNAL_EXIT[abortSignal] ?? 130;
    else if (stored.sink.failure || refusedRecord) process.exitCode = EXIT.E_STORE!;
    else if (abortReason !== undefined || yieldPct < plan.plan.policy.minYieldPct) process.exitCode = 9;
    else if ('error' in reports) process.exitCode = EXIT.E_STORE!;
  },
};

/**
 * Forward the station store's outbox to the central store. A failure (server down) is reported, not
 * fatal: the units stay in the station store for the next run's forward.
 */
async function forwardRun(storePath: string, url: string): Promise<{ to: string; forwarded: number; pending: number; error?: string }> {
  const { SqliteStore } = await import('../../rig/store/sqlite-store.ts');
  const { PostgresStore } = await import('../../rig/store/postgres-store.ts');
  const { forwardOutbox } = await import('../../rig/store/forward.ts');
  const local = SqliteStore.open(storePath);
  try {
    const central = await PostgresStore.open(url);
    try {
      const r = await forwardOutbox(local, central);
      return { to: central.where, forwarded: r.forwarded, pending: r.pending };
    } finally {
      await central.close();
    }
  } catch (e) {
    const pending = (local.db.prepare('SELECT COUNT(*) AS n FROM units WHERE forwarded_at IS NULL').get() as { n: number }).n;
    cliStderr().write(`plugrig: ${(e as Error).message}\n`);
    return { to: redactUrl(url), forwarded: 0, pending, error: (e as Error).message };
  } finally {
    local.close();
  }
}

const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

/** The run directory to resume: its station must be gone (a crash is marked aborted here) and it must have unfinished units. */
async function resumable(dir: string): Promise<StationState> {
  const st = readStationState(dir);
  if (!st) throw new ConfigError(`--resume ${dir}: no station-state.json there (not a run directory)`, { step: 'args' });
  if (st.status === 'running') {
    if (processAlive(st.pid)) throw new ConfigError(`--resume ${dir}: that run is still in progress (pid ${st.pid})`, { step: 'args' });
    const crashed = findInterrupted(dir)!;
    const marked = await markAborted(crashed);
    cliStderr().write(`run ${dir} was interrupted: its station (pid ${st.pid}) died; marked aborted\n${describeUnfinished(crashed).map((l) => `  ${l}\n`).join('')}`);
    return marked;
  }
  // Found aborted (by a fresh start, or its own abort): its records may still be ahead of its state.
  bringForwardFromRecords(dir, st);
  return st;
}

/** recommitRunRecords through a connection of its own (the station's store is opened later). */
function recommitRecords(storePath: string, dir: string, state: StationState, o: { required: boolean }): void {
  const store = SqliteStore.open(storePath);
  try {
    recommitRunRecords(store, dir, state, o);
  } finally {
    store.close();
  }
}

/**
 * `--resume` of a run whose station died after every unit was recorded complete: nothing is tested
 * again; the store is brought up to the records, the run closed there and in its state file, and its
 * reports written. The exit code follows the plan's yield policy, as a run's would.
 */
async function closeRunFromRecords(dir: string, state: StationState, storePath: string, minYieldPct: number, json: boolean): Promise<void> {
  const runId = state.run!.runId;
  const store = SqliteStore.open(storePath);
  try {
    await closeFromRecords(store, dir, state);
  } finally {
    store.close();
  }
  const units = unitRecordsOf(dir, runId).filter((x) => !x.file.includes('.interrupted-'));
  const passed = units.filter((x) => x.record.verdict === 'pass').length;
  const reports = await (await runReports()).writeRunReportsFromStore(storePath, runId, dir);
  if ('error' in reports) cliStderr().write(`plugrig: run reports not written: ${reports.error}\n`);
  if (json) printJson({ out: dir, closed: true, passed, failed: units.length - passed, store: { path: storePath, runId }, reports: 'paths' in reports ? Object.fromEntries(reports.paths) : { error: reports.error }, slots: units.map((x) => ({ slot: x.record.slot, verdict: x.record.verdict, record: join(dir, x.file) })) });
  else {
    cliStdout().write(`run ${dir}: every unit was recorded complete before its station died; closed without testing again\n`);
    cliStdout().write(`${passed} of ${units.length} slots passed\n`);
    if ('paths' in reports) cliStdout().write(`reports ${[...reports.paths.values()].join(' ')}\n`);
  }
  const yieldPct = units.length ? (100 * passed) / units.length : 0;
  if (yieldPct < minYieldPct) process.exitCode = 9;
  else if ('error' in reports) process.exitCode = EXIT.E_STORE!;
}

/** --slot 1,2 / --slot 1 2: ids of the jig, each once. */
function parseSlots(values: ReadonlyArray<string | number> | undefined, known: readonly number[]): number[] {
  if (!values) return [...known];
  const ids = values.flatMap((v) => String(v).split(',')).map((v) => v.trim()).filter((v) => v !== '');
  const out: number[] = [];
  for (const v of ids) {
    const n = Number(v);
    if (!Number.isInteger(n)) throw new ConfigError(`--slot ${v} is not a slot number`, { step: 'args' });
    if (!known.includes(n)) throw new ConfigError(`--slot ${n}: the jig has slots ${known.join(', ')}`, { step: 'args' });
    if (!out.includes(n)) out.push(n);
  }
  if (out.length === 0) throw new ConfigError('--slot names no slot', { step: 'args' });
  return out;
}

/** Every event as one JSON line, written synchronously: on disk (page cache) before the run goes on. */
function ndjsonSink(path: string): { sink: ResultSink; close(): void } {
  const fd = openSync(path, 'a');
  return {
    sink: { emit: (e) => void writeSync(fd, JSON.stringify(e) + '\n') },
    close: () => closeSync(fd),
  };
}

/** The final yield table: one row per unit, then yield, first-pass yield and the plan's policy. */
function yieldTable(results: StationSlotResult[], minYieldPct: number, abortReason: string | undefined): string {
  const rows = results.map((r) => {
    const unit = [r.unit.mac, r.unit.serial].filter((x) => x !== undefined).map(String).join(' ') || '?';
    const verdict = r.aborted ? 'ABORTED' : r.verdict === 'pass' ? (r.flagged ? 'PASS*' : 'PASS') : 'FAIL';
    const first = r.steps.find((x) => x.status === 'fail');
    return [`${r.slot}`, unit, verdict, `${(r.ms / 1000).toFixed(1)} s`, first ? `${first.name}${first.reason ? `: ${first.reason}` : ''}` : ''];
  });
  const head = ['slot', 'unit', 'verdict', 'time', 'first failure'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]): string => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  const n = results.length;
  const pass = results.filter((r) => r.verdict === 'pass').length;
  const firstPass = results.filter((r) => r.verdict === 'pass' && r.steps.every((x) => x.attempt <= 1)).length;
  const pct = (k: number): string => (n ? `${((100 * k) / n).toFixed(0)} %` : '-');
  const met = !abortReason && n > 0 && (100 * pass) / n >= minYieldPct;
  return (
    `\n${[head, ...rows].map(fmt).join('\n')}\n` +
    `yield ${pass}/${n} = ${pct(pass)}, first pass ${firstPass}/${n} = ${pct(firstPass)}; policy: at least ${minYieldPct} % ${met ? 'met' : `NOT met${abortReason ? ` (${abortReason})` : ''}`}\n`
  );
}

/** Suites that reach the plug over HTTP (and read the plan's device template back). */
const HTTP_SUITES: ReadonlySet<string> = new Set(['identity', 'relay', 'button', 'led', 'metering', 'calibrate']);

/** One line per measurement: value ± U (k), the limits it was judged against, the decision. */
function formatMeasurement(m: MeasurementResult): string {
  const n = (v: number | undefined): string => (v === undefined ? '-' : Number(v.toFixed(3)).toString());
  const limits = `[${n(m.limits?.low)} .. ${n(m.limits?.high)}]`;
  const value = m.taken ? `${n(m.value)}${m.U > 0 ? ` ± ${Number(m.U.toPrecision(2))}` : ''} ${m.unit}`.trimEnd() : 'not taken';
  const verdict = m.decision === 'accept' ? 'pass' : m.decision === 'accept-flagged' ? 'marginal (flagged)' : `${m.verdict.toUpperCase()}: ${m.reason}`;
  return `${m.name} = ${value} ${limits} ${verdict}`;
}

/** `--jig NAME` (no path, no .json) names a jig file of fixtures/jigs when no such file is here. */
function jigFileOf(arg: string): string {
  const bundled = join(PACKAGE_ROOT, 'fixtures/jigs', `${arg}.json`);
  return /^[\w.-]+$/.test(arg) && !arg.endsWith('.json') && !existsSync(arg) && existsSync(bundled) ? bundled : resolve(arg);
}
