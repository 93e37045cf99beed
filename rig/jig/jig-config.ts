import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { FaultsSchema } from './fault-spec.ts';
import { ConfigError } from '../core/errors.ts';

/**
 * A jig file describes one station: its I/O boards, reference meters and slots.
 * Ports are either device paths (/dev/ttyUSB0, a pty symlink), `sim:<name>` for a device of the
 * in-process virtual jig, or an adapter selected by USB topology / serial number.
 */

/** A digital pin on an I/O board; `activeLow` inverts the logical level (e.g. relay modules that switch on LOW). */
export const PinSchema = z.union(
  [
    z.number().int().min(0).max(127),
    z.object({ pin: z.number().int().min(0).max(127), activeLow: z.boolean().default(false) }).strict(),
  ],
  // A union's default message ("Invalid input") hides that the field is simply missing.
  { errorMap: (_issue, ctx) => ({ message: ctx.data === undefined ? 'Required' : 'expected a pin number 0..127 or { "pin": n, "activeLow": bool }' }) },
);
export type PinSpec = z.infer<typeof PinSchema>;

export const SerialPortRefSchema = z
  .object({
    /** Device path, pty symlink, or `sim:<name>`. */
    port: z.string().min(1).optional(),
    /** USB topology path as in /sys/bus/usb/devices, e.g. "1-1.3". Survives re-enumeration. */
    usbPath: z.string().regex(/^\d+-\d+(\.\d+)*$/, 'usbPath looks like "1-1.3"').optional(),
    serialNumber: z.string().min(1).optional(),
    baudRate: z.number().int().positive().optional(),
  })
  .strict()
  .refine((p) => p.port || p.usbPath || p.serialNumber, { message: 'needs one of port, usbPath, serialNumber' });
export type SerialPortRef = z.infer<typeof SerialPortRefSchema>;

const UsbPathSchema = z.string().regex(/^\d+-\d+(\.\d+)*$/, 'usbPath looks like "1-1.3"');

/**
 * One channel of a dcttech USBRelayN HID board (rig/usb/dcttech-relay.ts). All such boards share
 * one VID:PID, so the board is picked by the 5-character ID in its feature report, by its USB
 * topology path, or by both (then both must match).
 */
export const DcttechRelayRefSchema = z
  .object({
    kind: z.literal('dcttech'),
    serial: z.string().min(1).max(5).optional(),
    usbPath: UsbPathSchema.optional(),
    channel: z.number().int().min(1).max(8),
  })
  .strict()
  .refine((r) => r.serial !== undefined || r.usbPath !== undefined, { message: 'a dcttech relay needs "serial" or "usbPath"' });
export type DcttechRelayRef = z.infer<typeof DcttechRelayRefSchema>;

/** A USB hub port whose VBUS feeds the module's 3V3 regulator, switched per port (rig/usb/hub-power.ts). */
export const HubPortRefSchema = z
  .object({
    kind: z.literal('hub-port'),
    /** Topology path of the hub itself, e.g. "1-1". */
    hubUsbPath: UsbPathSchema,
    port: z.number().int().min(1).max(15),
  })
  .strict();
export type HubPortRef = z.infer<typeof HubPortRefSchema>;

/** The 3V3 switch: a pin on the slot's I/O board or a hub port. */
export const Power3v3Schema = z.union([PinSchema, HubPortRefSchema], {
  errorMap: (_issue, ctx) => ({
    message: ctx.data === undefined ? 'Required' : 'expected a pin number 0..127, { "pin": n, "activeLow": bool } or { "kind": "hub-port", "hubUsbPath": "1-1", "port": n }',
  }),
});
export type Power3v3Spec = z.infer<typeof Power3v3Schema>;

/** A load-bank relay: a pin on the slot's I/O board (`pin`) or a dcttech USB relay channel (`relay`), exactly one. */
export const LoadSchema = z
  .object({
    name: z.string().min(1),
    pin: PinSchema.optional(),
    relay: DcttechRelayRefSchema.optional(),
    /** Nominal real power at nominal voltage, W. */
    watts: z.number().positive().max(4000),
    /** Power factor; < 1 means inductive (lagging). */
    pf: z.number().gt(0).max(1).default(1),
  })
  .strict();
