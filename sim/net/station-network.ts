import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Clock } from '../../rig/core/clock.ts';
import { ConfigError, TransportError } from '../../rig/core/errors.ts';
import type { ObkWifiEnvironment } from '../plug/obk/contracts.ts';

/**
 * The station's Wi-Fi network as the virtual plugs see it: one access point (SSID + WPA2 password),
 * a DHCP server, and a router that makes every plug reachable from this machine over loopback.
 *
 * Addressing: a joined plug's leased IP IS a loopback address (127.77.0.2, 127.77.0.3, ... by order
 * of first join, stable per MAC), and every plug serves HTTP on the network's one `httpPort` there,
 * so a client that finds a plug by MAC in the leases file connects to `<ip>:<httpPort>`, as on a
 * real station LAN where every plug serves port 80. A plug in AP mode (192.168.4.1 on its own
 * network) is reached at its own loopback address 127.4.<n>.1 on the same port. Nothing binds
 * beyond loopback.
 *
 * The leases file is dnsmasq's format, one line per lease: `<expiry epoch s> <mac> <ip> <hostname>
 * <client-id>`, rewritten atomically on every change.
 */

export interface StationNetworkOptions {
  clock: Clock;
  ssid: string;
  pass: string;
  /** dnsmasq-format leases file to keep up to date (none: leases are only in memory). */
  leasesFile?: string;
  /** Port every plug serves HTTP on (0: the first plug to listen picks a free one for all). */
  httpPort?: number;
  /** Address of the first lease; later ones count up. Default 127.77.0.2. */
  firstIp?: string;
  /** Association + 4-way handshake, ms (UNCERTAIN: ~1 s on BK7231N), and DHCP, ms. */
  associateMs?: number;
  dhcpMs?: number;
  /** A wrong password is noticed after the handshake times out, ms. */
  authFailMs?: number;
  /** Lease time written into the leases file, s. */
  leaseSeconds?: number;
}

export interface Lease {
  mac: string;
  ip: string;
  hostname: string;
  /** Wall-clock expiry, s since the epoch (as dnsmasq writes it). */
  expiry: number;
}

export interface PlugAttachment {
  /** DHCP hostname the plug sends (OpenBeken: its short device name). */
  hostname(): string;
}

export type JoinFailure = 'no-network' | 'auth-failed' | 'never-joins';

export class WifiJoinError extends TransportError {
  readonly reason: JoinFailure;
  constructor(reason: JoinFailure, message: string, context: Record<string, unknown>) {
    super(message, { step: 'wifi-join', ...context });
    this.reason = reason;
  }
}

const macText = (mac: Uint8Array): string => Array.from(mac, (b) => b.toString(16).padStart(2, '0')).join(':');

function ipPlus(base: string, n: number): string {
  const p = base.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !(x >= 0 && x <= 255))) throw new ConfigError(`not an IPv4 address: ${base}`, { step: 'station-network' });
  const v = (((p[0]! << 24) >>> 0) + (p[1]! << 16) + (p[2]! << 8) + p[3]! + n) >>> 0;
  return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.');
}

export class StationNetwork implements ObkWifiEnvironment {
  readonly clock: Clock;
  readonly ssid: string;
  readonly leasesFile: string | undefined;
  #pass: string;
  #httpPort: number;
  readonly #o: Required<Pick<StationNetworkOptions, 'associateMs' | 'dhcpMs' | 'authFailMs' | 'leaseSeconds' | 'firstIp'>>;
  /** IP index per MAC, stable across re-joins (dnsmasq remembers its leases). */
  readonly #index = new Map<string, number>();
  readonly #leases = new Map<string, Lease>();
  readonly #ap = new Set<string>();
  readonly #attached = new Map<string, PlugAttachment>();
  readonly #neverJoins = new Set<string>();
  readonly #listeners = new Set<(lease: Lease, event: 'add' | 'del') => void>();

