import type { Clock } from '../../rig/core/clock.ts';
import type { VirtualBk7231 } from '../bk7231/virtual-bk7231.ts';
import type { BootImage } from '../bk7231/boot-image.ts';
import type { MainsBranch } from '../mains/mains-network.ts';
import type { VirtualUartDevice } from '../serial/uart-device.ts';
import { Bl0937Chip, type Bl0937ChipOptions } from './bl0937/bl0937-chip.ts';
import { bl0937InputFromBranch, syncOnMainsChange } from './bl0937/branch-input.ts';
import type { Bl0937Defects } from './bl0937/defects.ts';
import { createObkBl0937Driver } from './bl0937/obk-bl0937-driver.ts';
import type { ObkEnergyDriver, ObkEnergyDriverOptions, ObkGpio, ObkStorage, ObkWifiEnvironment } from './obk/contracts.ts';
import type { ObkFirmware } from './obk/firmware.ts';
import { ObkHttpFaults, type ObkHttpFaultSpec } from './obk/http-faults.ts';
import { obkFirmwareFactory } from './obk-firmware-factory.ts';
import { FlashObkStorage } from './obk-storage.ts';
import { CB2S_PLUG_PINS, type PlugHardware } from './plug-hardware.ts';
import { TuyaStockFirmware } from './tuya-stock-firmware.ts';

/** Per-unit hardware and firmware faults (issue 7), injectable from the jig file or a test. */
export interface ObkPlugDefects {
  relay?: 'stuck-open' | 'stuck-closed';
  /** The button's contact never closes. */
  buttonOpen?: boolean;
  /** The Wi-Fi LED never lights. */
  ledDead?: boolean;
  /** BL0937 faults: CF/CF1 open, SEL stuck, divider/shunt off (passed to the chip model). */
  bl0937?: Bl0937Defects;
  /** The firmware crashes ~2 s after every boot (before "boot OK"), until it comes up in safe mode. */
  bootLoop?: boolean;
  /** The HTTP server accepts connections and never answers. */
  httpStalls?: boolean;
  /** The plug never gets onto the station network (handled by the network it is attached to). */
  wifiNeverJoins?: boolean;
}

/** Everything the OpenBeken firmware core gets from the plug it runs on. */
export interface ObkFirmwareEnv {
  clock: Clock;
  /** STA MAC (from the RF sector). */
  mac: Uint8Array;
  /** The booted image's identity (version, variant). */
  image: Extract<BootImage, { kind: 'openbeken' }>;
  storage: ObkStorage;
  gpio: ObkGpio;
  wifi: ObkWifiEnvironment;
  /** The BL0937 driver, when the image was built with it (not a _tuyaMCU/_sensors/... variant). */
  createEnergyDriver?: (options: ObkEnergyDriverOptions) => ObkEnergyDriver;
  /** Where the HTTP server listens from this machine in AP or STA mode (undefined: no server). */
  httpAddress?: (mode: 'ap' | 'sta') => { host: string; port: number };
  /** The HTTP server's first listener picked a free port (the network then uses it for every plug). */
  httpListening?: (port: number) => void;
  /** Defect: the HTTP server stalls. */
  httpStalled: () => boolean;
  /** Transport faults of the HTTP server (one instance for the plug's life). */
  httpFaults?: ObkHttpFaults;
  /** Reset the chip (restart command, watchdog). */
  reboot(): void;
}

/** A running OpenBeken firmware as the plug controls it. */
export interface RunningObkFirmware {
  readonly safeMode: boolean;
  /** The firmware core itself (commands, log), when it is sim/plug/obk's ObkFirmware. */
  readonly firmware?: ObkFirmware;
  /** Power loss or reset: stop every timer and close the server; nothing is saved. */
  stop(): Promise<void> | void;
}

export type ObkFirmwareFactory = (env: ObkFirmwareEnv) => RunningObkFirmware;

/** The plug's network side: Wi-Fi plus where its HTTP server can be reached. */
export interface PlugNetwork extends ObkWifiEnvironment {
  attach(mac: Uint8Array, plug: { hostname(): string }, defects?: { neverJoins?: boolean }): void;
  staAddress(mac: Uint8Array): string;
  apAddress(mac: Uint8Array): string;
  readonly httpPort: number;
  adoptHttpPort(port: number): void;
}