export type LoadSpec = z.infer<typeof LoadSchema>;

export const ResetSchema = z.discriminatedUnion('method', [
  /** CEN driven by an I/O-board pin (slot.pins.cen). */
  z.object({ method: z.literal('jig-cen'), pulseMs: z.number().positive().default(50) }).strict(),
  /** DTR/RTS of the USB-UART, as an esptool-style sequence, e.g. "R1|D1|W100|D0|W100|R0". */
  z.object({ method: z.literal('modem-lines'), sequence: z.string().regex(/^([DRW]\d+)(\|[DRW]\d+)*$/) }).strict(),
  /** Switch the module's 3V3 off and on (slot.pins.power3v3: a pin or a hub port). */
  z.object({ method: z.literal('power-cycle'), offMs: z.number().positive().default(300) }).strict(),
  /** Nobody resets: the chip must already be in (or enter) its link window. */
  z.object({ method: z.literal('none') }).strict(),
]);
export type ResetSpec = z.infer<typeof ResetSchema>;

/**
 * How to reach a slot's plug over HTTP: a fixed `url` (http://host[:port] or a `sim:` address of the
 * virtual jig), or by the MAC read over the ROM in the station network's DHCP `leases` file (dnsmasq
 * format), served on `port`.
 */
export const PlugLocationSchema = z
  .object({
    url: z.string().regex(/^(https?:\/\/[^/\s]+\/?|sim:[\w.-]+)$/, 'url looks like "http://192.168.4.1", "http://10.0.0.5:8080" or "sim:plug1"').optional(),
    leases: z.string().min(1).optional(),
    port: z.number().int().min(1).max(65535).optional(),
    /** How long to wait for the plug's lease to appear, ms. */
    leaseTimeoutMs: z.number().int().positive().optional(),
  })
  .strict()
  .refine((p) => (p.url === undefined) !== (p.leases === undefined), { message: 'plug needs exactly one of "url" or "leases"' });
export type PlugLocationSpec = z.infer<typeof PlugLocationSchema>;

export const SlotSchema = z
  .object({
    id: z.number().int().min(1),
    uart: SerialPortRefSchema,
    reset: ResetSchema.default({ method: 'jig-cen', pulseMs: 50 }),
    /** Key of ioBoards. */
    io: z.string().min(1),
    /**
     * Logical meaning of every pin ("active", inverted on the wire by activeLow): cen = hold the
     * chip in reset (the pin drives an open-drain transistor that pulls CEN low); power3v3 = 3V3 on;
     * uartIsolation, mains, loads = relay closed; button = actuator pressing P10; inputs:
     * relaySense = plug relay closed, lid = lid closed, estop = E-stop pressed.
     */
    pins: z
      .object({
        cen: PinSchema,
        power3v3: Power3v3Schema,
        /** Relay that connects the USB-UART and 3V3 to the module (closed = connected). */
        uartIsolation: PinSchema,
        mains: PinSchema,
        loads: z.array(LoadSchema).default([]),
        button: PinSchema,
        ledSensor: z.object({ analog: z.number().int().min(0).max(15), threshold: z.number().int().min(0).max(1023) }).strict(),
        relaySense: PinSchema,
        lid: PinSchema,
        estop: PinSchema,
      })
      .strict(),
    /** Reference meter for this slot: key of meters, and the channel/element on it. */
    meter: z
      .object({
        ref: z.string().min(1),
        channel: z.number().int().min(1).default(1),
        /** Mux relay on the slot's I/O board routing a meter several slots share to this slot (the station switches it under the meter's lease). */
        select: PinSchema.optional(),
      })
      .strict(),
    /**
     * Only for the virtual jig (the rig ignores it): the unit's injected defects by name, e.g.
     * ["relay-stuck-open", "shunt-off-10"]; the simulator validates the names (sim/plug/plug-defects.ts).
     */
    sim: z.object({ defects: z.array(z.string().min(1)).default([]) }).strict().optional(),
    /** Where the slot's plug serves HTTP once it runs OpenBeken (rig/dut/plug-locator.ts). */
    plug: PlugLocationSchema.optional(),
    /** Virtual jig only: faults injected for this slot (rig/jig/fault-spec.ts), over the jig's own `faults`. */
    faults: FaultsSchema.optional(),
  })
  .strict();