  constructor(o: StationNetworkOptions) {
    if (!o.ssid) throw new ConfigError('station network needs an SSID', { step: 'station-network' });
    this.clock = o.clock;
    this.ssid = o.ssid;
    this.#pass = o.pass;
    this.leasesFile = o.leasesFile;
    this.#httpPort = o.httpPort ?? 0;
    this.#o = {
      associateMs: o.associateMs ?? 1200,
      dhcpMs: o.dhcpMs ?? 400,
      authFailMs: o.authFailMs ?? 4000,
      leaseSeconds: o.leaseSeconds ?? 43200,
      firstIp: o.firstIp ?? '127.77.0.2',
    };
    this.#writeLeases();
  }

  /** The port plugs serve HTTP on; 0 until the first plug has listened (then fixed for all). */
  get httpPort(): number {
    return this.#httpPort;
  }

  /** The first plug's listener picked a free port: every later plug uses it too. */
  adoptHttpPort(port: number): void {
    if (this.#httpPort === 0) this.#httpPort = port;
  }

  /** A plug on the network's air: its DHCP hostname, and defects tied to its MAC. */
  attach(mac: Uint8Array, plug: PlugAttachment, defects: { neverJoins?: boolean } = {}): void {
    const key = macText(mac);
    this.#attached.set(key, plug);
    if (defects.neverJoins) this.#neverJoins.add(key);
    else this.#neverJoins.delete(key);
    this.#indexOf(key);
  }

  /** Change the station's password (an operator mistake, or a test of the auth-failure path). */
  setPassword(pass: string): void {
    this.#pass = pass;
  }

  async join(mac: Uint8Array, ssid: string, pass: string, signal: AbortSignal): Promise<{ ip: string }> {
    const key = macText(mac);
    const wait = async (ms: number): Promise<void> => {
      if (signal.aborted) throw new WifiJoinError('never-joins', 'join aborted', { mac: key });
      await this.clock.sleep(ms);
      if (signal.aborted) throw new WifiJoinError('never-joins', 'join aborted', { mac: key });
    };
    if (ssid !== this.ssid) {
      await wait(this.#o.authFailMs);
      throw new WifiJoinError('no-network', `no network "${ssid}" in range`, { mac: key });
    }
    if (this.#neverJoins.has(key)) {
      await wait(this.#o.authFailMs);
      throw new WifiJoinError('never-joins', 'association times out (defect: Wi-Fi never joins)', { mac: key });
    }
    await wait(this.#o.associateMs);
    if (pass !== this.#pass) {
      await wait(this.#o.authFailMs - this.#o.associateMs);
      // The password itself never goes into the error.
      throw new WifiJoinError('auth-failed', `4-way handshake with "${ssid}" failed (wrong password)`, { mac: key });
    }
    await wait(this.#o.dhcpMs);
    const ip = this.staAddress(mac);
    this.#ap.delete(key);
    const lease: Lease = {
      mac: key,
      ip,
      hostname: this.#attached.get(key)?.hostname() || '*',
      expiry: Math.floor(Date.now() / 1000) + this.#o.leaseSeconds,
    };
    this.#leases.set(key, lease);
    this.#writeLeases();
    for (const fn of this.#listeners) fn(lease, 'add');
    return { ip };
  }

  openAccessPoint(mac: Uint8Array, _ssid: string): void {
    this.#ap.add(macText(mac));
  }

  leave(mac: Uint8Array): void {
    const key = macText(mac);
    this.#ap.delete(key);
    // The DHCP lease outlives the association (dnsmasq keeps it until expiry), as on a real LAN.
  }

  /** Forget a plug's lease (the station's DHCP server was reset, a unit left the rig). */
  release(mac: Uint8Array): void {
    const key = macText(mac);
    const lease = this.#leases.get(key);
    if (!lease) return;
    this.#leases.delete(key);
    this.#writeLeases();
    for (const fn of this.#listeners) fn(lease, 'del');
  }

  leases(): Lease[] {
    return [...this.#leases.values()];
  }

  lease(mac: Uint8Array | string): Lease | undefined {
    return this.#leases.get(typeof mac === 'string' ? mac.toLowerCase() : macText(mac));
  }

  onLease(listener: (lease: Lease, event: 'add' | 'del') => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Where a plug with this MAC is reached on the station network (its lease address). */
  staAddress(mac: Uint8Array): string {
    return ipPlus(this.#o.firstIp, this.#indexOf(macText(mac)));
  }

  /** Where this plug's own AP (192.168.4.1 on its network) is reached from here. */
  apAddress(mac: Uint8Array): string {
    const v = this.#indexOf(macText(mac)) + 1;
    return `127.4.${(v >> 8) & 255}.${v & 255}`;
  }

  /** The plug is in AP mode now. */
  inApMode(mac: Uint8Array): boolean {
    return this.#ap.has(macText(mac));
  }

  #indexOf(key: string): number {
    let n = this.#index.get(key);
    if (n === undefined) {
      n = this.#index.size;
      this.#index.set(key, n);
    }
    return n;
  }

  #writeLeases(): void {
    if (!this.leasesFile) return;
    const lines = [...this.#leases.values()].map((l) => `${l.expiry} ${l.mac} ${l.ip} ${l.hostname} 01:${l.mac}\n`);
    mkdirSync(dirname(this.leasesFile), { recursive: true });
    const tmp = `${this.leasesFile}.tmp`;
    writeFileSync(tmp, lines.join(''));
    renameSync(tmp, this.leasesFile);
  }
}

/**
 * A TCP port that is free on the station network's loopback range right now, for `httpPort`, so every
 * plug listens on the same one from its first boot (a client that finds plugs by lease needs one port).
 */
export async function freeStationPort(host = '127.77.0.1'): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen({ host, port: 0 }, () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}
