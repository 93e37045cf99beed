/**
 * One virtual DUT for a benchmark case: a VirtualBk7231 on the virtual serial bus, RTS wired to
 * CEN, opened through the real SerialPortStream (openLink). The chip starts powered and booted
 * into the application, so every link needs a real reset.
 */
import type { Clock } from '../../rig/core/clock.ts';
import { ProtocolError } from '../../rig/core/errors.ts';
import type { Bk7231Port } from '../../rig/bk7231/port.ts';
import { openLink } from '../../rig/serial/open-link.ts';
import type { SerialLink } from '../../rig/serial/serial-link.ts';
import { VirtualBk7231, type VirtualBk7231Options } from '../../sim/bk7231/virtual-bk7231.ts';
import { VirtualSerialBus } from '../../sim/serial/virtual-binding.ts';
import type { VirtualUartWire } from '../../sim/serial/virtual-uart-wire.ts';
import { busEndpoints } from '../../sim/serial/bus-endpoints.ts';

export const BENCH_PORT = 'sim:bench-dut';

export interface BenchRig {
  clock: Clock;
  chip: VirtualBk7231;
  wire: VirtualUartWire;
  link: SerialLink;
  /** The link with per-command timing recorded (what the flashers are given). */
  port: ProfiledPort;
  close(): Promise<void>;
}

/** `initialImages`: what the chip holds before the benchmark writes (e.g. another image, or 0xFF). */
export async function openBenchRig(clock: Clock, chipOptions: Pick<VirtualBk7231Options, 'initialImages'> = {}): Promise<BenchRig> {
  const bus = new VirtualSerialBus(clock);
  const chip = new VirtualBk7231(chipOptions);
  const wire = bus.attach(BENCH_PORT, chip, { modemLines: true });
  chip.powerOn();
  const link = await openLink(BENCH_PORT, { baudRate: 115200, clock, endpoints: busEndpoints(bus) });
  // Opening a tty asserts DTR and RTS, which holds CEN low: release them so the chip boots.
  await link.setModemLines({ dtr: false, rts: false });
  const rig: BenchRig = {
    clock,
    chip,
    wire,
    link,
    port: new ProfiledPort(link),
    close: async () => {
      await link.close();
      bus.detach(BENCH_PORT);
    },
  };
  await waitForApp(rig);
  return rig;
}

/** Let the ROM's link window pass so the chip runs its application (no link without a reset). */
export async function waitForApp(rig: BenchRig, extraMs = 20): Promise<void> {
  await rig.clock.sleep(rig.chip.timing.resetToRomMs + rig.chip.timing.linkWindowMs + extraMs);
  if (rig.chip.state !== 'app') {
    throw new ProtocolError(`virtual chip did not boot into the application (state ${rig.chip.state})`, { step: 'bench-setup' });
  }
}

/** Host-side gaps: how long the host took from a reply's last byte to its next request. */
export interface HostGapStats {
  commands: number;
  gaps: number[];
}

/**
 * Bk7231Port over a SerialLink that timestamps each write and the latest received chunk, so the
 * bench can split (measured - floor) into host latency and everything else.
 */
export class ProfiledPort implements Bk7231Port {
  readonly #link: SerialLink;
  #lastRxAt: number | null = null;
  #recording = false;
  #gaps: number[] = [];
  #writes = 0;

  constructor(link: SerialLink) {
    this.#link = link;
    link.onData(() => {
      this.#lastRxAt = link.clock.now();
    });
  }

  get clock(): Clock {
    return this.#link.clock;
  }

  /** Start a fresh recording window. */
  record(): void {
    this.#recording = true;
    this.#gaps = [];
    this.#writes = 0;
    this.#lastRxAt = null;
  }

  /** Stop recording; returns the gaps (ms) between a reply arriving and the next request. */
  stop(): HostGapStats {
    this.#recording = false;
    return { commands: this.#writes, gaps: this.#gaps };
  }

  async write(bytes: Uint8Array): Promise<void> {
    if (this.#recording) {
      this.#writes++;
      if (this.#lastRxAt !== null) this.#gaps.push(this.#link.clock.now() - this.#lastRxAt);
      this.#lastRxAt = null;
    }
    await this.#link.write(bytes);
  }

  read(n: number, timeoutMs: number): Promise<Uint8Array> {
    return this.#link.read(n, timeoutMs);
  }

  available(): number {
    return this.#link.available();
  }

  discardInput(): Uint8Array {
    return this.#link.discardInput();
  }

  setBaudRate(baud: number): Promise<void> {
    return this.#link.setBaudRate(baud);
  }

  setModemLines(lines: { dtr: boolean; rts: boolean }): Promise<void> {
    return this.#link.setModemLines(lines);
  }
}