export type SlotSpec = z.infer<typeof SlotSchema>;

export const IoBoardSchema = z
  .object({
    port: z.string().min(1).optional(),
    usbPath: z.string().optional(),
    serialNumber: z.string().optional(),
    baudRate: z.number().int().positive().default(57600),
    /** Pin layout of the StandardFirmata board (the virtual jig builds this one). */
    layout: z.enum(['uno', 'mega2560']).default('uno'),
    /**
     * Output the station toggles (rig/jig/heartbeat.ts) while any mains relay of this board may be
     * on; it feeds the charge-pump watchdog relay in series with the mains contactor coils
     * (fixtures/jigs/README.md). Without it mains stays on if the host dies; `jig check` warns.
     */
    heartbeat: PinSchema.optional(),
  })
  .strict();

export const MeterSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('pzem004t'),
    port: z.string().min(1),
    address: z.number().int().min(1).max(0xf8).default(0xf8),
    serial: z.string().optional(),
    calibrationDate: z.string().optional(),
  }).strict(),
  z.object({
    kind: z.literal('scpi'),
    model: z.string().default('WT310E'),
    /** tcp://host:port, a serial path, or usbtmc:VID:PID[:serial]. */
    address: z.string().min(1),
    serial: z.string().optional(),
    calibrationDate: z.string().optional(),
  }).strict(),
]);
export type MeterSpec = z.infer<typeof MeterSchema>;

const FeedImpedanceSchema = z.object({ ohms: z.number().min(0), xOhms: z.number().min(0) }).strict();

export const MainsGroupSchema = z
  .object({
    pin: PinSchema,
    /** Slot ids the relay feeds (at least two; a slot is in at most one group). */
    slots: z.array(z.number().int().min(1)).min(2),
  })
  .strict();
export type MainsGroupSpec = z.infer<typeof MainsGroupSchema>;

export const JigSchema = z
  .object({
    name: z.string().min(1),
    description: z.string().optional(),
    ioBoards: z.record(IoBoardSchema),
    meters: z.record(MeterSchema),
    /**
     * The mains supply: nominal volts and hz (the virtual jig's supply; the station's voltage-step
     * estimates), and which slots share a feed (rig/jig/mains-feeds.ts): `impedance` is every feed's
     * source impedance unless the feed states its own (R and X at the nominal frequency; default IEC
     * 60725's reference, 0.4 + j0.25 Ω); `feeds` by name lists each feed's slots (every slot on
     * exactly one; default: all slots on one feed). Slots on isolated feeds (a transformer each) do
     * not see each other's load switches.
     */
    mains: z
      .object({
        volts: z.number().positive().default(230),
        hz: z.number().positive().default(50),
        impedance: FeedImpedanceSchema.optional(),
        feeds: z.record(z.object({ slots: z.array(z.number().int().min(1)).min(1), impedance: FeedImpedanceSchema.optional() }).strict()).optional(),
      })
      .strict()
      .default({}),
    /**
     * Provisioning defaults: the station network's SSID, and a secrets file (KEY=VALUE lines:
     * PLUGRIG_WIFI_PASS, PLUGRIG_WEB_PASS) read when the environment does not give them.
     */
    provisioning: z.object({ wifiSsid: z.string().min(1).max(63).optional(), secrets: z.string().min(1).optional() }).strict().optional(),
    /** Interlock timing: break-before-make settle between isolating UART and closing mains. */
    interlock: z.object({ settleMs: z.number().min(0).default(100) }).strict().default({}),
    /** Virtual jig only: faults injected in every slot of the run (rig/jig/fault-spec.ts). */
    faults: FaultsSchema.optional(),
    /**
     * Mains relays that feed several slots (one pin, one contactor): by group name, the pin and the
     * slots it feeds. Every member's `pins.mains` names that pin on the same I/O board; the station
     * switches the group once, when every member is ready for it (rig/jig/mains-group.ts).
     */
    mainsGroups: z.record(MainsGroupSchema).optional(),
    slots: z.array(SlotSchema).min(1),
  })
  // The cross-checks (pins, ports, references) run in parseJig on the raw object: they need to know
  // which fields the file left to their defaults (an unnamed board layout is inferred from its pins).
  .strict();
