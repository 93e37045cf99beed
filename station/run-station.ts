import { randomUUID } from 'node:crypto';
import { makeDirectory } from '../rig/core/make-directory.ts';
import { InstrumentError } from '../rig/core/errors.ts';
import type { InterlockState, MainsInterlock } from '../rig/jig/mains-interlock.ts';
import type { GuardedProcess } from '../rig/jig/process-guard.ts';
import type { ReferenceMeter } from '../rig/meter/reference-meter.ts';
import type { ResultEvent } from '../suites/model/events.ts';
import type { Step } from '../suites/runner/step.ts';
import { InstrumentLease, InstrumentPool, type LeaseEvent } from './instrument-lease.ts';
import { StationStateWriter, type StationState } from './station-state.ts';
import { interruptPartialRecords } from './recover.ts';
import { hostIo, type Clock } from '../rig/core/clock.ts';
import type { Logger } from '../rig/core/log.ts';
import type { EndpointRegistry } from '../rig/endpoints/registry.ts';
import type { JigSpec } from '../rig/jig/jig-config.ts';
import { installProcessGuard } from '../rig/jig/process-guard.ts';
import { TapListener } from '../reports/tap-listener.ts';
import { UnitRecordWriter } from '../reports/unit-record.ts';
import { teeSink, type ResultSink, type RunInfo } from '../suites/model/events.ts';
import type { SlotResult } from '../suites/model/step-result.ts';
import type { LoadedPlan } from '../suites/plan/load-plan.ts';
import { slotProgram } from '../suites/registry.ts';
import { StockLibrary } from '../suites/stock-library.ts';
import { runSlot } from '../suites/runner/run-slot.ts';
import { StepPause } from '../suites/runner/step-pause.ts';
import { openStation } from './open-station.ts';
import type { SupplySlotStats } from './supply-activity.ts';
import { describeMainsAtStart } from '../rig/jig/mains-at-start.ts';
import type { DeviceTemplate } from '../rig/dut/device-template.ts';
import { ObkHttpClient } from '../rig/dut/obk-http-client.ts';
import { locatePlug, type HttpAddressResolver } from '../rig/dut/plug-locator.ts';
import type { PlugLocationSpec } from '../rig/jig/jig-config.ts';
import { ConfigError } from '../rig/core/errors.ts';
import { keepFedUnitFiles, type FedUnit, type UnitFeed } from './unit-feed.ts';

export interface StationImage {
  bytes: Uint8Array;
  /** Flash address of bytes[0]. */
  offset: number;
  name: string;
  sha256?: string;
}

export interface RunStationOptions {
  jig: JigSpec;
  /** For the reports' metadata. */
  jigPath: string;
  plan: LoadedPlan;
  /** What the plan's flash suite writes (none for a plan that does not flash). */
  image?: StationImage;
  baudRate: number;
  outDir: string;
  clock: Clock;
  log: Logger;
  /** Resolves every port and address of the jig (the composition root's choice). */
  endpoints: EndpointRegistry;
  slots?: number[];
  /** Aborts every slot (their cleanup and safe state still run). */
  signal?: AbortSignal;
  /** More listeners besides the TAP reports and unit records. */
  sinks?: ResultSink[];
  /**
   * The station's abort sources: SIGINT/SIGTERM/SIGHUP of this process (default; `signals: false`
   * for none). The first one trips every interlock (mains and loads off first, then UART/3V3) and
   * aborts every slot, whose cleanup, safe state and records still run; later ones do not stop that.
   */
  signals?: StationSignals | false;
  /** Operator-scanned serials by slot (validated by the caller against the plan's pattern). */
  serials?: ReadonlyMap<number, string>;
  /**
   * Where the operator is told what a signal does (the CLI's stderr, cli/io); the station never writes
   * to the process's streams itself. Without it, the log has the same (warn lines).
   */
  notices?: { write(line: string): unknown };
  /** Told once every slot's interlock confirmed all outputs off (the jig's safe state at start). */
  onOpened?: (slots: Array<{ slot: number; state: InterlockState }>) => void;
  /** How long a step may wait for a shared instrument before it fails (default 10 min). */
  leaseTimeoutMs?: number;
  /** The state file of the interrupted run this one resumes (its unfinished slots only). */
  resume?: StationState;
  /** Device template and credentials for a plan that provisions (passwords also listed in secrets, for redaction). */
  provisioning?: { template?: DeviceTemplate; wifi?: { ssid: string; pass: string }; webPassword?: string; secrets: string[] };
  /** Resolves `sim:` plug addresses (the composition root's virtual jig); undefined = not reachable yet. */
  resolveHttp?: HttpAddressResolver;
  /** The plug address of a slot whose jig entry has no plug section (the virtual jig's). */
  defaultPlug?: (slotId: number) => PlugLocationSpec | undefined;
  /**
   * The station's directory of stock-firmware dumps (content-addressed, suites/stock-library.ts): a
   * unit whose stock app is stored there already is matched by the chip's CRCs instead of read.
   * Absent: every unit's stock firmware is read.
   */
  stockLibrary?: string;
  /**
   * Continuous feeding (station/unit-feed.ts): each slot takes its next unit from the feed as soon as
   * its last one is in its safe state, until the feed has none left; every unit's record and TAP file
   * are kept as `slot-N.unit-K.*`. Without it each slot tests the unit it holds, once.
   */
  feed?: UnitFeed;
}