export interface ObkPlugOptions {
  chip: VirtualBk7231;
  clock: Clock;
  /** The slot's mains branch: the relay switches the plug output, the BL0937 measures it. */
  branch?: MainsBranch;
  network?: PlugNetwork;
  /** Starts the virtual OpenBeken firmware; default: sim/plug/obk's ObkFirmware (obk-firmware-factory.ts). */
  firmware?: ObkFirmwareFactory;
  /** Serve the firmware's HTTP API on loopback (default true when a network is given). */
  http?: boolean;
  defects?: ObkPlugDefects;
  /** Transport faults of the plug's HTTP server (jig file `faults.plug.http`, or a test). */
  httpFaults?: ObkHttpFaultSpec;
  /** BL0937 model options (seed, tolerance, ...); the input comes from the branch. */
  bl0937?: Partial<Omit<Bl0937ChipOptions, 'clock' | 'input' | 'defects'>>;
  /** Per-unit seed (BL0937 front end). */
  seed?: number;
}

/** Time a boot-looping firmware runs before it crashes, ms (shorter than the 5 s boot-OK time). */
const BOOT_LOOP_CRASH_MS = 2000;

/**
 * A CB2S smart plug's PCB around the virtual BK7231N (openbeken-bl0937.md §1.1): BL0937 CF1 on P6,
 * CF on P7, SEL on P24; relay on P26 (active high); button on P10 to GND (P10 is also RX1: the jig's
 * idle UART holds it high like the pull-up does); Wi-Fi LED on P8, lit while P8 is LOW. The chip is
 * powered by the jig's 3V3 or by the plug's own non-isolated supply from mains; the relay coil and
 * the BL0937 hang on that supply's rail, so without mains the relay cannot close (ASSUMPTION: CB2S
 * plugs feed a 5–12 V coil from the buck converter, the 3V3 pad does not back-feed it).
 *
 * What runs is what the chip booted from its flash: OpenBeken (through the firmware factory, with
 * storage over the chip's SPI flash and GPIOs over the wires above, so a template that maps roles
 * to other pins drives nothing), the stock Tuya app, or nothing.
 */
export class ObkPlug implements PlugHardware {
  readonly chip: VirtualBk7231;
  readonly clock: Clock;
  readonly storage: FlashObkStorage;
  readonly bl0937: Bl0937Chip;
  readonly gpio: ObkGpio;
  readonly defects: Readonly<ObkPlugDefects>;
  readonly #branch: MainsBranch | undefined;
  readonly #network: PlugNetwork | undefined;
  readonly #firmwareFactory: ObkFirmwareFactory;
  readonly #http: boolean;
  readonly #httpFaults: ObkHttpFaults | undefined;
  #supply3v3 = false;
  #mains = false;
  #buttonDown = false;
  /** Driven output levels by pin; a pin not in the map is an input (pull-up). */
  readonly #out = new Map<number, boolean>();
  #relay = false;
  #led = false;
  #running: { kind: 'openbeken'; fw: RunningObkFirmware } | { kind: 'tuya'; fw: TuyaStockFirmware } | undefined;
  #stopping: Promise<void> = Promise.resolve();
  #crashTimer: (() => void) | undefined;
  /** The port this plug's HTTP server first bound (0: not yet). */
  #httpPort = 0;
  readonly #relayListeners = new Set<(closed: boolean) => void>();
  readonly #ledListeners = new Set<(lit: boolean) => void>();
  readonly #unsubscribe: () => void;
  readonly #unsubscribeMains: () => void;