export type JigSpec = z.infer<typeof JigSchema>;

interface CrossIssue {
  path: Array<string | number>;
  message: string;
}

/** Inputs several slots may share on one board (one lid, one E-stop chain for the whole jig). */
const SHAREABLE_INPUTS = new Set(['lid', 'estop']);

/**
 * The pins StandardFirmata offers per board (its Boards.h): digital 2..total-1 (0/1 are the USB serial
 * link to the host), analog inputs A0.. on the digital pins from `analogFirst` (Uno A0 = pin 14).
 */
const BOARD_PINS = {
  uno: { totalPins: 20, analogFirst: 14, analogCount: 6 },
  mega2560: { totalPins: 70, analogFirst: 54, analogCount: 16 },
} as const;

/**
 * The layout a board's pins are checked against: the one the file names, else (like the virtual jig)
 * an Uno when every pin fits one, else a Mega 2560.
 */
function boardLayout(name: string, board: Record<string, unknown> | undefined, slots: unknown[]): keyof typeof BOARD_PINS {
  if (board?.layout === 'uno' || board?.layout === 'mega2560') return board.layout;
  const pinOf = (p: unknown): number | undefined => (typeof p === 'number' ? p : p && typeof p === 'object' ? ((p as { pin?: unknown }).pin as number | undefined) : undefined);
  const digital: number[] = [];
  const analog: number[] = [];
  const hb = pinOf(board?.heartbeat);
  if (typeof hb === 'number') digital.push(hb);
  for (const raw of slots) {
    const slot = raw as { io?: unknown; pins?: Record<string, unknown>; meter?: { select?: unknown } } | null;
    if (!slot || slot.io !== name || !slot.pins || typeof slot.pins !== 'object') continue;
    const select = pinOf(slot.meter?.select);
    if (typeof select === 'number') digital.push(select);
    for (const [k, v] of Object.entries(slot.pins)) {
      if (k === 'ledSensor') {
        const a = (v as { analog?: unknown } | null)?.analog;
        if (typeof a === 'number') analog.push(a);
      } else if (k === 'loads' && Array.isArray(v)) for (const l of v) digital.push(pinOf((l as { pin?: unknown } | null)?.pin) ?? 0);
      else digital.push(pinOf(v) ?? 0);
    }
  }
  const uno = BOARD_PINS.uno;
  const fitsUno = digital.every((d) => d < uno.totalPins) && analog.every((a) => a < uno.analogCount && !digital.includes(uno.analogFirst + a));
  return fitsUno ? 'uno' : 'mega2560';
}

/** How a serial port is named in a jig file, for telling whether two users share one. */
function serialKeys(ref: Record<string, unknown> | undefined, portKey = 'port'): string[] {
  if (!ref) return [];
  const keys: string[] = [];
  if (typeof ref[portKey] === 'string') keys.push(`port ${String(ref[portKey])}`);
  if (typeof ref.usbPath === 'string') keys.push(`USB path ${ref.usbPath}`);
  if (typeof ref.serialNumber === 'string') keys.push(`serial number ${ref.serialNumber}`);
  return keys;
}

/**
 * Cross-references, pins the board does not have, pin and port clashes. Works on the raw (possibly
 * invalid) object, so a file with missing fields AND an unknown board reports both in one ConfigError.
 */
