import type { Clock } from '../rig/core/clock.ts';
import { ConfigError } from '../rig/core/errors.ts';
import type { Logger } from '../rig/core/log.ts';
import type { EndpointRegistry } from '../rig/endpoints/registry.ts';
import { openSerialPort } from '../rig/endpoints/serial-port.ts';
import { isHubPort, type JigSpec, type SlotSpec } from '../rig/jig/jig-config.ts';
import { openJigBoard, type FirmataStream, type JigBoard } from '../rig/jig/jig-board.ts';
import { SlotIo } from '../rig/jig/slot-io.ts';
import { openMeter } from '../rig/meter/open-meter.ts';
import { PzemBus } from '../rig/meter/pzem-bus.ts';
import { Pzem004tMeter } from '../rig/meter/pzem004t.ts';
import type { ReferenceMeter } from '../rig/meter/reference-meter.ts';
import type { UsbDeviceSource } from '../rig/usb/usb-source.ts';
import { resolveUart } from '../rig/usb/usb-uart.ts';
import { SlotUart } from './slot-uart.ts';
import { MeterMux } from './meter-mux.ts';
import { MainsGroup } from '../rig/jig/mains-group.ts';
import { describeMainsAtStart, readMainsAtStart, type MainsAtStart } from '../rig/jig/mains-at-start.ts';
import { SupplyActivity } from './supply-activity.ts';
import { mainsFeeds } from '../rig/jig/mains-feeds.ts';

/** An opened station: every I/O board ready, every slot's interlock initialised (all off), meters open. */
export interface OpenStation {
  boards: Map<string, JigBoard>;
  /** meterRef: the jig's meter name; slots sharing one get the same instance (opened once). */
  /** uart: resolved again each time it is opened (an adapter bound by USB path may come back under another tty). */
  slots: Map<number, OpenSlot>;
  /** The mux of every meter several opened slots share (its select relays, all open). */
  muxes: Map<string, MeterMux>;
  /** The shared mains relays (jig file `mainsGroups`) by name, every member opened. */
  mainsGroups: Map<string, MainsGroup>;
  /** Each opened slot's mains relay output as its board reported it before anything was written (then driven off). */
  mainsAtStart: MainsAtStart[];
  /** The jig's mains supply: every slot's load and mains writes, as the others' metering sees them. */
  supply: SupplyActivity;
  close(): Promise<void>;
}

/** One opened slot of a station. */
export interface OpenSlot {
  io: SlotIo;
  meter: ReferenceMeter;
  meterRef: string;
  uart: SlotUart;
}

/**
 * Open the jig's hardware in a safe order: boards first (their interlocks drive every output off
 * before anything else happens), then meters. Every port, address and USB device is resolved by
 * `endpoints` (the composition root decides whether a virtual jig is among them).
 */
