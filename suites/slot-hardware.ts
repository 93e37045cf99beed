import type { Bk7231Port } from '../rig/bk7231/port.ts';
import type { Logger } from '../rig/core/log.ts';
import type { DeviceTemplate } from '../rig/dut/device-template.ts';
import type { ObkHttpClient } from '../rig/dut/obk-http-client.ts';
import type { RomFlashSession } from '../rig/dut/provision-offline.ts';
import type { SlotSpec } from '../rig/jig/jig-config.ts';
import type { SlotIo } from '../rig/jig/slot-io.ts';
import type { ReferenceMeter } from '../rig/meter/reference-meter.ts';
import type { CalibrationHandOff } from './calibration-hand-off.ts';
import type { LightSample } from './light-samples.ts';
import type { SupplyWatch } from './metrology/sample-windows.ts';
import type { StepContext } from './runner/step.ts';
import type { StockLibrary } from './stock-library.ts';

/** What the suites get from one slot of an opened station. */
export interface SlotHardware {
  spec: SlotSpec;
  io: SlotIo;
  meter: ReferenceMeter;
  /**
   * Opens the slot's USB-UART (closed again after flashing, before mains comes on). `signal`: the
   * step's, which ends a wait for an unplugged adapter to come back.
   */
  openUart(o?: { signal?: AbortSignal }): Promise<Bk7231Port & { close(): Promise<void> }>;
  /** The image a flash suite writes; absent when the run has none (a plan that does not flash). */
  image?: { bytes: Uint8Array; offset: number; name: string };
  baudRate: number;
  /** The run's output directory (where a flash suite's stock backup goes). */
  outDir?: string;
  /** The station's content-addressed stock dumps (suites/stock-library.ts): a unit whose stock content is stored already is not read again. */
  stockLibrary?: StockLibrary;
  /** Nominal mains voltage of the station (the nominal of the mains-voltage limits). */
  mainsVolts: number;
  /** The mains supply this slot shares with the jig's other slots (their switches move its voltage). */
  supply?: SupplyWatch;
  log: Logger;
  /**
   * Work done in the flash suite's ROM session after the image is written and before the reboot
   * (offline provisioning registers here); the flash step records the ROM's MAC in `mac`.
   */
  romSession?: { afterWrite: Array<(session: RomFlashSession, ctx: StepContext) => Promise<Record<string, unknown> | void>>; mac?: string };
  /** The plug over HTTP once it runs OpenBeken (found by the jig's plug section); mac: the ROM's. */
  plug?: { connect(mac: string | undefined, signal: AbortSignal, o?: { timeoutMs?: number }): Promise<ObkHttpClient> };
  /**
   * The light sensor over the plug's LED during its last power-on boot, for a suite that judges the
   * boot's LED without booting the plug again (the LED suite's not-connected blink): that suite sets
   * `sampleMs` (and `connectedMs`) when it is built, the step that switches mains on and waits for the
   * boot (identity) fills in `boot`: the samples from mains on until the plug answered, and
   * `connected`, the next `connectedMs` sampled in the background while the following steps run.
   */
  bootLight?: {
    sampleMs: number;
    connectedMs?: number;
    boot?: { mainsOnT: number; onlineT: number; sampleMs: number; samples: readonly LightSample[]; connected?: Promise<readonly LightSample[]> };
  };
  /** The calibration point's as-found windows, from the metering suite to the calibration (suites/calibration-hand-off.ts). */
  calibrationHandOff?: CalibrationHandOff;
  /** What provisioning applies: the plan's device template and the station's credentials. */
  provisioning?: { template?: DeviceTemplate; wifi?: { ssid: string; pass: string }; webPassword?: string };
}

/** Wait until a condition holds or the budget runs out (or the signal aborts); returns the final value. */
export async function waitFor<T>(
  clock: { now(): number; sleep(ms: number, signal?: AbortSignal): Promise<void> },
  ms: number,
  read: () => T,
  ok: (v: T) => boolean,
  signal?: AbortSignal,
): Promise<T> {
  const end = clock.now() + ms;
  let v = read();
  while (!ok(v) && clock.now() < end) {
    await clock.sleep(20, signal);
    v = read();
  }
  return v;
}
