import { readFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { RealClock } from '../../rig/core/clock.ts';
import { ConfigError, ImageError } from '../../rig/core/errors.ts';
import { logDestinationChosen, logToFile, rootLogger } from '../../rig/core/log.ts';
import { checkBaud, prepareOutputDir } from '../args.ts';
import { loadJigFile } from '../../rig/jig/jig-config.ts';
import { DEFAULT_BAUD } from '../../rig/bk7231/flasher.ts';
import { classifyImage } from '../../firmware/image.ts';
import { makeSyntheticImage } from '../../firmware/synthetic.ts';
import { nativeEndpoints } from '../../rig/endpoints/native.ts';
import { startVirtualJig, usesSim } from '../../sim/jig/in-process-jig.ts';
import { DEFAULT_VIRTUAL_WIFI } from '../../sim/jig/virtual-jig.ts';
import { DEVICES_DIR, plugResolver, simPlugAddress, stationProvisioning } from './dut.ts';
import { resolveDeviceTemplate } from '../../rig/dut/device-template.ts';
import { loadSimTemplate } from '../../sim/plug/obk-template.ts';
import { runStation, type StationSlotResult } from '../../station/run-station.ts';
import { loadPlan } from '../../suites/plan/load-plan.ts';
import { assertRunnable } from '../../suites/registry.ts';
import type { MeasurementResult } from '../../suites/model/measurement.ts';
import { printJson } from '../output.ts';
import { PACKAGE_ROOT } from '../package-root.ts';
import { checkStorePath, DEFAULT_STORE_PATH, openStationStore } from '../../rig/store/station-store.ts';
import { isPostgresUrl, redactUrl } from '../../rig/store/store-location.ts';
import { writeRunReportsFromStore } from '../../reports/store-reports.ts';

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
  slot?: number[];
  json?: boolean;
  store: string;
  forward?: string;
}