function crossCheck(raw: unknown): CrossIssue[] {
  const out: CrossIssue[] = [];
  const rec = (v: unknown): Record<string, unknown> | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined);
  const jig = rec(raw);
  const slots = Array.isArray(jig?.slots) ? (jig.slots as unknown[]) : [];
  const boards = rec(jig?.ioBoards) ?? {};
  const meters = rec(jig?.meters) ?? {};
  const ids = new Set<unknown>();
  // board -> pin -> first user ("slot 1 mains")
  const used = new Map<string, Map<number, { slot: number; fn: string }>>();
  // USB outputs are jig-wide: "dcttech serial ABCDE ch 1" / "hub 1-1 port 3" -> first user
  const usbUsed = new Map<string, string>();
  const layouts = new Map(Object.keys(boards).map((name) => [name, boardLayout(name, rec(boards[name]), slots)]));
  const layoutOf = (board: string): keyof typeof BOARD_PINS => layouts.get(board) ?? 'uno';
  /** A pin the board does not have, or its serial link; undefined when the pin exists. */
  const missingPin = (board: string, n: number): string | undefined => {
    const layout = layoutOf(board);
    const b = BOARD_PINS[layout];
    if (n < 2) return `pin ${n} on ${board} is the board's serial link to the host (StandardFirmata uses pins 0 and 1); use pins 2..${b.totalPins - 1}`;
    if (n >= b.totalPins) return `pin ${n} does not exist on ${board} (${layout}: pins 2..${b.totalPins - 1}${layout === 'uno' ? '; a Mega 2560 needs "layout": "mega2560"' : ''})`;
    return undefined;
  };
  /** "pin 14 (A0)" for a digital pin that is also an analog input. */
  const pinLabel = (board: string, n: number): string => {
    const b = BOARD_PINS[layoutOf(board)];
    return n >= b.analogFirst && n < b.analogFirst + b.analogCount ? `pin ${n} (A${n - b.analogFirst})` : `pin ${n}`;
  };
  for (const [name, b] of Object.entries(boards)) {
    const hb = rec(b)?.heartbeat;
    const n = typeof hb === 'number' ? hb : rec(hb)?.pin;
    if (typeof n !== 'number') continue;
    const missing = missingPin(name, n);
    if (missing) out.push({ path: ['ioBoards', name, 'heartbeat'], message: missing });
    used.set(name, new Map([[n, { slot: -1, fn: 'heartbeat' }]]));
  }
  checkSerialPortsShared(jig, out);
  const groupOf = checkMainsGroups(jig, slots, out);
  checkMainsFeeds(jig, slots, out);
  const claimUsb = (path: Array<string | number>, key: string, what: string, who: string): void => {
    const prev = usbUsed.get(key);
    if (prev) out.push({ path, message: `${what} already used by ${prev}` });
    else usbUsed.set(key, who);
  };
  slots.forEach((rawSlot, i) => {
    const s = rec(rawSlot);
    if (!s) return;
    if (ids.has(s.id)) out.push({ path: ['slots', i, 'id'], message: `duplicate slot id ${String(s.id)}` });
    ids.add(s.id);
    if (typeof s.io === 'string' && !boards[s.io]) out.push({ path: ['slots', i, 'io'], message: `unknown I/O board "${s.io}"` });
    const ref = rec(s.meter)?.ref;
    if (typeof ref === 'string' && !meters[ref]) out.push({ path: ['slots', i, 'meter', 'ref'], message: `unknown meter "${ref}"` });
    const pins = rec(s.pins);
    if (!pins || typeof s.io !== 'string') return;
    const onBoard = used.get(s.io) ?? new Map<number, { slot: number; fn: string }>();
    used.set(s.io, onBoard);
    const claim = (path: Array<string | number>, fn: string, p: unknown): void => {
      const n = typeof p === 'number' ? p : rec(p)?.pin;
      if (typeof n !== 'number' || typeof s.io !== 'string') return;
      const missing = missingPin(s.io, n);
      if (missing) {
        out.push({ path, message: missing });
        return;
      }
      const prev = onBoard.get(n);
      const inOneGroup = fn === 'mains' && prev !== undefined && prev.fn === 'mains' && groupOf.get(s.id) !== undefined && groupOf.get(s.id) === groupOf.get(rec(slots[prev.slot])?.id);
      const shared = prev && prev.slot !== i && prev.fn === fn && (SHAREABLE_INPUTS.has(fn) || inOneGroup);
      if (prev && !shared) {
        const who = prev.slot === i || prev.slot < 0 ? prev.fn : `slot ${String(rec(slots[prev.slot])?.id)} ${prev.fn}`;
        const hint = fn === 'mains' && prev.fn === 'mains' && prev.slot !== i ? ' (one mains relay for several slots: declare them in "mainsGroups")' : '';
        out.push({ path, message: `${pinLabel(s.io, n)} on ${s.io} already used by ${who}${hint}` });
      }
      if (!prev) onBoard.set(n, { slot: i, fn });
    };
    /** The LED sensor's analog input occupies its digital pin (Uno A0 = pin 14): claimed as such. */
    const claimAnalog = (path: Array<string | number>, a: unknown): void => {
      if (typeof a !== 'number' || typeof s.io !== 'string') return;
      const layout = layoutOf(s.io);
      const b = BOARD_PINS[layout];
      if (a >= b.analogCount) {
        out.push({ path, message: `analog ${a} does not exist on ${s.io} (${layout}: A0..A${b.analogCount - 1})` });
        return;
      }
      claim(path, `ledSensor (A${a})`, b.analogFirst + a);
    };
    // StandardFirmata drives every digital output LOW when the board boots or resets, before the
    // host has said anything: an active-low mains relay would close by itself.
    if (rec(pins.mains)?.activeLow === true) {
      out.push({ path: ['slots', i, 'pins', 'mains'], message: 'the mains relay must not be active-low: StandardFirmata boots with outputs LOW, which would energise mains' });
    }
    for (const [name, p] of Object.entries(pins)) {
      if (name === 'loads' || name === 'ledSensor') continue;
      claim(['slots', i, 'pins', name], name, p);
    }
    claim(['slots', i, 'meter', 'select'], 'meter select', rec(s.meter)?.select);
    claimAnalog(['slots', i, 'pins', 'ledSensor', 'analog'], rec(pins.ledSensor)?.analog);
    const p3 = rec(pins.power3v3);
    if (p3?.kind === 'hub-port' && typeof p3.hubUsbPath === 'string' && typeof p3.port === 'number') {
      claimUsb(['slots', i, 'pins', 'power3v3'], `hub ${p3.hubUsbPath} port ${p3.port}`, `hub ${p3.hubUsbPath} port ${p3.port}`, `slot ${String(s.id)} power3v3`);
    }
    if (!Array.isArray(pins.loads)) return;
    pins.loads.forEach((rawLoad, k) => {
      const l = rec(rawLoad);
      if (!l) return;
      const at = ['slots', i, 'pins', 'loads', k];
      const fn = `load ${String(l.name)}`;
      if ((l.pin === undefined) === (l.relay === undefined)) {
        out.push({ path: at, message: `load ${String(l.name)} needs exactly one of "pin" (I/O board) or "relay" (dcttech USB relay)` });
      }
      claim([...at, 'pin'], fn, l.pin);
      const r = rec(l.relay);
      if (r && typeof r.channel === 'number') {
        // Boards are told apart by serial when given (it survives re-plugging), else by USB path.
        const board = typeof r.serial === 'string' ? `serial "${r.serial}"` : typeof r.usbPath === 'string' ? `at ${r.usbPath}` : undefined;
        if (board) claimUsb([...at, 'relay'], `dcttech ${board} ch ${r.channel}`, `dcttech board ${board} channel ${r.channel}`, `slot ${String(s.id)} ${fn}`);
      }
    });
  });
  return out;
}

