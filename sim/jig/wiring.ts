import { ConfigError } from '../../rig/core/errors.ts';
import type { SlotSpec } from '../../rig/jig/jig-config.ts';

/**
 * The virtual jig's own reading of how a slot is wired, straight from the jig file's fields.
 * Deliberately not the host's pinNumber/pinActiveLow/isHubPort (rig/jig/jig-config.ts): if those
 * were wrong, host and simulator would agree on the same mistake and no test would see it; read
 * independently, a host that drives the wrong level shows up as the wrong physical state here.
 */

/** One I/O-board pin: its number and whether "active" is the LOW level on the wire. */
export interface PinWire {
  pin: number;
  activeLow: boolean;
}

/** A port of a per-port-switched USB hub. */
export interface HubPortWire {
  hubUsbPath: string;
  port: number;
}

/** A channel of a dcttech USB relay board, picked by its serial and/or USB path. */
export interface RelayWire {
  serial?: string;
  usbPath?: string;
  channel: number;
}

export interface LoadWire {
  name: string;
  watts: number;
  pf: number;
  pin?: PinWire;
  relay?: RelayWire;
}

export interface SlotWiring {
  cen: PinWire;
  power3v3: { pin: PinWire } | { hub: HubPortWire };
  uartIsolation: PinWire;
  mains: PinWire;
  button: PinWire;
  relaySense: PinWire;
  lid: PinWire;
  estop: PinWire;
  loads: LoadWire[];
  ledAnalog: number;
}

type Raw = Record<string, unknown>;

function fail(slot: number, what: string, value: unknown): never {
  throw new ConfigError(`slot ${slot}: the virtual jig cannot read ${what} from ${JSON.stringify(value)}`, { step: 'virtual-jig', slot });
}

/** A pin is a bare number (active high) or { pin, activeLow }; activeLow is true only when written true. */
function pinWire(slot: number, what: string, value: unknown): PinWire {
  if (typeof value === 'number' && Number.isInteger(value)) return { pin: value, activeLow: false };
  if (value && typeof value === 'object' && typeof (value as Raw).pin === 'number') {
    return { pin: (value as Raw).pin as number, activeLow: (value as Raw).activeLow === true };
  }
  return fail(slot, what, value);
}

/** A pin field of the jig file read the simulator's way (a number, or { pin, activeLow }). */
export function pinWireOf(slot: number, value: unknown): PinWire {
  return pinWire(slot, 'meter.select', value);
}

export function readSlotWiring(slot: SlotSpec): SlotWiring {
  // Read as plain data: only the file's fields count, never helpers that interpret them.
  const id = slot.id;
  const pins = slot.pins as unknown as Raw;
  const p3 = pins.power3v3 as unknown;
  const power3v3 =
    p3 && typeof p3 === 'object' && (p3 as Raw).kind === 'hub-port'
      ? { hub: { hubUsbPath: String((p3 as Raw).hubUsbPath), port: Number((p3 as Raw).port) } }
      : { pin: pinWire(id, 'power3v3', p3) };
  const loads = (Array.isArray(pins.loads) ? (pins.loads as Raw[]) : []).map((l): LoadWire => {
    const r = l.relay as Raw | undefined;
    return {
      name: String(l.name),
      watts: Number(l.watts),
      pf: typeof l.pf === 'number' ? l.pf : 1,
      ...(l.pin !== undefined ? { pin: pinWire(id, `load ${String(l.name)}`, l.pin) } : {}),
      ...(r
        ? {
            relay: {
              channel: Number(r.channel),
              ...(typeof r.serial === 'string' ? { serial: r.serial } : {}),
              ...(typeof r.usbPath === 'string' ? { usbPath: r.usbPath } : {}),
            },
          }
        : {}),
    };
  });
  const led = pins.ledSensor as Raw | undefined;
  return {
    cen: pinWire(id, 'cen', pins.cen),
    power3v3,
    uartIsolation: pinWire(id, 'uartIsolation', pins.uartIsolation),
    mains: pinWire(id, 'mains', pins.mains),
    button: pinWire(id, 'button', pins.button),
    relaySense: pinWire(id, 'relaySense', pins.relaySense),
    lid: pinWire(id, 'lid', pins.lid),
    estop: pinWire(id, 'estop', pins.estop),
    loads,
    ledAnalog: typeof led?.analog === 'number' ? led.analog : fail(id, 'ledSensor.analog', led),
  };
}

/** The I/O-board outputs of a slot (3V3 and loads only when they are on pins). */
export function boardOutputs(w: SlotWiring): PinWire[] {
  return [w.cen, w.uartIsolation, w.mains, w.button, ...('pin' in w.power3v3 ? [w.power3v3.pin] : []), ...w.loads.flatMap((l) => (l.pin ? [l.pin] : []))];
}