export const runCommand: CommandModule<object, RunArgs> = {
  command: 'run',
  builder: (y: Argv) =>
    y
      .option('jig', { type: 'string', describe: 'jig file (default with --sim: fixtures/jigs/virtual-4slot.json)' })
      .option('sim', { type: 'boolean', describe: 'run on the in-process virtual jig' })
      .option('plan', { type: 'string', default: DEFAULT_PLAN, describe: 'plan name (fixtures/plans/<name>.json) or path to a plan file' })
      .option('image', { type: 'string', describe: 'OpenBeken image (default with --sim: a synthetic OpenBK7231N QIO image)' })
      .option('baud', { type: 'number', default: DEFAULT_BAUD })
      .option('slot', { type: 'array', number: true, describe: 'only these slot ids' })
      .option('out', { type: 'string', describe: 'directory for TAP reports, unit records and plugrig.log; must be new or empty (default runs/<timestamp>)' })
      .option('store', { type: 'string', default: DEFAULT_STORE_PATH, describe: "the station's traceability store (SQLite); every finished step is committed to it" })
      .option('forward', { type: 'string', describe: 'central store (postgres://...) to forward finished units to at the end of the run; the station store keeps them until it succeeds' })
      .option('json', { type: 'boolean' }) as unknown as Argv<RunArgs>,
  handler: async (args: ArgumentsCamelCase<RunArgs>) => {
    const log = rootLogger().child({ cmd: 'run' });
    const plan = loadPlan(args.plan, PLAN_DIR);
    assertRunnable(plan.plan, plan.source);
    const jigPath = args.jig ?? (args.sim ? DEFAULT_SIM_JIG : undefined);
    if (!jigPath) throw new ConfigError('no jig: give --jig <file>, or --sim for the virtual jig', { step: 'args' });
    const jig = loadJigFile(jigPath);
    const virtual = usesSim(jig);
    if (args.sim && !virtual) throw new ConfigError(`--sim given, but jig ${jigPath} names real ports (no sim: devices)`, { step: 'args' });
    checkBaud(args.baud);
    const unknownSlot = args.slot?.find((id) => !jig.slots.some((s) => s.id === id));
    if (unknownSlot !== undefined) throw new ConfigError(`--slot ${unknownSlot}: jig ${jig.name} has slot(s) ${jig.slots.map((s) => s.id).join(', ')}`, { step: 'args' });

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

    checkStorePath(args.store);
    if (args.forward !== undefined && !isPostgresUrl(args.forward)) throw new ConfigError(`--forward ${args.forward}: not a postgres:// URL`, { step: 'args' });
    // Last of the checks, so a refused run leaves no directory behind; still before any hardware.
    const outDir = await prepareOutputDir(args.out ?? join('runs', new Date().toISOString().replace(/[:.]/g, '-')), {
      option: '--out',
      mustBeEmpty: 'a run directory holds one batch: name a new directory, or leave --out out for runs/<timestamp>',
    });
    if (!logDestinationChosen()) logToFile(join(outDir, 'plugrig.log'));
    const clock = new RealClock(); // johnny-five keeps wall-clock timers: stations run in real time
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
    const sim = virtual
      ? startVirtualJig(jig, {
          clock,
          endpoints,
          plugModel: provisions || preflash ? 'obk' : 'pin-level',
          ...(preflash ? { preflashed: { template: loadSimTemplate(templatePath!), ...(plan.plan.image.version ? { version: plan.plan.image.version } : {}) } } : {}),
        })
      : undefined;
    const provisioning = provisions || talksHttp
      ? stationProvisioning({ ...(plan.plan.device ? { templateRef: plan.plan.device.template } : {}), planDir: dirname(plan.source), jig, jigPath, ...(virtual ? { virtualWifi: DEFAULT_VIRTUAL_WIFI } : {}) })
      : undefined;
    const stored = openStationStore({
      path: args.store,
      jig,
      ...(image ? { image: { name: image.name, ...(image.sha256 ? { sha256: image.sha256 } : {}), origin: imageFile ?? 'synthetic' } } : {}),
      onAborted: (runs) => {
        for (const r of runs) process.stderr.write(`plugrig: run ${r.runId} (started ${r.startedAt}) was left unfinished: marked aborted in ${args.store}${r.unfinished.map((u) => `; slot ${u.slot} after ${u.lastStep ? `step '${u.lastStep.name}'` : 'no step'}`).join('')}\n`);
      },
    });
    const t0 = clock.now();
    let results: StationSlotResult[];
    try {
      results = await runStation({
        jig,
        jigPath,
        plan,
        ...(image ? { image } : {}),
        baudRate: args.baud,
        outDir,
        clock,
        log,
        endpoints,
        ...(args.slot ? { slots: args.slot } : {}),
        sinks: [stored.sink],
        ...(provisioning ? { provisioning, resolveHttp: plugResolver(sim, endpoints), ...(virtual ? { defaultPlug: (id: number) => ({ url: simPlugAddress(id) }) } : {}) } : {}),
      });
    } finally {
      await sim?.vj.dispose();
      stored.store.close();
    }
    const forwarded = args.forward ? await forwardRun(stored.store.path, args.forward) : undefined;
    // TAP 14/13, JUnit, HTML and JSON of the run, rendered from what the store holds.
    const reports = stored.sink.runId ? await writeRunReportsFromStore(args.store, stored.sink.runId, outDir) : { error: 'the store has no run id' };
    if ('error' in reports) process.stderr.write(`plugrig: run reports not written: ${reports.error}\n`);
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
      process.stdout.write(`jig ${jig.name}${virtual ? ' (virtual)' : ''}, plan ${plan.plan.name}${image ? `, image ${image.name}` : ''}\n\n`);
      for (const r of results) {
        const ft = flashTime(r);
        process.stdout.write(`slot ${r.slot}  ${r.verdict === 'pass' ? (r.flagged ? 'PASS (flagged)' : 'PASS') : 'FAIL'}  MAC ${String(r.unit.mac ?? '?')}  ${ft !== undefined ? `flash ${ft.toFixed(1)} s  ` : ''}record ${r.record}\n`);
        const b = r.unit.stockBackup as { path: string; bytes: number; sha256: string } | undefined;
        if (b) process.stdout.write(`        stock firmware backed up before flashing: ${b.path} (${b.bytes} bytes, sha256 ${b.sha256.slice(0, 16)}…)\n`);
        for (const st of r.steps) {
          const tag = st.status === 'pass' ? (st.flagged ? 'flag' : 'ok  ') : st.status === 'skip' ? 'skip' : 'FAIL';
          const retry = st.attempt > 1 ? ` (attempt ${st.attempt} of ${st.maxAttempts})` : '';
          process.stdout.write(`  ${tag}  ${st.name}${retry}${st.status === 'fail' && st.reason ? `: ${st.reason}` : ''}\n`);
        }
        for (const m of r.steps.flatMap((st) => st.measurements)) process.stdout.write(`        ${formatMeasurement(m)}\n`);
      }
      process.stdout.write(`\n${passed} of ${results.length} slots passed in ${seconds.toFixed(1)} s\n`);
      if ('paths' in reports) process.stdout.write(`reports ${[...reports.paths.values()].join(' ')}\n`);
      process.stdout.write(`store ${args.store}, run ${stored.sink.runId ?? '?'}${forwarded ? `; forwarded ${forwarded.forwarded} unit(s) to ${forwarded.to}${forwarded.error ? ` (stopped: ${forwarded.error})` : ''}` : ''}\n`);
    }
    if (passed !== results.length) process.exitCode = 9;
    else if ('error' in reports) process.exitCode = 1;
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
    process.stderr.write(`plugrig: ${(e as Error).message}\n`);
    return { to: redactUrl(url), forwarded: 0, pending, error: (e as Error).message };
  } finally {
    local.close();
  }
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