/**
 * Mains groups: known slots, each in one group at most, all on one I/O board, each member's
 * pins.mains the group's pin. Returns slot id -> group name (for the pin-clash check).
 */
function checkMainsGroups(jig: Record<string, unknown> | undefined, slots: unknown[], out: CrossIssue[]): Map<unknown, string> {
  const rec = (v: unknown): Record<string, unknown> | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined);
  const groupOf = new Map<unknown, string>();
  const pinOf = (p: unknown): number | undefined => (typeof p === 'number' ? p : typeof rec(p)?.pin === 'number' ? (rec(p)!.pin as number) : undefined);
  for (const [name, g] of Object.entries(rec(jig?.mainsGroups) ?? {})) {
    const group = rec(g);
    const members = Array.isArray(group?.slots) ? (group.slots as unknown[]) : [];
    const pin = pinOf(group?.pin);
    const boards = new Set<unknown>();
    if (rec(group?.pin)?.activeLow === true) out.push({ path: ['mainsGroups', name, 'pin'], message: 'the mains relay must not be active-low: StandardFirmata boots with outputs LOW, which would energise mains' });
    members.forEach((id, k) => {
      const at = ['mainsGroups', name, 'slots', k];
      const slot = slots.map(rec).find((s) => s?.id === id);
      if (!slot) {
        out.push({ path: at, message: `mains group ${name}: no slot ${String(id)} in this jig` });
        return;
      }
      const prev = groupOf.get(id);
      if (prev !== undefined) {
        out.push({ path: at, message: `slot ${String(id)} is in mains groups ${prev} and ${name}; a plug has one mains feed` });
        return;
      }
      groupOf.set(id, name);
      boards.add(slot.io);
      const own = pinOf(rec(slot.pins)?.mains);
      if (pin !== undefined && own !== undefined && own !== pin) {
        out.push({ path: at, message: `slot ${String(id)} is fed by mains group ${name} (pin ${pin}) but its pins.mains is ${own}; write the group's pin there` });
      }
    });
    if (boards.size > 1) out.push({ path: ['mainsGroups', name, 'slots'], message: `mains group ${name}: its slots are on different I/O boards (${[...boards].map(String).join(', ')}); one relay pin is on one board` });
  }
  return groupOf;
}