  constructor(o: ObkPlugOptions) {
    this.chip = o.chip;
    this.clock = o.clock;
    this.defects = { ...o.defects };
    this.#branch = o.branch;
    this.#network = o.network;
    this.#firmwareFactory = o.firmware ?? obkFirmwareFactory();
    this.#http = o.http ?? o.network !== undefined;
    this.#httpFaults = o.httpFaults ? new ObkHttpFaults({ seed: o.seed ?? 1, ...o.httpFaults }) : undefined;
    this.storage = new FlashObkStorage(this.chip.flash);
    const branch = o.branch;
    this.bl0937 = new Bl0937Chip({
      seed: o.seed ?? 1,
      ...o.bl0937,
      clock: o.clock,
      powered: false,
      defects: this.defects.bl0937 ?? {},
      // The divider sits across the input terminals; the shunt carries the load current behind the
      // relay; both as they were at each moment the chip integrates (a window that spans a load
      // switch counts both loads, each for its share of the window).
      input: branch ? bl0937InputFromBranch(branch) : () => ({ volts: 0, amps: 0, watts: 0 }),
    });
    // Any change on the network (this slot's relays and loads, another slot's load sagging the
    // node) is a boundary of the stretches the chip integrates, so each counts from its moment.
    this.#unsubscribeMains = branch ? syncOnMainsChange(this.bl0937, branch.network) : () => {};
    this.gpio = this.#makeGpio();
    this.#network?.attach(this.chip.mac, { hostname: () => this.#hostname() }, { neverJoins: this.defects.wifiNeverJoins });
    this.#unsubscribe = this.chip.onStateChange(() => this.#follow());
  }

  // ---- PlugHardware ----

  setSupply3v3(on: boolean): void {
    this.#supply3v3 = on;
    this.#updatePower();
  }

  mainsPresent(on: boolean): void {
    this.#mains = on;
    this.#updatePower();
  }

  setCen(high: boolean): void {
    this.chip.setCen(high);
  }

  pressButton(down: boolean): void {
    this.#buttonDown = down && !this.defects.buttonOpen;
  }

  relayClosed(): boolean {
    return this.#relay;
  }

  ledLit(): boolean {
    return this.#led;
  }

  uart(): VirtualUartDevice {
    return this.chip;
  }

  onRelayChange(listener: (closed: boolean) => void): () => void {
    this.#relayListeners.add(listener);
    return () => this.#relayListeners.delete(listener);
  }

  onLedChange(listener: (lit: boolean) => void): () => void {
    this.#ledListeners.add(listener);
    return () => this.#ledListeners.delete(listener);
  }

  // ---- inspection ----

  powered(): boolean {
    return this.#supply3v3 || this.#mains;
  }

