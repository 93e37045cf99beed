import type { Clock } from '../../rig/core/clock.ts';
import { ConfigError } from '../../rig/core/errors.ts';
import type { JigSpec, SlotSpec } from '../../rig/jig/jig-config.ts';
import { VirtualBk7231, type VirtualBk7231Options } from '../bk7231/virtual-bk7231.ts';
import { UNO_LAYOUT, MEGA2560_LAYOUT, type FirmataLayoutName } from '../firmata/board-layouts.ts';
import { VirtualFirmataBoard } from '../firmata/virtual-firmata-board.ts';
import { MainsNetwork, type MainsBranch, type MainsNetworkOptions, type PowerQuantities } from '../mains/mains-network.ts';
import { StationNetwork } from '../net/station-network.ts';
import { ObkPlug, type ObkFirmwareFactory, type PlugNetwork } from '../plug/obk-plug.ts';
import type { ObkHttpFaultSpec } from '../plug/obk/http-faults.ts';
import { parsePlugDefects } from '../plug/plug-defects.ts';
import { PinLevelPlug } from '../plug/pin-level-plug.ts';
import { VirtualPzem } from '../pzem/virtual-pzem.ts';
import { VirtualModbusBus } from '../pzem/virtual-modbus-bus.ts';
import { VirtualWt310e } from '../scpi/virtual-wt310e.ts';
import type { ModemLines, VirtualUartDevice } from '../serial/uart-device.ts';
import { FaultyUart } from '../serial/uart-faults.ts';
import type { AttachOptions } from '../serial/virtual-binding.ts';
import { PhysicalHistory, type PhysicalChange, type SlotPhysicalState } from './physical-state.ts';
import { SlotUartLink } from './slot-uart-link.ts';
import { WatchdogRelay } from './watchdog-relay.ts';
import { VirtualUsbBus } from './virtual-usb-bus.ts';
import { boardOutputs, pinWireOf, readSlotWiring, type PinWire, type SlotWiring } from './wiring.ts';
import { VirtualMeterMux } from './virtual-meter-mux.ts';
import { chipFaultOptions, slotLine, withPlugFaults } from './slot-faults.ts';
import { slotFaults, type FaultsSpec } from '../../rig/jig/fault-spec.ts';
import { VirtualUsbUarts } from '../usb/virtual-usb-uarts.ts';
import { mainsFeeds } from '../../rig/jig/mains-feeds.ts';
import { mulberry32 } from '../../rig/core/prng.ts';
import { syntheticOpenBekenApp } from '../bk7231/factory-content.ts';
import { buildConfigSector, OBK_CONFIG_ADDR } from '../plug/obk-config-sector.ts';
import { provisionedConfig, type SimTemplate } from '../plug/obk-template.ts';

/** LED-sensor readings (10-bit ADC) with the LED lit / dark, and the noise amplitude around them. */
export const LED_SENSOR_LIT = 900;
export const LED_SENSOR_DARK = 40;
export const LED_SENSOR_NOISE = 6;

const SIM = 'sim:';

export interface VirtualJigOptions {
  clock: Clock;
  /** Seeds per-slot chip content/MACs and sensor noise. Default 1. */
  seed?: number;
  /** Extra options for each slot's chip (flash images, link window, ...). */
  chipOptions?: (slotId: number) => Omit<VirtualBk7231Options, 'cenWiring'>;
  /** Firmata boards' reset-to-sketch time, ms. Default 0. */
  firmataBootMs?: number;
  /**
   * The station's Wi-Fi network the plugs join once provisioned. Default: a StationNetwork with
   * `wifi` (or SSID "plugrig-station" / password "plugrig-virtual"), leases kept in memory only.
   */
  network?: PlugNetwork;
  wifi?: { ssid: string; pass: string };
  /** The virtual OpenBeken firmware core that a booted OpenBeken image runs. */
  firmware?: ObkFirmwareFactory;
  /** Serve each OpenBeken plug's HTTP API on loopback (default true). */
  http?: boolean;
  /** Defects per slot by name (added to the jig file's `sim.defects`), e.g. for tests. */
  defects?: (slotId: number) => readonly string[];
  /** HTTP transport faults per slot's plug, e.g. for tests (a jig file's `faults.plug.http` wins). */
  httpFaults?: (slotId: number) => ObkHttpFaultSpec | undefined;
  /**
   * 'obk' (default): the flash-backed plug that runs what its flash holds. 'pin-level': the earlier
   * model whose app lights the LED and toggles the relay without any config; TRANSITIONAL, only for
   * the factory smoke run until it provisions the template offline, then to be deleted.
   */
  plugModel?: 'obk' | 'pin-level';
  /**
   * Start every slot's plug already flashed with a synthetic OpenBeken image and provisioned as the
   * offline fast path leaves it (template + the station's Wi-Fi; wifi null = none, so it opens its
   * AP): the unit a plan without a flash suite (verify) expects in the jig.
   */
  preflashed?: { template: SimTemplate; version?: string; wifi?: { ssid: string; pass: string } | null };
  /** Mains drift and source impedance (default: drifting, IEC 60725 impedance; STEADY_SUPPLY for an ideal source). */
  mains?: Pick<MainsNetworkOptions, 'drift' | 'sourceImpedance'>;
}