/**
 * Mains feeds: when the file names them, every slot hangs on exactly one, every listed slot exists,
 * and a mains group's slots (one relay) are on one feed.
 */
function checkMainsFeeds(jig: Record<string, unknown> | undefined, slots: unknown[], out: CrossIssue[]): void {
  const rec = (v: unknown): Record<string, unknown> | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined);
  const feeds = rec(rec(jig?.mains)?.feeds);
  if (!feeds) return;
  const ids: unknown[] = slots.map((s) => rec(s)?.id).filter((id) => id !== undefined);
  const feedOf = new Map<unknown, string>();
  for (const [name, f] of Object.entries(feeds)) {
    const members = Array.isArray(rec(f)?.slots) ? (rec(f)!.slots as unknown[]) : [];
    members.forEach((id, k) => {
      const at = ['mains', 'feeds', name, 'slots', k];
      if (!ids.includes(id)) out.push({ path: at, message: `mains feed ${name}: no slot ${String(id)} in this jig` });
      else if (feedOf.has(id)) out.push({ path: at, message: `slot ${String(id)} is on mains feeds ${feedOf.get(id)!} and ${name}; a plug has one mains feed` });
      else feedOf.set(id, name);
    });
  }
  const missing = ids.filter((id) => !feedOf.has(id));
  if (missing.length) out.push({ path: ['mains', 'feeds'], message: `slot ${missing.map(String).join(', ')} on no mains feed; list every slot in one of ${Object.keys(feeds).join(', ')}` });
  for (const [name, g] of Object.entries(rec(jig?.mainsGroups) ?? {})) {
    const members = Array.isArray(rec(g)?.slots) ? (rec(g)!.slots as unknown[]) : [];
    const on = new Set(members.map((id) => feedOf.get(id)).filter((x) => x !== undefined));
    if (on.size > 1) out.push({ path: ['mainsGroups', name, 'slots'], message: `mains group ${name}: one relay feeds its slots, but the jig file puts them on mains feeds ${[...on].join(', ')}` });
  }
}

/**
 * One serial port, one user: two slots on one UART (or a slot UART on an I/O board's or meter's port)
 * would interleave two conversations on one wire — a configuration error, not a failed unit. PZEM
 * meters alone may share a port (one Modbus bus) when their addresses differ.
 */