  /** What runs on the chip now. */
  running(): 'openbeken' | 'openbeken-safe-mode' | 'tuya' | 'nothing' {
    if (!this.#running) return 'nothing';
    if (this.#running.kind === 'tuya') return 'tuya';
    return this.#running.fw.safeMode ? 'openbeken-safe-mode' : 'openbeken';
  }

  /** The running OpenBeken firmware core (undefined when something else or nothing runs). */
  obkFirmware(): ObkFirmware | undefined {
    return this.#running?.kind === 'openbeken' ? this.#running.fw.firmware : undefined;
  }

  /** Level of a GPIO as driven by the firmware (undefined: input). */
  pinOutput(pin: number): boolean | undefined {
    return this.#out.get(pin);
  }

  /** Power down and wait until the firmware has stopped (sockets closed, timers cancelled). */
  async dispose(): Promise<void> {
    this.#supply3v3 = false;
    this.#mains = false;
    this.#updatePower();
    this.#unsubscribe();
    this.#unsubscribeMains();
    await this.#stopping;
  }

  // ---- internals ----

  #hostname(): string {
    return this.storage.loadConfig()?.shortDeviceName || '*';
  }

  #updatePower(): void {
    const on = this.powered();
    this.bl0937.setPowered(this.#mains);
    if (on) this.chip.powerOn();
    else this.chip.powerOff();
    this.#applyOutputs();
  }

  /** Start or stop what the chip runs after each state change. */
  #follow(): void {
    this.#stopFirmware();
    const fw = this.chip.firmware;
    if (this.chip.state !== 'app' || !fw || !this.powered()) return;
    if (fw.kind === 'tuya') {
      const tuya = new TuyaStockFirmware(this.clock, this.gpio);
      this.#running = { kind: 'tuya', fw: tuya };
      tuya.start();
    } else if (fw.kind === 'openbeken') {
      const started = this.#firmwareFactory(this.#env(fw));
      this.#running = { kind: 'openbeken', fw: started };
      if (this.defects.bootLoop && !started.safeMode) {
        this.#crashTimer = this.clock.at(this.clock.now() + BOOT_LOOP_CRASH_MS, () => {
          this.#crashTimer = undefined;
          this.chip.restartFromApp();
        });
      }
    }
  }

  #stopFirmware(): void {
    this.#crashTimer?.();
    this.#crashTimer = undefined;
    const r = this.#running;
    this.#running = undefined;
    if (r) {
      const stopped = r.fw.stop();
      this.#stopping = Promise.all([this.#stopping, stopped]).then(() => undefined);
    }
    this.#network?.leave(this.chip.mac);
    this.gpio.releaseAll();
  }

  #env(image: Extract<BootImage, { kind: 'openbeken' }>): ObkFirmwareEnv {
    const net = this.#network;
    const mac = this.chip.mac;
    return {
      clock: this.clock,
      mac: Uint8Array.from(mac),
      image,
      storage: this.storage,
      gpio: this.gpio,
      wifi: net ?? NO_NETWORK,
      ...(image.bl0937 ? { createEnergyDriver: (o: ObkEnergyDriverOptions) => createObkBl0937Driver(o) } : {}),
      ...(net && this.#http
        ? {
            // A real plug serves :80 on every boot. Plugs that boot before the network has a port each
            // pick a free one; each keeps its own afterwards, or a restart would move it under its client.
            httpAddress: (mode: 'ap' | 'sta') => ({ host: mode === 'ap' ? net.apAddress(mac) : net.staAddress(mac), port: this.#httpPort || net.httpPort }),
            httpListening: (port: number) => {
              if (this.#httpPort === 0) this.#httpPort = port;
              net.adoptHttpPort(port);
            },
          }
        : {}),
      httpStalled: () => this.defects.httpStalls === true,
      ...(this.#httpFaults ? { httpFaults: this.#httpFaults } : {}),
      reboot: () => this.chip.restartFromApp(),
    };
  }

  #makeGpio(): ObkGpio {
    const P = CB2S_PLUG_PINS;
    return {
      write: (pin, high) => {
        if (!this.#chipRuns()) return;
        this.#out.set(pin, high);
        if (pin === P.sel) this.bl0937.setSel(high);
        this.#applyOutputs();
      },
      read: (pin) => {
        if (this.#out.has(pin)) return this.#out.get(pin)!;
        if (pin === P.button) return !this.#buttonDown; // pull-up (and an idle RX1) vs the button to GND
        return true;
      },
      takeFallingEdges: (pin) => {
        if (pin === P.cf) return this.bl0937.takeFallingEdges('cf');
        if (pin === P.cf1) return this.bl0937.takeFallingEdges('cf1');
        return 0;
      },
      releaseAll: () => {
        this.#out.clear();
        this.bl0937.setSel(false); // SEL floats; the BL0937's pull-down makes it current mode
        this.#applyOutputs();
      },
    };
  }

  #chipRuns(): boolean {
    return this.powered() && this.chip.state === 'app';
  }

  /** Relay coil and LED from the driven pins, the supply and the defects. */
  #applyOutputs(): void {
    const P = CB2S_PLUG_PINS;
    const runs = this.#chipRuns();
    const coil = runs && this.#mains && this.#out.get(P.relay) === true;
    const relay = this.defects.relay === 'stuck-closed' ? true : this.defects.relay === 'stuck-open' ? false : coil;
    const led = runs && this.#out.get(P.wifiLedN) === false && !this.defects.ledDead;
    if (relay !== this.#relay) {
      this.#relay = relay;
      this.#branch?.setPlugRelay(relay);
      for (const fn of this.#relayListeners) fn(relay);
    }
    if (led !== this.#led) {
      this.#led = led;
      for (const fn of this.#ledListeners) fn(led);
    }
  }
}

/** A plug without a station network around it: every join fails as "no network". */
const NO_NETWORK: ObkWifiEnvironment = {
  join: async () => {
    throw new Error('no network in range');
  },
  openAccessPoint: () => {},
  leave: () => {},
};