/** The station network a virtual jig gets when none is given. */
export const DEFAULT_VIRTUAL_WIFI = Object.freeze({ ssid: 'plugrig-station', pass: 'plugrig-virtual' });

/** Minimal bus surface attachTo needs (VirtualSerialBus satisfies it); detach: a USB-UART unplugged. */
export interface AttachableBus {
  attach(path: string, device: VirtualUartDevice, options?: AttachOptions): unknown;
  detach(path: string): void;
}

/** A slot whose jig entry binds its UART by USB path / serial number: on a virtual USB-UART adapter. */
export interface UsbUartSlot {
  slot: number;
  usbPath: string;
  serialNumber?: string;
  device: VirtualUartDevice;
}

/** The USB path a slot bound by serial number only gets (a port of a bus of its own). */
function spareUsbPath(slotId: number): string {
  return `8-1.${slotId}`;
}


/** The slot's digital outputs that switch something other than a load. */
type SlotOutput = 'cen' | 'power3v3' | 'uartIsolation' | 'mains' | 'button';

/**
 * One slot of the virtual jig: a CB2S plug (ObkPlug around a VirtualBk7231) wired to its I/O
 * board, the mains network and the slot's USB-UART exactly as the jig file says.
 *
 * Logical pin levels (true = active; `activeLow` inverts the electrical level):
 *  outputs - cen: CEN pulled low (reset asserted); power3v3: 3V3 switched on; uartIsolation: relay
 *            closed (USB-UART, 3V3 and CEN reach the module); mains: jig mains relay closed;
 *            loads: load relay closed; button: actuator pressed (P10 to GND). A pin the board does
 *            not drive (board not running, pin not an output) is inactive.
 *  inputs  - relaySense: plug relay closed; lid: lid closed; estop: E-stop pressed.
 * With reset method 'modem-lines' the adapter's RTS also pulls CEN low (bk7231tools wiring).
 */
export class VirtualSlot {
  readonly id: number;
  readonly spec: SlotSpec;
  /** How this slot is wired, as the simulator reads the jig file (not the host's helpers). */
  readonly wiring: SlotWiring;
  /** The unit in the slot (replaced by loadUnit: the handler took it out and seated the next one). */
  chip: VirtualBk7231;
  plug: ObkPlug | PinLevelPlug;
  readonly uart: SlotUartLink;
  readonly branch: MainsBranch;
  readonly board: VirtualFirmataBoard;
  readonly history = new PhysicalHistory();
  readonly #clock: Clock;
  readonly #rtsWired: boolean;
  #lines: ModemLines | undefined;
  #out: Record<SlotOutput, boolean> = { cen: false, power3v3: false, uartIsolation: false, mains: false, button: false };
  #lidClosed = true;
  #estopPressed = false;
  /** The board's charge-pump watchdog relay in series with this slot's contactor coil (none: wired straight). */
  readonly #watchdog: WatchdogRelay | undefined;
  /** What building a unit for this slot needs (loadUnit builds the next one alike). */
  readonly #unitOptions: VirtualJigOptions;
  readonly #seed: number;
  readonly #network: PlugNetwork;
  #unplugRelay: () => void = () => undefined;

