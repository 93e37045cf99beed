import { FakeUsbSource } from '../usb/fake-usb-source.ts';
import { VirtualDcttechRelay } from '../usb/virtual-dcttech-relay.ts';
import { VirtualHub } from '../usb/virtual-hub.ts';
import type { VirtualSlot } from './virtual-jig.ts';

/** "1-1.3" -> bus 1, ports [1, 3]. */
function location(usbPath: string): { busNumber: number; portNumbers: number[] } {
  const [bus, chain] = usbPath.split('-');
  return { busNumber: Number(bus), portNumbers: chain!.split('.').map(Number) };
}

/** Relay boards come with 1, 2, 4 or 8 channels. */
function boardSize(maxChannel: number): number {
  return [1, 2, 4, 8].find((n) => n >= maxChannel) ?? 8;
}

/**
 * The USB side of the virtual jig: one dcttech USBRelayN board per distinct board the jig file
 * names (by serial, else by USB path), one per-port-switched USB 2.0 hub per hub path, all on a
 * FakeUsbSource the host opens like the real bus. Relay channels close the slot's loads on the
 * mains network; a hub port's power is the slot's 3V3.
 */
export class VirtualUsbBus {
  readonly source = new FakeUsbSource();
  /** By the serial the jig file names, or `@<usbPath>` for a board named by position only. */
  readonly relays = new Map<string, VirtualDcttechRelay>();
  /** By the hub's USB path. */
  readonly hubs = new Map<string, VirtualHub>();

  constructor(slots: readonly VirtualSlot[]) {
    const boards = new Map<string, { serial?: string; usbPath?: string; maxChannel: number; users: Array<{ slot: VirtualSlot; load: string; channel: number }> }>();
    const hubPorts = new Map<string, Array<{ slot: VirtualSlot; port: number }>>();
    for (const slot of slots) {
      for (const load of slot.wiring.loads) {
        const r = load.relay;
        if (!r) continue;
        const key = r.serial ?? `@${r.usbPath}`;
        const b = boards.get(key) ?? { maxChannel: 0, users: [] };
        if (r.serial !== undefined) b.serial = r.serial;
        if (r.usbPath !== undefined) b.usbPath = r.usbPath;
        b.maxChannel = Math.max(b.maxChannel, r.channel);
        b.users.push({ slot, load: load.name, channel: r.channel });
        boards.set(key, b);
      }
      const p3 = slot.wiring.power3v3;
      if ('hub' in p3) hubPorts.set(p3.hub.hubUsbPath, [...(hubPorts.get(p3.hub.hubUsbPath) ?? []), { slot, port: p3.hub.port }]);
    }

    let spare = 0;
    for (const [key, b] of boards) {
      const relay = new VirtualDcttechRelay(b.serial ?? `SIM${String(++spare).padStart(2, '0')}`, boardSize(b.maxChannel));
      // A board named by serial only sits on a bus of its own, clear of every hub path in the file.
      this.source.add(relay.spec(b.usbPath ? location(b.usbPath) : { busNumber: 9, portNumbers: [this.relays.size + 1] }));
      relay.onChange((mask) => {
        for (const u of b.users) u.slot.setLoadRelay(u.load, ((mask >> (u.channel - 1)) & 1) === 1);
      });
      this.relays.set(key, relay);
    }
    for (const [hubPath, users] of hubPorts) {
      const hub = new VirtualHub({ ports: Math.max(4, ...users.map((u) => u.port)) });
      this.source.add(hub.spec(location(hubPath)));
      hub.onPowerChange((port, powered) => {
        for (const u of users) if (u.port === port) u.slot.setHubPower(powered);
      });
      // Enumeration powers every port: 3V3 is on until the interlock's init switches it off.
      for (const u of users) u.slot.setHubPower(hub.powered[u.port - 1]!);
      this.hubs.set(hubPath, hub);
    }
  }

  /** Is this relay channel's board or this hub one of ours? */
  models(ref: { kind: 'dcttech'; serial?: string; usbPath?: string } | { kind: 'hub-port'; hubUsbPath: string }): boolean {
    if (ref.kind === 'hub-port') return this.hubs.has(ref.hubUsbPath);
    return (ref.serial !== undefined && this.relays.has(ref.serial)) || (ref.usbPath !== undefined && this.relays.has(`@${ref.usbPath}`));
  }

  /** Does the jig switch anything over USB? */
  get used(): boolean {
    return this.relays.size + this.hubs.size > 0;
  }
}
