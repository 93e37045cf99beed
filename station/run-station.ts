import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../rig/core/clock.ts';
import type { Logger } from '../rig/core/log.ts';
import type { EndpointRegistry } from '../rig/endpoints/registry.ts';
import type { JigSpec } from '../rig/jig/jig-config.ts';
import { installProcessGuard } from '../rig/jig/process-guard.ts';
import { openLink } from '../rig/serial/open-link.ts';
import { openTapReport } from '../reports/tap-writer.ts';
import { factorySmokeSteps, type SmokeRecord } from '../suites/factory-smoke.ts';
import { runSteps, type SlotRun } from '../suites/step-runner.ts';
import { openStation } from './open-station.ts';

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
  image: StationImage;
  baudRate: number;
  outDir: string;
  clock: Clock;
  log: Logger;
  /** Resolves every port and address of the jig (the composition root's choice). */
  endpoints: EndpointRegistry;
  slots?: number[];
}

export interface SlotResult extends SlotRun {
  record: SmokeRecord;
  tap: string;
}

/**
 * Run the factory smoke suite on every slot in parallel. A slot that fails (a step error, an
 * adapter unplugged mid-run) ends in its safe state and does not stop the others. Writes
 * `slot-N.tap` and `slot-N.json` (unit record) per slot into outDir.
 */
export async function runStation(o: RunStationOptions): Promise<SlotResult[]> {
  await mkdir(o.outDir, { recursive: true });
  const station = await openStation(o.jig, { clock: o.clock, log: o.log, endpoints: o.endpoints, ...(o.slots ? { slots: o.slots } : {}) });
  const uninstall = installProcessGuard(() => [...station.slots.values()].map((s) => s.io.interlock), { clock: o.clock, log: o.log });
  const results: SlotResult[] = [];
  try {
    await Promise.all(
      [...station.slots.entries()].map(async ([id, s]) => {
        const tapPath = join(o.outDir, `slot-${id}.tap`);
        const report = openTapReport(tapPath, { title: `plugrig run, jig ${o.jig.name}, slot ${id}`, meta: { image: o.image.name, sha256: o.image.sha256, jig: o.jigPath } });
        const record: SmokeRecord = {};
        const log = o.log.child({ slot: id });
        const spec = o.jig.slots.find((x) => x.id === id)!;
        try {
          const steps = factorySmokeSteps(
            {
              spec,
              io: s.io,
              meter: s.meter,
              openUart: () => openLink(s.uartPath, { baudRate: 115200, clock: o.clock, log, endpoints: o.endpoints }),
              image: o.image,
              baudRate: o.baudRate,
              mainsVolts: o.jig.mains.volts,
              log,
            },
            record,
          );
          const run = await runSteps(steps, { slot: id, clock: o.clock, log, report });
          results.push({ ...run, record, tap: tapPath });
        } finally {
          await report.close();
        }
      }),
    );
  } finally {
    await station.close();
    uninstall();
  }
  results.sort((a, b) => a.slot - b.slot);
  for (const r of results) {
    const steps = r.steps.map(({ error, ...x }) => ({ ...x, ...(error ? { error: error instanceof Error ? error.message : String(error) } : {}) }));
    const unit = { slot: r.slot, passed: r.passed, mac: r.record.mac, image: o.image.name, sha256: o.image.sha256, steps, measurements: r.measurements };
    await writeFile(join(o.outDir, `slot-${r.slot}.json`), JSON.stringify(unit, null, 2));
  }
  return results;
}