  constructor(spec: SlotSpec, board: VirtualFirmataBoard, branch: MainsBranch, options: VirtualJigOptions, seed: number, network: PlugNetwork, watchdog?: WatchdogRelay) {
    this.id = spec.id;
    this.spec = spec;
    this.wiring = readSlotWiring(spec);
    this.board = board;
    this.branch = branch;
    this.#clock = options.clock;
    this.#rtsWired = spec.reset.method === 'modem-lines';
    this.#watchdog = watchdog;
    watchdog?.onChange(() => this.#apply());
    this.#unitOptions = options;
    this.#seed = seed;
    this.#network = network;
    ({ chip: this.chip, plug: this.plug } = this.#buildUnit(undefined));
    this.uart = new SlotUartLink(this.chip, options.clock, (lines) => {
      this.#lines = lines;
      this.#apply();
    });
    const w = this.wiring;
    for (const load of w.loads) branch.addLoad(load.name, { watts: load.watts, pf: load.pf });

    const noise = mulberry32(seed * 7919 + spec.id);
    board.setAnalog(w.ledAnalog, () =>
      (this.plug.ledLit() ? LED_SENSOR_LIT : LED_SENSOR_DARK) + Math.round((noise() * 2 - 1) * LED_SENSOR_NOISE),
    );
    this.#senseRelay();
    this.#drive(w.lid, this.#lidClosed);
    this.#drive(w.estop, this.#estopPressed);
    this.#record();
  }

  /**
   * The chip and plug of a unit: the slot's own (unit undefined: seeded by slot, as every jig built
   * them before units were fed) or the fed unit `unit` of a queue (its own seed and MAC, whichever
   * slot it lands in, so the same unit run alone on another jig is the same part).
   */
  #buildUnit(unit: number | undefined): { chip: VirtualBk7231; plug: ObkPlug | PinLevelPlug } {
    const { spec } = this;
    const options = this.#unitOptions;
    const seed = this.#seed;
    const mac =
      unit === undefined
        ? Uint8Array.from([0xc8, 0x47, 0x8c, (seed >>> 8) & 0xff, seed & 0xff, spec.id & 0xff])
        : Uint8Array.from([0xc8, 0x47, 0x8c, 0x80 | (seed & 0x7f), (unit >>> 8) & 0xff, unit & 0xff]);
    const defects = parsePlugDefects([...(spec.sim?.defects ?? []), ...(options.defects?.(spec.id) ?? [])], `slot ${spec.id}`);
    const unitSeed = unit === undefined ? seed * 1000 + spec.id : (seed * 1_000_003 + 7919 * (unit + 1)) >>> 0;
    const chip = new VirtualBk7231({
      seed: unitSeed,
      mac,
      ...(defects.appDoesNotBoot ? { appDoesNotBoot: true } : {}),
      ...options.chipOptions?.(spec.id),
      cenWiring: 'none',
    });
    if (options.preflashed) {
      const p = options.preflashed;
      chip.flash.load(0x11000, syntheticOpenBekenApp(p.version ?? '1.18.42'));
      const wifi = p.wifi === null ? undefined : (p.wifi ?? options.wifi ?? DEFAULT_VIRTUAL_WIFI);
      chip.flash.load(OBK_CONFIG_ADDR, buildConfigSector(provisionedConfig(chip.mac, p.template, wifi)));
    }
    const plug =
      options.plugModel === 'pin-level'
        ? new PinLevelPlug({ chip, clock: options.clock })
        : new ObkPlug({
            chip,
            clock: options.clock,
            branch: this.branch,
            network: this.#network,
            seed: unitSeed,
            defects: defects.plug,
            http: options.http ?? true,
            ...(options.httpFaults?.(spec.id) ? { httpFaults: options.httpFaults(spec.id)! } : {}),
            ...(options.firmware ? { firmware: options.firmware } : {}),
          });
    return { chip, plug };
  }

  /** The plug switches its output on the branch itself; the jig senses the contact. */
  #senseRelay(): void {
    const pinLevel = this.plug instanceof PinLevelPlug;
    const sense = this.wiring.relaySense;
    this.#unplugRelay = this.plug.onRelayChange((closed) => {
      if (pinLevel) this.branch.setPlugRelay(closed);
      this.#drive(sense, closed);
      this.#record();
    });
    this.#drive(sense, this.plug.relayClosed());
  }

  /**
   * The handler takes the unit out and seats fed unit `unit` (the station's UnitFeed, in its safe
   * state: mains, loads, UART and 3V3 off). The old plug is powered down first (its firmware stopped,
   * HTTP closed); the new one starts unpowered, wired like the old one.
   */
  async loadUnit(unit: number): Promise<void> {
    this.#unplugRelay();
    await this.plug.dispose();
    ({ chip: this.chip, plug: this.plug } = this.#buildUnit(unit));
    this.uart.replaceChip(this.chip);
    this.#senseRelay();
    this.#apply();
  }

  /** Output pins of this slot on its board: how each is wired and what it switches (logical level). */
  outputPins(): Map<number, { wire: PinWire; apply: (active: boolean) => void }> {
    const w = this.wiring;
    const m = new Map<number, { wire: PinWire; apply: (active: boolean) => void }>();
    const set = (key: SlotOutput) => (active: boolean) => {
      this.#out[key] = active;
      this.#apply();
    };
    m.set(w.cen.pin, { wire: w.cen, apply: set('cen') });
    if ('pin' in w.power3v3) m.set(w.power3v3.pin.pin, { wire: w.power3v3.pin, apply: set('power3v3') });
    m.set(w.uartIsolation.pin, { wire: w.uartIsolation, apply: set('uartIsolation') });
    m.set(w.mains.pin, { wire: w.mains, apply: set('mains') });
    m.set(w.button.pin, { wire: w.button, apply: set('button') });
    for (const load of w.loads) {
      if (!load.pin) continue;
      m.set(load.pin.pin, { wire: load.pin, apply: (active) => this.setLoadRelay(load.name, active) });
    }
    return m;
  }

  /** Logical level of an output pin from the board's electrical level (a pin not driven is inactive). */
  static logical(wire: PinWire, level: boolean | undefined): boolean {
    return level !== undefined && level !== wire.activeLow;
  }

  /** The module's 3V3 as a USB hub port switches it (when power3v3 is a hub port). */
  setHubPower(on: boolean): void {
    this.#out.power3v3 = on;
    this.#apply();
  }

  /** A load-bank relay closed/opened (by a board pin or a USB relay channel). */
  setLoadRelay(name: string, closed: boolean): void {
    this.branch.setLoadRelay(name, closed);
    this.#record();
  }

  setLid(closed: boolean): void {
    this.#lidClosed = closed;
    this.#drive(this.wiring.lid, closed);
    this.#record();
  }

  pressEstop(pressed: boolean): void {
    this.#estopPressed = pressed;
    this.#drive(this.wiring.estop, pressed);
    this.#record();
  }

  physical(): SlotPhysicalState {
    const isolation = this.uart.connected();
    return {
      mainsEnergised: this.branch.inputEnergised(),
      uartConnected: isolation,
      supply3v3: isolation && this.#out.power3v3,
      cenLow: this.#cenLow(),
      plugRelayClosed: this.plug.relayClosed(),
      loadsOn: this.branch.loadNames().filter((n) => this.branch.loadRelayClosed(n)),
      lidClosed: this.#lidClosed,
      estopPressed: this.#estopPressed,
    };
  }

  /** Mains changed somewhere on the network: the plug's own supply follows its input terminals. */
  mainsChanged(): void {
    this.plug.mainsPresent(this.branch.inputEnergised());
    this.#record();
  }

  /** Power the plug down; resolves when its firmware has stopped (HTTP server closed). */
  async dispose(): Promise<void> {
    await this.plug.dispose();
  }

  /** Where this slot's plug serves HTTP right now (its lease or AP address), if it runs OpenBeken. */
  plugUrl(): string | undefined {
    const a = this.plug instanceof ObkPlug ? this.plug.obkFirmware()?.httpAddress() : undefined;
    return a ? `http://${a.host}:${a.port}` : undefined;
  }

  #cenLow(): boolean {
    if (!this.uart.connected()) return false; // CEN's pogo pin sits behind the isolation relay; the module pulls it up
    return this.#out.cen || (this.#rtsWired && (this.#lines?.rts ?? false));
  }

  /** Re-derive the plug's inputs from the jig outputs (order: isolation, CEN, power, mains, button). */
  #apply(): void {
    this.uart.setConnected(this.#out.uartIsolation);
    this.plug.setCen(!this.#cenLow());
    this.plug.setSupply3v3(this.uart.connected() && this.#out.power3v3);
    // The contactor coil is fed through the watchdog relay: mains at the plug = mains pin AND watchdog.
    this.branch.setMainsRelay(this.#out.mains && (this.#watchdog?.closed() ?? true));
    this.plug.pressButton(this.#out.button);
    this.#record();
  }

  #drive(wire: PinWire, active: boolean): void {
    this.board.setInput(wire.pin, active !== wire.activeLow);
  }

  #record(): void {
    this.history.record(this.#clock.now(), this.physical());
  }
}

/**
 * The whole virtual jig a jig file describes: per slot an ObkPlug with its VirtualBk7231, one
 * VirtualFirmataBoard per I/O board (Mega layout when the pins need it), the MainsNetwork, and the
 * reference meters (virtual PZEM-004T / WT310E) measuring each slot's plug input. The jig file's
 * mains feeds (`mains.feeds`, rig/jig/mains-feeds.ts) are one MainsNetwork each: a load switched on
 * one steps the voltage of its own slots only. Every feed's source wanders with the same seeded drift
 * (one grid behind them), through its own impedance.
 */
export class VirtualJig {
  readonly spec: JigSpec;
  readonly clock: Clock;
  /** One network per mains feed of the jig file, by feed name. */
  readonly feeds = new Map<string, MainsNetwork>();
  readonly boards = new Map<string, VirtualFirmataBoard>();
  /** What each slot UART is attached as: the slot link, or the faulty line in front of it (jig file `faults.uart`). */
  readonly #lines = new Map<number, VirtualUartDevice>();
  readonly meters = new Map<string, VirtualPzem | VirtualWt310e>();
  readonly slots = new Map<number, VirtualSlot>();
  /** The station network every slot's plug joins. */
  readonly network: PlugNetwork;
  /** The jig's dcttech relay boards and USB hubs, on a fake USB bus (empty for pin-only jigs). */
  readonly usb: VirtualUsbBus;
  /** Charge-pump watchdog relays of the boards whose jig-file entry names a heartbeat pin. */
  readonly watchdogs = new Map<string, WatchdogRelay>();
  /** The select-relay muxes of meters several slots share. */
  readonly meterMuxes = new Map<string, VirtualMeterMux>();
  /** Several PZEMs on one port: the Modbus line joining them, by port. */
  readonly #modbusBuses = new Map<string, VirtualModbusBus>();
  /** The slots' USB-UART adapters (slots bound by USB path / serial), once attached to a bus. */
  #usbUarts: VirtualUsbUarts | undefined;
  /** Undo the adapter faults' timers and chip listeners. */
  readonly #faultDisarms: Array<() => void> = [];

  private constructor(spec: JigSpec, options: VirtualJigOptions) {
    this.spec = spec;
    this.clock = options.clock;
    const seed = options.seed ?? 1;
    const wifi = options.wifi ?? DEFAULT_VIRTUAL_WIFI;
    this.network = options.network ?? new StationNetwork({ clock: options.clock, ssid: wifi.ssid, pass: wifi.pass });
    const feedOf = new Map<number, MainsNetwork>();
    for (const feed of mainsFeeds(spec)) {
      // The file states R and X at the nominal frequency; the network takes X as an inductance.
      const sourceImpedance = { ohms: feed.impedance.ohms, henries: feed.impedance.xOhms / (2 * Math.PI * spec.mains.hz) };
      const net = new MainsNetwork({ clock: options.clock, volts: spec.mains.volts, hz: spec.mains.hz, seed, sourceImpedance, ...options.mains });
      this.feeds.set(feed.name, net);
      for (const id of feed.slots) feedOf.set(id, net);
    }

    for (const name of Object.keys(spec.ioBoards)) {
      const layout = VirtualJig.#layoutFor(name, spec);
      const leftHigh = spec.faults?.boards?.[name]?.outputsLeftHigh;
      const board = new VirtualFirmataBoard({ layout, bootMs: options.firmataBootMs ?? 0, ...(leftHigh ? { autoResetOnDtr: false } : {}) });
      if (leftHigh) board.leaveOutputsHigh(leftHigh);
      this.boards.set(name, board);
    }
    const claimed = new Map<string, string>();
    const sharedMains = mainsGroupWires(spec);
    for (const [name, board] of this.boards) {
      const hb = heartbeatWire(spec, name);
      if (!hb) continue;
      const watchdog = new WatchdogRelay(options.clock);
      this.watchdogs.set(name, watchdog);
      claimed.set(`${name}:${hb.pin}`, 'the heartbeat');
      // Both edges pump charge, so the wire's polarity does not matter.
      board.onOutput((p, level) => {
        if (p === hb.pin) watchdog.pinLevel(level);
      });
    }
    for (const s of spec.slots) {
      const board = this.boards.get(s.io);
      if (!board) throw new ConfigError(`slot ${s.id}: unknown I/O board "${s.io}"`, { slot: s.id, step: 'virtual-jig' });
      // The jig file's `faults`: chip faults go into the slot's chip, line faults in front of its UART.
      const faults = slotFaults(spec.faults, s.faults);
      const chipped = faults.chip ? { ...options, chipOptions: (id: number) => ({ ...options.chipOptions?.(id), ...chipFaultOptions(faults.chip) }) } : options;
      const slotOptions = withPlugFaults(chipped, faults.plug);
      const net = feedOf.get(s.id);
      if (!net) throw new ConfigError(`slot ${s.id} is on no mains feed of jig ${spec.name}`, { slot: s.id, step: 'virtual-jig' });
      const slot = new VirtualSlot(s, board, net.branch(`slot${s.id}`), slotOptions, seed, this.network, this.watchdogs.get(s.io));
      this.slots.set(s.id, slot);
      this.#lines.set(s.id, slotLine(slot.uart, faults.uart, s.id));
      for (const [pin, { wire, apply }] of slot.outputPins()) {
        const key = `${s.io}:${pin}`;
        const prev = claimed.get(key);
        // One mains relay may feed several slots, only when the jig file says so (mainsGroups).
        const group = pin === slot.wiring.mains.pin ? sharedMains.get(key) : undefined;
        const shared = group !== undefined && group.has(s.id) && prev !== undefined && prev.startsWith(`mains group ${[...group].join('+')}`);
        if (prev && !shared) throw new ConfigError(`pin ${pin} of ${s.io} is used by ${prev} and slot ${s.id}`, { slot: s.id, step: 'virtual-jig' });
        claimed.set(key, group?.has(s.id) ? `mains group ${[...group].join('+')}` : `slot ${s.id}`);
        board.onOutput((p, level) => {
          if (p === pin) apply(VirtualSlot.logical(wire, level));
        });
      }
    }
    for (const s of spec.slots) {
      if (slotFaults(spec.faults, s.faults).adapter && s.uart.port !== undefined) {
        throw new ConfigError(`slot ${s.id}: faults.adapter unplugs a USB-UART adapter, but the slot's UART is bound by tty name (${s.uart.port}); bind it by usbPath or serialNumber`, { slot: s.id, step: 'virtual-jig' });
      }
    }
    this.usb = new VirtualUsbBus([...this.slots.values()]);
    for (const net of this.feeds.values()) {
      net.onChange(() => {
        for (const slot of this.slots.values()) if (slot.branch.network === net) slot.mainsChanged();
      });
    }

    for (const [name, meter] of Object.entries(spec.meters)) {
      const users = spec.slots.filter((s) => s.meter.ref === name);
      let source: (atMs?: number) => PowerQuantities;
      if (users.length > 1) {
        // Shared: the meter reaches a slot's plug input only through that slot's select relay.
        const mux = new VirtualMeterMux(options.clock);
        this.meterMuxes.set(name, mux);
        for (const u of users) {
          const sel = (u.meter as unknown as Record<string, unknown>).select;
          if (sel === undefined) throw new ConfigError(`meter ${name} is shared by slots ${users.map((x) => x.id).join(', ')}: slot ${u.id} needs a meter.select relay pin`, { slot: u.id, step: 'virtual-jig' });
          const wire = pinWireOf(u.id, sel);
          mux.addSlot(u.id, this.slots.get(u.id)!.branch);
          const key = `${u.io}:${wire.pin}`;
          const prev = claimed.get(key);
          if (prev) throw new ConfigError(`pin ${wire.pin} of ${u.io} is used by ${prev} and slot ${u.id} meter select`, { slot: u.id, step: 'virtual-jig' });
          claimed.set(key, `slot ${u.id} meter select`);
          this.boards.get(u.io)!.onOutput((p, level) => {
            if (p === wire.pin) mux.setRelay(u.id, VirtualSlot.logical(wire, level));
          });
        }
        source = mux.source();
      } else {
        // An unused meter sits on the live supply with nothing behind it.
        const branch = users[0] ? this.slots.get(users[0].id)!.branch : [...this.feeds.values()][0]!.branch(`meter:${name}`);
        if (!users[0]) branch.setMainsRelay(true);
        source = branch.source('input');
      }
      if (meter.kind === 'pzem004t' && meter.port.startsWith(SIM)) {
        // A PZEM reports no serial: its jig-file name and the seed pick its (in-class) error.
        this.meters.set(name, new VirtualPzem({ source, serial: `${name}#${seed}`, ...(meter.address !== 0xf8 ? { address: meter.address } : {}) }));
      } else if (meter.kind === 'scpi' && meter.address.startsWith(SIM)) {
        this.meters.set(name, new VirtualWt310e({ source, clock: options.clock, ...(meter.serial ? { serial: meter.serial } : {}) }));
      }
    }
  }

  static fromSpec(jig: JigSpec, options: VirtualJigOptions): VirtualJig {
    return new VirtualJig(jig, options);
  }

  slot(id: number): VirtualSlot {
    const s = this.slots.get(id);
    if (!s) throw new ConfigError(`no slot ${id} in jig ${this.spec.name}`, { slot: id, step: 'virtual-jig' });
    return s;
  }

  /** Seat fed unit `unit` in slot `slot` (its seed and MAC are the unit's own, see VirtualSlot.loadUnit). */
  loadUnit(slot: number, unit: number): Promise<void> {
    return this.slot(slot).loadUnit(unit);
  }

  setLid(slot: number, closed: boolean): void {
    this.slot(slot).setLid(closed);
  }

  pressEstop(slot: number, pressed: boolean): void {
    this.slot(slot).pressEstop(pressed);
  }

  physical(slot: number): SlotPhysicalState {
    return this.slot(slot).physical();
  }

  history(slot: number): readonly PhysicalChange[] {
    return this.slot(slot).history.entries();
  }

  /** Devices by `sim:` path, with the attach options their real counterparts imply. */
  devices(): Array<{ path: string; device: VirtualUartDevice; options: AttachOptions }> {
    const out: Array<{ path: string; device: VirtualUartDevice; options: AttachOptions }> = [];
    for (const [name, io] of Object.entries(this.spec.ioBoards)) {
      // A USB Arduino: opening the port asserts DTR, which resets the board (auto-reset).
      if (io.port?.startsWith(SIM)) out.push({ path: io.port, device: this.#portLine(io.port, this.boards.get(name)!), options: { modemLines: true } });
    }
    // PZEMs on one port are slaves on one Modbus line: one device on that path, the bus.
    const lines = new Map<string, VirtualUartDevice[]>();
    for (const [name, meter] of Object.entries(this.spec.meters)) {
      const device = this.meters.get(name);
      const path = meter.kind === 'pzem004t' ? meter.port : meter.address;
      if (device) lines.set(path, [...(lines.get(path) ?? []), device]);
    }
    for (const [path, devices] of lines) {
      let device = devices[0]!;
      if (devices.length > 1) {
        let bus = this.#modbusBuses.get(path);
        if (!bus) this.#modbusBuses.set(path, (bus = new VirtualModbusBus(devices)));
        device = bus;
      }
      out.push({ path, device: this.#portLine(path, device), options: {} });
    }
    for (const slot of this.slots.values()) {
      const port = slot.spec.uart.port;
      if (port?.startsWith(SIM)) out.push({ path: port, device: this.#lines.get(slot.id) ?? slot.uart, options: { modemLines: true } });
    }
    return out;
  }

  /** The slot's UART as the host's adapter reaches it: its link, or the faulty line in front of it. */
  slotLine(id: number): VirtualUartDevice {
    return this.#lines.get(id) ?? this.slot(id).uart;
  }

  /** The slots bound by USB path / serial number, each on a virtual USB-UART adapter (not in devices()). */
  usbUartSlots(): UsbUartSlot[] {
    return this.spec.slots
      .filter((s) => s.uart.port === undefined)
      .map((s) => ({ slot: s.id, usbPath: s.uart.usbPath ?? spareUsbPath(s.id), ...(s.uart.serialNumber !== undefined ? { serialNumber: s.uart.serialNumber } : {}), device: this.slotLine(s.id) }));
  }

  /** The USB-UART adapters (after attachTo): unplug / replug them, or scan them as the host does. */
  get usbUarts(): VirtualUsbUarts | undefined {
    return this.#usbUarts;
  }

  /** A device behind the faulty line the jig file's `faults.ports` names for its port, else itself. */
  #portLine(path: string, device: VirtualUartDevice): VirtualUartDevice {
    const f = this.spec.faults?.ports?.[path];
    return f ? new FaultyUart(device, { seed: 1, ...f }) : device;
  }

  /** Attach every `sim:` device to the bus (I/O boards and slot UARTs with modem lines wired). */
  attachTo(bus: AttachableBus): void {
    for (const d of this.devices()) bus.attach(d.path, d.device, d.options);
    const usbSlots = this.usbUartSlots();
    if (usbSlots.length === 0) return;
    // Plugged in in slot order, so slot N's adapter starts as the Nth tty (sim:ttyUSB0, ...).
    const usb = (this.#usbUarts = new VirtualUsbUarts(bus));
    for (const u of usbSlots) usb.plugIn(u.device, { usbPath: u.usbPath, ...(u.serialNumber !== undefined ? { serialNumber: u.serialNumber } : {}) });
    for (const u of usbSlots) {
      const fault = slotFaults(this.spec.faults, this.slot(u.slot).spec.faults).adapter;
      if (fault) this.#armAdapterFault(u.usbPath, u.slot, fault);
    }
  }

  /** The jig file's `faults.adapter` for one slot: unplug after a time or at the chip's nth command, replug later. */
  #armAdapterFault(usbPath: string, slotId: number, fault: NonNullable<FaultsSpec['adapter']>): void {
    const usb = this.#usbUarts!;
    const clock = this.clock;
    let done = false;
    const unplug = (): void => {
      if (done) return;
      done = true;
      usb.unplug(usbPath);
      if (fault.replugAfterMs !== undefined) this.#faultDisarms.push(clock.at(clock.now() + fault.replugAfterMs, () => void usb.replug(usbPath)));
    };
    if (fault.unplugAfterMs !== undefined) this.#faultDisarms.push(clock.at(clock.now() + fault.unplugAfterMs, unplug));
    const at = fault.unplugAtCommand;
    if (at) {
      // Not inside the chip's command handling: the tty goes on the next turn of the clock, as a cable pulled then.
      const off = this.slot(slotId).chip.onCommand((name, n) => {
        if (name === at.command && n === at.nth) this.#faultDisarms.push(clock.at(clock.now(), unplug));
      });
      this.#faultDisarms.push(off);
    }
  }

  /**
   * Power everything down so no timer is left on the clock; resolves when every plug's firmware has
   * stopped (HTTP servers closed).
   */
  async dispose(): Promise<void> {
    for (const disarm of this.#faultDisarms.splice(0)) disarm();
    const stopped = [...this.slots.values()].map((slot) => slot.dispose());
    for (const board of this.boards.values()) board.powerOff();
    for (const watchdog of this.watchdogs.values()) watchdog.dispose();
    await Promise.all(stopped);
  }

  /** Uno when every pin fits, else Mega 2560; pins 0/1 (the board's serial link) and clashes are refused. */
  static #layoutFor(name: string, spec: JigSpec): FirmataLayoutName {
    const slots = spec.slots.filter((s) => s.io === name);
    const digital: number[] = [];
    const analog: number[] = [];
    for (const s of slots) {
      const w = readSlotWiring(s);
      for (const wire of [...boardOutputs(w), w.relaySense, w.lid, w.estop]) digital.push(wire.pin);
      const sel = (s.meter as unknown as Record<string, unknown>).select;
      if (sel !== undefined) digital.push(pinWireOf(s.id, sel).pin);
      analog.push(w.ledAnalog);
    }
    const hb = heartbeatWire(spec, name);
    if (hb) digital.push(hb.pin);
    const bad = digital.find((d) => d < 2);
    if (bad !== undefined) throw new ConfigError(`I/O board ${name}: pin ${bad} is the board's serial link`, { step: 'virtual-jig', unit: name });
    const fits = (l: typeof UNO_LAYOUT): boolean =>
      digital.every((d) => d < l.totalPins) &&
      analog.every((a) => a < l.analogPins.length && !digital.includes(l.analogPins[a]!));
    if (fits(UNO_LAYOUT)) return 'uno';
    if (fits(MEGA2560_LAYOUT)) return 'mega2560';
    throw new ConfigError(`I/O board ${name}: pins ${digital.join(',')} / analog ${analog.join(',')} fit neither an Uno nor a Mega 2560`, {
      step: 'virtual-jig',
      unit: name,
    });
  }
}

/**
 * The jig file's mains groups read as plain data: "board:pin" -> the slots that one relay feeds
 * (the board is the members' own; a member on another board or with another pin is not wired to it).
 */
function mainsGroupWires(spec: JigSpec): Map<string, Set<number>> {
  const out = new Map<string, Set<number>>();
  const groups = (spec as unknown as Record<string, unknown>).mainsGroups;
  if (!groups || typeof groups !== 'object') return out;
  for (const g of Object.values(groups as Record<string, unknown>)) {
    const raw = g as Record<string, unknown>;
    const pin = pinWireOf(0, raw.pin).pin;
    const ids = Array.isArray(raw.slots) ? (raw.slots as unknown[]).filter((x): x is number => typeof x === 'number') : [];
    for (const id of ids) {
      const slot = spec.slots.find((x) => x.id === id);
      if (!slot || readSlotWiring(slot).mains.pin !== pin) continue;
      const key = `${slot.io}:${pin}`;
      const set = out.get(key) ?? new Set<number>();
      set.add(id);
      out.set(key, set);
    }
  }
  return out;
}

/** The board's heartbeat pin as the jig file writes it (read as plain data, like wiring.ts). */
function heartbeatWire(spec: JigSpec, board: string): { pin: number } | undefined {
  const raw = (spec.ioBoards[board] as unknown as Record<string, unknown> | undefined)?.heartbeat;
  if (typeof raw === 'number') return { pin: raw };
  if (raw && typeof raw === 'object' && typeof (raw as Record<string, unknown>).pin === 'number') return { pin: (raw as Record<string, unknown>).pin as number };
  return undefined;
}
