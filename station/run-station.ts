import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import type { Clock } from '../rig/core/clock.ts';
import type { Logger } from '../rig/core/log.ts';
import type { EndpointRegistry } from '../rig/endpoints/registry.ts';
import type { JigSpec } from '../rig/jig/jig-config.ts';
import { installProcessGuard } from '../rig/jig/process-guard.ts';
import { openLink } from '../rig/serial/open-link.ts';
import { TapListener } from '../reports/tap-listener.ts';
import { UnitRecordWriter } from '../reports/unit-record.ts';
import { teeSink, type ResultSink, type RunInfo } from '../suites/model/events.ts';
import type { SlotResult } from '../suites/model/step-result.ts';
import type { LoadedPlan } from '../suites/plan/load-plan.ts';
import { slotProgram } from '../suites/registry.ts';
import { runSlot } from '../suites/runner/run-slot.ts';
import { openStation } from './open-station.ts';
import type { DeviceTemplate } from '../rig/dut/device-template.ts';
import { ObkHttpClient } from '../rig/dut/obk-http-client.ts';
import { locatePlug, type HttpAddressResolver } from '../rig/dut/plug-locator.ts';
import type { PlugLocationSpec } from '../rig/jig/jig-config.ts';

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
  /** Device template and credentials for a plan that provisions (passwords also listed in secrets, for redaction). */
  provisioning?: { template?: DeviceTemplate; wifi?: { ssid: string; pass: string }; webPassword?: string; secrets: string[] };
  /** Resolves `sim:` plug addresses (the composition root's virtual jig); undefined = not reachable yet. */
  resolveHttp?: HttpAddressResolver;
  /** The plug address of a slot whose jig entry has no plug section (the virtual jig's). */
  defaultPlug?: (slotId: number) => PlugLocationSpec | undefined;
}

export interface StationSlotResult extends SlotResult {
  tap: string;
  record: string;
}

/**
 * Run the plan on every slot in parallel. A slot that fails (a step error, an adapter unplugged
 * mid-run) ends in its safe state and does not stop the others. The listeners write `slot-N.tap`
 * (TAP 14) and `slot-N.json` (unit record, rewritten after every finished step) into outDir.
 */
export async function runStation(o: RunStationOptions): Promise<StationSlotResult[]> {
  await mkdir(o.outDir, { recursive: true });
  const tap = new TapListener(o.outDir);
  const records = new UnitRecordWriter(o.outDir);
  const sink = holdingClock(teeSink(records, tap, ...(o.sinks ?? [])), o.clock);
  const run: RunInfo = {
    runId: randomUUID(),
    plan: { name: o.plan.plan.name, sha256: o.plan.sha256, source: o.plan.source },
    jig: { name: o.jig.name, source: o.jigPath },
    ...(o.image ? { image: { name: o.image.name, ...(o.image.sha256 ? { sha256: o.image.sha256 } : {}) } } : {}),
    startedAt: new Date().toISOString(),
  };
  await sink.emit({ type: 'run-started', run });
  const station = await openStation(o.jig, { clock: o.clock, log: o.log, endpoints: o.endpoints, ...(o.slots ? { slots: o.slots } : {}) });
  const uninstall = installProcessGuard(() => [...station.slots.values()].map((s) => s.io.interlock), { clock: o.clock, log: o.log });
  const results: StationSlotResult[] = [];
  try {
    // Suites that talk to the plug over HTTP (and compare with the plan's device template).
    const provisions = o.plan.plan.suites.some((e) => HTTP_SUITES.has(e.suite));
    // Every slot's program is built before any slot starts: a plan that does not fit the jig fails here.
    const programs = [...station.slots.entries()].map(([id, s]) => {
      const log = o.log.child({ slot: id });
      const spec = o.jig.slots.find((x) => x.id === id)!;
      const steps = slotProgram(o.plan.plan, {
        spec,
        io: s.io,
        meter: s.meter,
        openUart: () => openLink(s.uartPath, { baudRate: 115200, clock: o.clock, log, endpoints: o.endpoints }),
        ...(o.image ? { image: o.image } : {}),
        baudRate: o.baudRate,
        outDir: o.outDir,
        mainsVolts: o.jig.mains.volts,
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
      return { id, log, steps };
    });
    await Promise.all(
      programs.map(async ({ id, log, steps }) => {
        const result = await runSlot(steps, {
          slot: id,
          clock: o.clock,
          log,
          sink,
          timeoutMs: o.plan.plan.defaults.stepTimeoutMs,
          onMarginal: o.plan.plan.defaults.onMarginal,
          ...(o.signal ? { signal: o.signal } : {}),
        });
        results.push({ ...result, tap: tap.paths.get(id) ?? '', record: records.paths.get(id) ?? '' });
      }),
    );
  } finally {
    await station.close();
    uninstall();
    await tap.close();
  }
  results.sort((a, b) => a.slot - b.slot);
  await sink.emit({ type: 'run-finished', run, slots: results, finishedAt: new Date().toISOString() });
  return results;
}

const HTTP_SUITES: ReadonlySet<string> = new Set(['provision', 'identity', 'relay', 'button', 'led', 'metering', 'calibrate']);

/** Model time stands still while the listeners write (see Clock.hold). */
function holdingClock(sink: ResultSink, clock: Clock): ResultSink {
  return {
    async emit(event) {
      const release = clock.hold?.();
      try {
        await sink.emit(event);
      } finally {
        release?.();
      }
    },
  };
}