export interface StationSlotResult extends SlotResult {
  tap: string;
  record: string;
  /** The fed unit this result is of (a run with a feed has one result per unit, several per slot). */
  fed?: FedUnit;
}

/** Where signals come from (process by default; a fake in tests). */
export interface StationSignals {
  on(signal: 'SIGINT' | 'SIGTERM' | 'SIGHUP', fn: () => void): void;
  off(signal: 'SIGINT' | 'SIGTERM' | 'SIGHUP', fn: () => void): void;
}

const STATION_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const DEFAULT_LEASE_TIMEOUT_MS = 600_000;

/** What runStation returns: the slots, and whether (and why) the run was aborted. */
export interface StationRun {
  slots: StationSlotResult[];
  runId: string;
  abortReason?: string;
  /** The signal that aborted the run, for the exit code. */
  signal?: string;
  /** Per slot: what the shared mains feed cost it (waits before its switches, windows dropped for others'). */
  supply?: ReadonlyMap<number, Readonly<SupplySlotStats>>;
}

/**
 * Run the plan on every slot in parallel. A slot that fails (a step error, an adapter unplugged
 * mid-run) ends in its safe state and does not stop the others. The listeners write `slot-N.tap`
 * (TAP 14) and `slot-N.json` (unit record, rewritten after every finished step) into outDir.
 */
export async function runStation(o: RunStationOptions): Promise<StationSlotResult[]> {
  return (await runStationDetailed(o)).slots;
}

/**
 * runStation with the run's end: the slots, and the abort reason when a signal, the lid or the
 * E-stop stopped it. Every slot's progress is kept in `station-state.json` (station-state.ts), so
 * a killed station leaves behind where each slot stood.
 */