function checkSerialPortsShared(jig: Record<string, unknown> | undefined, out: CrossIssue[]): void {
  const rec = (v: unknown): Record<string, unknown> | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined);
  const owners = new Map<string, { who: string; modbus?: number }>();
  const take = (path: Array<string | number>, keys: string[], who: string, modbus?: number): void => {
    for (const key of keys) {
      const prev = owners.get(key);
      if (!prev) {
        owners.set(key, { who, ...(modbus !== undefined ? { modbus } : {}) });
        continue;
      }
      if (prev.modbus !== undefined && modbus !== undefined) {
        if (prev.modbus === modbus) out.push({ path, message: `${who} on ${key} has the same Modbus address ${modbus} as ${prev.who}` });
        // 0xF8 reaches every slave on the line: with two PZEMs both would answer at once.
        else if (modbus === 0xf8 || prev.modbus === 0xf8) out.push({ path, message: `${who} shares ${key} with ${prev.who}: PZEMs on one Modbus line each need their own "address" 1..247 (0xF8, the default, is the general address, valid with a single slave only)` });
        continue;
      }
      out.push({ path, message: `serial ${key} is already ${prev.who}; each slot UART, I/O board and meter needs its own port` });
      return;
    }
  };
  for (const [name, b] of Object.entries(rec(jig?.ioBoards) ?? {})) take(['ioBoards', name], serialKeys(rec(b)), `I/O board ${name}'s port`);
  for (const [name, m] of Object.entries(rec(jig?.meters) ?? {})) {
    const meter = rec(m);
    if (meter?.kind === 'pzem004t') take(['meters', name, 'port'], serialKeys(meter), `meter ${name}`, typeof meter.address === 'number' ? meter.address : 0xf8);
    else if (meter?.kind === 'scpi' && typeof meter.address === 'string' && !/^(tcp|usbtmc):/.test(meter.address)) {
      take(['meters', name, 'address'], serialKeys(meter, 'address'), `meter ${name}'s port`);
    }
  }
  const slots = Array.isArray(jig?.slots) ? (jig.slots as unknown[]) : [];
  slots.forEach((raw, i) => {
    const slot = rec(raw);
    take(['slots', i, 'uart'], serialKeys(rec(slot?.uart)), `slot ${String(slot?.id)}'s UART`);
  });
}

export function isHubPort(p: Power3v3Spec): p is HubPortRef {
  return typeof p === 'object' && 'kind' in p && p.kind === 'hub-port';
}

/** The slot switches a load or its 3V3 through USB devices (not only I/O-board pins). */
export function slotUsesUsb(slot: SlotSpec): boolean {
  return isHubPort(slot.pins.power3v3) || slot.pins.loads.some((l) => l.relay !== undefined);
}

export function pinNumber(p: PinSpec): number {
  return typeof p === 'number' ? p : p.pin;
}
export function pinActiveLow(p: PinSpec): boolean {
  return typeof p === 'number' ? false : p.activeLow;
}

/** Validate a parsed object; throws one ConfigError listing every problem with its path. */
export function parseJig(input: unknown, source = '<jig>'): JigSpec {
  const r = JigSchema.safeParse(input);
  const cross = crossCheck(input);
  if (r.success && cross.length === 0) return r.data;
  const issues: CrossIssue[] = r.success ? [] : r.error.issues.map((i) => ({ path: i.path, message: i.message }));
  for (const c of cross) {
    if (!issues.some((i) => i.path.join('.') === c.path.join('.') && i.message === c.message)) issues.push(c);
  }
  const problems = issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
  throw new ConfigError(`invalid jig file ${source}:\n  ${problems.join('\n  ')}`, { step: 'jig-config', problems });
}

export function loadJigFile(path: string): JigSpec {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read jig file ${path}: ${(e as Error).message}`, { step: 'jig-config' }, { cause: e });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`jig file ${path} is not valid JSON: ${(e as Error).message}`, { step: 'jig-config' }, { cause: e });
  }
  return parseJig(data, path);
}