export async function openStation(jig: JigSpec, o: { clock: Clock; log: Logger; endpoints: EndpointRegistry; slots?: number[] }): Promise<OpenStation> {
  const boards = new Map<string, JigBoard>();
  const slots = new Map<number, OpenSlot>();
  const meters = new Map<string, ReferenceMeter>();
  const muxes = new Map<string, MeterMux>();
  const mainsGroups = new Map<string, MainsGroup>();
  let mainsAtStart: MainsAtStart[] = [];
  const supply = new SupplyActivity({ clock: o.clock, mainsVolts: jig.mains.volts, feeds: mainsFeeds(jig) });
  const close = async (): Promise<void> => {
    for (const s of slots.values()) {
      await s.io.interlock.safeState().catch(() => undefined);
      s.io.dispose();
    }
    for (const mux of muxes.values()) await mux.deselect().catch(() => undefined);
    for (const m of meters.values()) await m.close().catch(() => undefined);
    for (const b of boards.values()) await b.close().catch(() => undefined);
  };
  try {
    for (const [name, spec] of Object.entries(jig.ioBoards)) {
      const path = (await resolveUart(o.endpoints, spec)).path;
      const stream = await openSerialPort(o.endpoints, path, { baudRate: spec.baudRate, clock: o.clock, what: `I/O board ${name} port` });
      // SerialPortStream satisfies FirmataStream at runtime; its generic binding type does not narrow.
      try {
        boards.set(name, await openJigBoard({ stream: stream as unknown as FirmataStream, clock: o.clock, name }));
      } catch (e) {
        // A board that never completed the handshake is still ours to close.
        await new Promise<void>((res) => (stream.isOpen ? stream.close(() => res()) : res()));
        throw e;
      }
    }
    const wanted = o.slots ?? jig.slots.map((s) => s.id);
    const specs = wanted.map((id) => {
      const spec = jig.slots.find((s) => s.id === id);
      if (!spec) throw new ConfigError(`jig ${jig.name} has no slot ${id}`, { step: 'open-station' });
      return spec;
    });
    // Before any interlock writes its off levels: what the boards hold now (a dead station's mains left on?).
    mainsAtStart = await readMainsAtStart(jig, boards, wanted, { clock: o.clock });
    for (const m of mainsAtStart.filter((x) => x.energised)) o.log.warn({ board: m.board, pin: m.pin, slots: m.slots, state: m.state }, describeMainsAtStart(m));
    // One relay feeds the whole group: its mains can only be judged safe with every plug it feeds under the interlock.
    for (const [name, g] of Object.entries(jig.mainsGroups ?? {})) {
      const opened = g.slots.filter((id) => wanted.includes(id));
      if (opened.length === 0) continue;
      if (opened.length < g.slots.length) {
        throw new ConfigError(`slots ${g.slots.join(', ')} share mains group ${name} (one mains relay): run them together (--slot ${g.slots.join(',')}), not slot ${opened.join(', ')} alone`, { step: 'open-station', group: name });
      }
      mainsGroups.set(name, new MainsGroup(name, g.slots, o.clock));
    }
    // A meter several slots share is switched between them by select relays: every user needs one.
    for (const ref of new Set(specs.map((s) => s.meter.ref))) {
      const users = specs.filter((s) => s.meter.ref === ref);
      if (users.length < 2) continue;
      const bare = users.filter((s) => s.meter.select === undefined);
      if (bare.length) throw new ConfigError(`meter ${ref} is shared by slots ${users.map((u) => u.id).join(', ')}, but slot ${bare.map((b) => b.id).join(', ')} has no meter.select relay to route it`, { step: 'open-station', meter: ref });
    }
    // PZEMs on one port are slaves on one Modbus line: opened once, their transactions take turns.
    const pzemBuses = new Map<string, Promise<PzemBus>>();
    const openStationMeter = async (ref: string, channel: number): Promise<ReferenceMeter> => {
      const m = jig.meters[ref]!;
      const onLine = m.kind === 'pzem004t' ? Object.values(jig.meters).filter((x) => x.kind === 'pzem004t' && x.port === m.port).length : 0;
      if (m.kind !== 'pzem004t' || onLine < 2) return openMeter(m, { clock: o.clock, channel, log: o.log, endpoints: o.endpoints });
      let bus = pzemBuses.get(m.port);
      if (!bus) {
        bus = openSerialPort(o.endpoints, m.port, { baudRate: 9600, clock: o.clock, what: `Modbus line ${m.port}` }).then((stream) => PzemBus.open(stream, o.log));
        pzemBuses.set(m.port, bus);
      }
      return Pzem004tMeter.onBus(await bus, { clock: o.clock, address: m.address, log: o.log, ...(m.serial !== undefined ? { serial: m.serial } : {}), ...(m.calibrationDate !== undefined ? { calibrationDate: m.calibrationDate } : {}) });
    };
    for (const spec of specs) {
      const id = spec.id;
      const usb = usbSourceOf(o.endpoints, spec);
      const group = [...mainsGroups.values()].find((g) => g.slots.includes(id));
      const io = await SlotIo.open(boards.get(spec.io)!, jig, id, { clock: o.clock, log: o.log, ...(usb ? { usb } : {}), ...(group ? { mainsGroup: group } : {}), observeOutputs: (outputs) => supply.observe(id, spec.pins.loads, outputs) });
      const ref = spec.meter.ref;
      let meter = meters.get(ref);
      if (!meter) {
        meter = await openStationMeter(ref, spec.meter.channel);
        meters.set(ref, meter);
      }
      if (specs.filter((s) => s.meter.ref === ref).length > 1) {
        let mux = muxes.get(ref);
        if (!mux) muxes.set(ref, (mux = new MeterMux(ref, o.clock)));
        mux.add(id, boards.get(spec.io)!, spec.meter.select!);
      }
      // Not resolved here: each unit's ROM session finds the adapter as it is then (a missing one fails that slot's unit, not the station).
      const uart = new SlotUart({ slot: id, ref: spec.uart, endpoints: o.endpoints, clock: o.clock });
      slots.set(id, { io, meter, meterRef: ref, uart });
    }
  } catch (e) {
    await close();
    throw e;
  }
  return { boards, slots, muxes, mainsGroups, mainsAtStart, supply, close };
}

/** The one USB bus a slot's relay boards and hub live on (undefined when it switches nothing over USB). */
function usbSourceOf(endpoints: EndpointRegistry, slot: SlotSpec): UsbDeviceSource | undefined {
  const refs = [...(isHubPort(slot.pins.power3v3) ? [slot.pins.power3v3] : []), ...slot.pins.loads.flatMap((l) => (l.relay ? [l.relay] : []))];
  const sources = new Set(refs.map((ref) => endpoints.usb.resolve({ slot: slot.id, ref })));
  if (sources.size > 1) throw new ConfigError(`slot ${slot.id}: its USB relay boards and hub resolve to different USB buses`, { step: 'open-station', slot: slot.id });
  return [...sources][0];
}