export async function runStationDetailed(o: RunStationOptions): Promise<StationRun> {
  // Host I/O: the virtual jig's timers are running already, so model time must not move meanwhile.
  await hostIo(o.clock, () => makeDirectory(o.outDir));
  const wanted = o.slots ?? o.jig.slots.map((s) => s.id);
  // A resumed run keeps the interrupted tries' records under new names, never overwritten.
  if (o.resume) await hostIo(o.clock, () => interruptPartialRecords(o.outDir, o.resume!, wanted));
  const tap = new TapListener(o.outDir);
  const records = new UnitRecordWriter(o.outDir);
  // After the records: a step the state file counts is in its record already.
  const pendingStates: ResultEvent[] = [];
  const state = new StationStateWriter(o.outDir, {
    ...(o.resume ? { previous: o.resume } : {}),
    slots: wanted,
    onPhase: (slot, from, to, step) => pendingStates.push({ type: 'slot-state', slot, state: to, from, ...(step ? { step } : {}), t: o.clock.now(), at: new Date().toISOString() }),
  });
  const extras = teeSink(...(o.sinks ?? []));
  const inner = recordsFirst(records, state, teeSink(tap, extras));
  const serials = o.serials ?? new Map<number, string>();
  const sink = holdingClock(
    {
      async emit(e) {
        await inner.emit(e);
        // The operator's scan is a fact of the unit from its first moment in the slot.
        if (e.type === 'slot-started') {
          const serial = serials.get(e.slot);
          if (serial !== undefined) await inner.emit({ type: 'unit', slot: e.slot, facts: { serial } });
        }
        while (pendingStates.length) await extras.emit(pendingStates.shift()!);
      },
    },
    o.clock,
  );
  const run: RunInfo = {
    runId: o.resume?.run?.runId ?? randomUUID(),
    plan: { name: o.plan.plan.name, sha256: o.plan.sha256, source: o.plan.source },
    jig: { name: o.jig.name, source: o.jigPath },
    ...(o.image ? { image: { name: o.image.name, ...(o.image.sha256 ? { sha256: o.image.sha256 } : {}) } } : {}),
    startedAt: new Date().toISOString(),
  };
  await sink.emit({ type: 'run-started', run });

  // Aborts: the caller's signal, the process's signals, a lid opened or the E-stop pressed.
  const abort = new AbortController();
  let abortReason: string | undefined;
  let abortSignal: string | undefined;
  const onOuter = (): void => abortRun(`aborted: ${String(o.signal?.reason instanceof Error ? o.signal.reason.message : (o.signal?.reason ?? 'by the caller'))}`);
  if (o.signal?.aborted) onOuter();
  else o.signal?.addEventListener('abort', onOuter, { once: true });
  let tripAll: (reason: 'signal' | 'operator', detail: string) => Promise<void> = async () => undefined;
  function abortRun(reason: string, trip?: { why: 'signal' | 'operator'; detail: string }): void {
    if (abortReason !== undefined) return;
    abortReason = reason;
    o.log.warn({ reason }, 'run aborted: mains and loads off first, then UART/3V3, then the records');
    // The trip issues mains, loads, then UART/3V3 off synchronously; then the slots are told to stop
    // (their cleanup and safe state confirm it, then the records are written).
    if (trip) void tripAll(trip.why, trip.detail);
    abort.abort(new InstrumentError(reason, { step: 'abort' }));
  }
  const signals = o.signals === false ? undefined : (o.signals ?? (process as unknown as StationSignals));
  const onSignal = (sig: string) => (): void => {
    if (abortReason !== undefined) {
      o.log.warn({ signal: sig }, 'cleanup in progress: the safe state and the records finish first (this signal does not stop them)');
      o.notices?.write(`plugrig: ${sig} again: still cleaning up (safe state, then records); not stopping that\n`);
      return;
    }
    abortSignal = sig;
    o.notices?.write(`plugrig: ${sig}: aborting: mains and loads off, then UART/3V3, then the records\n`);
    abortRun(`${sig} received`, { why: 'signal', detail: sig });
  };
  const handlers = STATION_SIGNALS.map((sig) => [sig, onSignal(sig)] as const);
  for (const [sig, fn] of handlers) signals?.on(sig, fn);

  const results: StationSlotResult[] = [];
  let station: Awaited<ReturnType<typeof openStation>> | undefined;
  let uninstall = (): void => undefined;
  try {
    // A shared mains relay would energise a partner slot while the handler reaches into this one.
    if (o.feed && o.jig.mainsGroups && Object.keys(o.jig.mainsGroups).length > 0) {
      throw new ConfigError(`jig ${o.jig.name}: continuous feeding needs each slot's mains on a relay of its own, and this jig has shared mains relays (mainsGroups)`, { step: 'unit-feed' });
    }
    station = await openStation(o.jig, { clock: o.clock, log: o.log, endpoints: o.endpoints, slots: wanted });
    const st = station;
    // A mains relay output the board held on before the station wrote anything: said, then driven off (openStation).
    for (const m of st.mainsAtStart.filter((x) => x.energised)) o.notices?.write(`plugrig: jig found energised at start: slot ${m.slots.join(', ')}: ${describeMainsAtStart(m)}\n`);
    o.onOpened?.([...st.slots.entries()].map(([slot, s]) => ({ slot, state: s.io.interlock.state() })));
    const interlocks = (): MainsInterlock[] => [...st.slots.values()].map((s) => s.io.interlock);
    tripAll = async (why, detail) => {
      await Promise.allSettled(interlocks().map((il) => il.emergencyOff(why, detail)));
    };
    // Exceptions and exit still trip the jig (process guard); signals are the station's (above).
    uninstall = installProcessGuard(interlocks, { clock: o.clock, log: o.log, proc: withoutSignals() });
    for (const [id, s] of st.slots) {
      s.io.interlock.on('fault', (f) => {
        if (f.reason === 'lid-open' || f.reason === 'estop') abortRun(`slot ${id}: ${f.reason === 'lid-open' ? 'lid opened' : 'E-stop pressed'}`, { why: 'operator', detail: f.reason });
      });
    }
    const pool = instrumentPool(st, o, (e) => {
      void Promise.resolve(sink.emit(instrumentEvent(e))).catch(() => undefined);
    });
    // A slot waiting at its mains group's barrier lends its shared instruments out meanwhile.
    const lending = new Map<number, { begin(): void; end(): Promise<void> }>();
    for (const g of st.mainsGroups.values()) {
      g.setWaitHooks({ begin: (slot) => lending.get(slot)?.begin(), end: async (slot) => lending.get(slot)?.end() });
    }
    // Suites that talk to the plug over HTTP (and compare with the plan's device template).
    const provisions = o.plan.plan.suites.some((e) => HTTP_SUITES.has(e.suite));
    const stockLibrary = o.stockLibrary !== undefined ? new StockLibrary(o.stockLibrary, { log: o.log }) : undefined;
    // Every slot's program is built before any slot starts: a plan that does not fit the jig fails here.
    const programs = [...st.slots.entries()].map(([id, s]) => {
      const log = o.log.child({ slot: id });
      const spec = o.jig.slots.find((x) => x.id === id)!;
      const lease = pool.get(`meter:${s.meterRef}`);
      // Built afresh for every unit: a program's steps carry what they learnt of their unit (its MAC, ...).
      const build = (): Step[] => slotProgram(o.plan.plan, {
        spec,
        io: s.io,
        meter: st.muxes.has(s.meterRef) && lease ? leasedMeter(s.meter, lease, id) : s.meter,
        // Resolved per ROM session and watched while open: an adapter that went fails this unit naming it; it is found again under its new tty next time.
        openUart: (u) => s.uart.open({ baudRate: 115200, log, ...(u?.signal ? { signal: u.signal } : {}) }),
        ...(o.image ? { image: o.image } : {}),
        baudRate: o.baudRate,
        outDir: o.outDir,
        ...(stockLibrary ? { stockLibrary } : {}),
        mainsVolts: o.jig.mains.volts,
        supply: st.supply.watch(id),
        log,
        romSession: { afterWrite: [] },
        ...(provisions
          ? {
              provisioning: o.provisioning ?? { secrets: [] },
              plug: {
                connect: async (mac: string | undefined, _signal: AbortSignal, c?: { timeoutMs?: number }) => {
                  const loc = await locatePlug(spec.plug ?? o.defaultPlug?.(id), { slot: id, ...(mac ? { mac } : {}), ...(o.resolveHttp ? { resolveHttp: o.resolveHttp } : {}), clock: o.clock, ...(c?.timeoutMs !== undefined ? { timeoutMs: c.timeoutMs } : {}) });
                  return new ObkHttpClient({ url: loc.url, clock: o.clock, log, slot: id, secrets: o.provisioning?.secrets ?? [], ...(o.provisioning?.webPassword ? { webPassword: o.provisioning.webPassword } : {}) });
                },
              },
            }
          : {}),
      });
      const leaseTimeoutMs = o.leaseTimeoutMs ?? DEFAULT_LEASE_TIMEOUT_MS;
      // What the slot holds right now, so a wait at its mains group's barrier can lend it out.
      const held = { names: [] as string[], step: '', release: undefined as (() => void) | undefined };
      // Waiting for the group's partners (and for the lent instruments back) is not the step being slow.
      const pause = new StepPause();
      lending.set(id, {
        begin: () => {
          pause.begin();
          held.release?.();
          held.release = undefined;
        },
        end: async () => {
          try {
            if (held.names.length && !held.release) held.release = await pool.acquireAll(held.names, { slot: id, step: held.step }, { timeoutMs: leaseTimeoutMs, signal: abort.signal });
          } finally {
            pause.end();
          }
        },
      });
      const acquire = async (step: Step, signal: AbortSignal): Promise<() => void> => {
        const names = (step.needs ?? []).map((n) => `${n}:${s.meterRef}`);
        const release = await pool.acquireAll(names, { slot: id, step: step.name }, { timeoutMs: leaseTimeoutMs, signal });
        Object.assign(held, { names, step: step.name, release });
        return () => {
          held.release?.();
          Object.assign(held, { names: [], step: '', release: undefined });
        };
      };
      const group = s.io.interlock.group;
      // A slot on a shared mains relay is only off when the whole group is: it waits for its partners here.
      const grouped = (steps: Step[]): Step[] => group
        ? [
            ...steps,
            {
              name: `mains group ${group.name}: mains off once no slot of the group needs it (shared relay)`,
              kind: 'cleanup',
              timeoutMs: leaseTimeoutMs,
              run: async () => {
                await s.io.interlock.disconnectUart();
                await s.io.interlock.power3v3(false);
                await s.io.interlock.mainsOff();
                return { group: group.name, mains: s.io.interlock.state().mains };
              },
            },
          ]
        : steps;
      return { id, log, build: () => grouped(build()), acquire, pause };
    });
    await Promise.all(
      programs.map(async ({ id, log, build, acquire, pause }) => {
        for (;;) {
          let fed: FedUnit | undefined;
          if (o.feed) {
            try {
              fed = await o.feed.next(id, abort.signal);
            } catch (e) {
              // The handler could not seat a unit: this slot takes no more; the others go on.
              if (!abort.signal.aborted) o.notices?.write(`plugrig: slot ${id}: no next unit: ${(e as Error).message}\n`);
              log.warn({ err: (e as Error).message }, 'unit feed: no next unit for this slot');
            }
            if (!fed) break;
          }
          const result = await runSlot(build(), {
          slot: id,
          clock: o.clock,
          log,
          sink,
          timeoutMs: o.plan.plan.defaults.stepTimeoutMs,
          onMarginal: o.plan.plan.defaults.onMarginal,
          signal: abort.signal,
            acquire,
            pause,
          });
          const files = { tap: tap.paths.get(id) ?? '', record: records.paths.get(id) ?? '' };
          // The slot's next unit writes slot-N.*: this one's files are kept under its own name.
          const kept = fed ? await hostIo(o.clock, () => keepFedUnitFiles(files, id, fed)) : files;
          results.push({ ...result, ...kept, ...(fed ? { fed } : {}) });
          if (!o.feed) break;
        }
        // Its program ended: its group's barrier stops waiting for it.
        st.slots.get(id)?.io.interlock.group?.leave(id);
      }),
    );
  } finally {
    await station?.close();
    uninstall();
    await hostIo(o.clock, () => tap.close());
    o.signal?.removeEventListener('abort', onOuter);
  }
  results.sort((a, b) => a.slot - b.slot || (a.fed?.index ?? 0) - (b.fed?.index ?? 0));
  await sink.emit({ type: 'run-finished', run, slots: results, finishedAt: new Date().toISOString() });
  await hostIo(o.clock, () => state.end(abortReason !== undefined ? 'aborted' : 'finished', abortReason));
  for (const [sig, fn] of handlers) signals?.off(sig, fn);
  return { slots: results, runId: run.runId, ...(abortReason !== undefined ? { abortReason } : {}), ...(abortSignal ? { signal: abortSignal } : {}), ...(station ? { supply: station.supply.stats() } : {}) };
}

