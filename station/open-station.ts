import { SerialPortStream } from '@serialport/stream';
import { autoDetect } from '@serialport/bindings-cpp';
import type { Clock } from '../rig/core/clock.ts';
import { ConfigError, TransportError } from '../rig/core/errors.ts';
import type { Logger } from '../rig/core/log.ts';
import type { JigSpec } from '../rig/jig/jig-config.ts';
import { openJigBoard, type FirmataStream, type JigBoard } from '../rig/jig/jig-board.ts';
import { SlotIo } from '../rig/jig/slot-io.ts';
import { openMeter } from '../rig/meter/open-meter.ts';
import type { ReferenceMeter } from '../rig/meter/reference-meter.ts';
import { resolveUartRef } from '../rig/usb/usb-uart.ts';
import type { VirtualSerialBus } from '../sim/serial/virtual-binding.ts';

/** An opened station: every I/O board ready, every slot's interlock initialised (all off), meters open. */
export interface OpenStation {
  boards: Map<string, JigBoard>;
  slots: Map<number, { io: SlotIo; meter: ReferenceMeter; uartPath: string }>;
  close(): Promise<void>;
}

/**
 * Open the jig's hardware in a safe order: boards first (their interlocks drive every output off
 * before anything else happens), then meters. `sim:` ports go to the virtual bus.
 */
export async function openStation(jig: JigSpec, o: { clock: Clock; log: Logger; bus?: VirtualSerialBus; slots?: number[] }): Promise<OpenStation> {
  const boards = new Map<string, JigBoard>();
  const slots = new Map<number, { io: SlotIo; meter: ReferenceMeter; uartPath: string }>();
  const meters: ReferenceMeter[] = [];
  const close = async (): Promise<void> => {
    for (const s of slots.values()) {
      await s.io.interlock.safeState().catch(() => undefined);
      s.io.dispose();
    }
    for (const m of meters) await m.close().catch(() => undefined);
    for (const b of boards.values()) await b.close().catch(() => undefined);
  };
  try {
    for (const [name, spec] of Object.entries(jig.ioBoards)) {
      const path = spec.port ?? (await resolveUartRef({ usbPath: spec.usbPath, serialNumber: spec.serialNumber }));
      const binding = path.startsWith('sim:') ? o.bus?.binding : autoDetect();
      if (!binding) throw new ConfigError(`I/O board ${name} is on ${path} but no virtual jig is running`, { step: 'open-station' });
      const stream = new SerialPortStream({ binding, path, baudRate: spec.baudRate, autoOpen: false });
      await new Promise<void>((res, rej) =>
        stream.open((e) => (e ? rej(new TransportError(`cannot open I/O board ${name} on ${path}: ${e.message}`, { step: 'open-station', path })) : res())),
      );
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
    for (const id of wanted) {
      const spec = jig.slots.find((s) => s.id === id);
      if (!spec) throw new ConfigError(`jig ${jig.name} has no slot ${id}`, { step: 'open-station' });
      const io = await SlotIo.open(boards.get(spec.io)!, jig, id, { clock: o.clock, log: o.log });
      const meter = await openMeter(jig.meters[spec.meter.ref]!, { clock: o.clock, channel: spec.meter.channel, log: o.log, ...(o.bus ? { bus: o.bus } : {}) });
      meters.push(meter);
      const uartPath = spec.uart.port ?? (await resolveUartRef({ usbPath: spec.uart.usbPath, serialNumber: spec.uart.serialNumber }));
      slots.set(id, { io, meter, uartPath });
    }
  } catch (e) {
    await close();
    throw e;
  }
  return { boards, slots, close };
}