/** One FIFO lease per meter of the opened slots; a shared one switches its mux to the holder. */
function instrumentPool(st: Awaited<ReturnType<typeof openStation>>, o: RunStationOptions, onEvent: (e: LeaseEvent) => void): InstrumentPool {
  const pool = new InstrumentPool();
  for (const ref of new Set([...st.slots.values()].map((s) => s.meterRef))) {
    const mux = st.muxes.get(ref);
    pool.add(
      new InstrumentLease(`meter:${ref}`, {
        clock: o.clock,
        onEvent,
        ...(mux ? { onGrant: (h) => mux.select(h.slot), onRelease: () => mux.deselect() } : {}),
      }),
    );
  }
  return pool;
}

function instrumentEvent(e: LeaseEvent): ResultEvent {
  return {
    type: 'instrument',
    slot: e.holder.slot,
    step: e.holder.step,
    instrument: e.instrument,
    kind: e.kind,
    t: e.t,
    at: new Date().toISOString(),
    ...('waitedMs' in e ? { waitedMs: e.waitedMs } : {}),
    ...('heldMs' in e ? { heldMs: e.heldMs } : {}),
    ...('heldBy' in e && e.heldBy ? { heldBy: e.heldBy.slot } : {}),
  };
}

/**
 * A shared meter as one slot's suites see it: reads only while this slot holds its lease (the mux
 * routes the meter to the holder), so a step that forgot to declare `needs: ['meter']` fails
 * loudly instead of measuring another slot's plug.
 */
function leasedMeter(meter: ReferenceMeter, lease: InstrumentLease, slot: number): ReferenceMeter {
  const mine = (what: string): void => {
    const h = lease.heldBy();
    if (h?.slot !== slot) throw new InstrumentError(`slot ${slot} ${what} the shared meter ${lease.name} without holding it (declare needs: ['meter'] on the step)${h ? `; slot ${h.slot} holds it` : ''}`, { slot, instrument: lease.name });
  };
  return {
    accuracy: meter.accuracy,
    read: async () => (mine('reads'), meter.read()),
    identity: () => meter.identity(),
    uncertainty: (q, v) => meter.uncertainty(q, v),
    resetEnergy: async () => (mine('resets'), meter.resetEnergy()),
    close: async () => undefined,
  };
}

/** The real process for the process guard, minus its signal handling (the station's own). */
function withoutSignals(): GuardedProcess {
  const skip = new Set<string>(STATION_SIGNALS);
  return {
    on: (ev, fn) => (skip.has(ev) ? undefined : process.on(ev, fn)),
    off: (ev, fn) => (skip.has(ev) ? undefined : process.off(ev, fn)),
    exit: (code) => process.exit(code),
  };
}

const HTTP_SUITES: ReadonlySet<string> = new Set(['provision', 'identity', 'relay', 'button', 'led', 'metering', 'calibrate']);

/**
 * The unit record gets each event first. The station state hears it only once the record holds it (a
 * state file that counted a step, or a unit complete, its record lacks would make a resume skip it);
 * the other listeners (TAP, store, live view) hear it anyway, so nothing is lost. A refused record
 * write is thrown after they did: runSlot fails the unit for it.
 */
function recordsFirst(records: ResultSink, state: ResultSink, others: ResultSink): ResultSink {
  return {
    async emit(event) {
      let refused: unknown;
      try {
        await records.emit(event);
      } catch (e) {
        refused = e;
      }
      try {
        await (refused === undefined ? teeSink(state, others) : others).emit(event);
      } catch (e) {
        refused ??= e;
      }
      if (refused !== undefined) throw refused;
    },
  };
}

/** Model time stands still while the listeners write, and the slots resume in the order they emitted (see Clock.io). */
function holdingClock(sink: ResultSink, clock: Clock): ResultSink {
  return {
    emit: (event) => hostIo(clock, async () => sink.emit(event)),
  };
}
