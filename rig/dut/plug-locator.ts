/**
 * Finding a slot's plug on the network: a fixed URL from the jig file, a `sim:` address resolved by
 * the composition root (the virtual jig's endpoint resolver), or the MAC read over the ROM looked
 * up in the station network's DHCP leases (dnsmasq: `<expiry> <mac> <ip> <hostname> <clientid>`).
 */
import { readFile } from 'node:fs/promises';
import { RealClock, type Clock } from '../core/clock.ts';
import { ConfigError, TimeoutError } from '../core/errors.ts';
import type { PlugLocationSpec } from '../jig/jig-config.ts';
import { macBytes } from '../obk/config-sector.ts';

export interface PlugLocation {
  /** `http://host[:port]` */
  url: string;
  /** How it was found, for messages. */
  via: string;
}

/**
 * Resolves a non-http address (`sim:plug1`) to a base URL; supplied by cli/, absent on a real
 * station. Undefined means "not reachable yet" (the plug is still booting or joining): keep asking.
 */
export type HttpAddressResolver = (address: string) => { baseUrl: string; via: string } | undefined;

export interface DhcpLease {
  /** Seconds since the epoch; 0 = infinite. */
  expiry: number;
  mac: string;
  ip: string;
  hostname: string;
  clientId: string;
}

/** Parse a dnsmasq leases file (IPv6 "duid" lines and malformed lines are skipped). */
export function parseDnsmasqLeases(text: string): DhcpLease[] {
  const out: DhcpLease[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || !/^\d+$/.test(f[0]!)) continue;
    if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(f[1]!) || !/^\d{1,3}(\.\d{1,3}){3}$/.test(f[2]!)) continue;
    out.push({ expiry: Number(f[0]), mac: f[1]!.toLowerCase(), ip: f[2]!, hostname: f[3]!, clientId: f[4] ?? '*' });
  }
  return out;
}

const normMac = (mac: string): string => Array.from(macBytes(mac), (b) => b.toString(16).padStart(2, '0')).join(':');

/** The newest unexpired lease of this MAC (dnsmasq appends; a renewed lease can appear twice). */
export function findLease(leases: readonly DhcpLease[], mac: string, nowEpochS: number): DhcpLease | undefined {
  const want = normMac(mac);
  const live = leases.filter((l) => l.mac === want && (l.expiry === 0 || l.expiry > nowEpochS));
  return live.sort((a, b) => (b.expiry || Infinity) - (a.expiry || Infinity))[0];
}

export interface LocateOptions {
  slot: number;
  /** MAC read over the ROM (needed for `leases`). */
  mac?: string;
  resolveHttp?: HttpAddressResolver;
  clock?: Clock;
  /** Override the jig's leaseTimeoutMs (default 60 s: join + DHCP on a real network). */
  timeoutMs?: number;
  pollMs?: number;
  /** Wall-clock seconds, for lease expiry. */
  nowEpochS?: () => number;
}

/** Where the slot's plug is; waits for a DHCP lease when it is found by MAC. */
export async function locatePlug(spec: PlugLocationSpec | undefined, o: LocateOptions): Promise<PlugLocation> {
  if (!spec) {
    throw new ConfigError(`slot ${o.slot} has no "plug" section: give "plug": {"url": "http://..."} or {"leases": "/var/lib/misc/dnsmasq.leases"}`, { slot: o.slot, step: 'locate-plug' });
  }
  if (spec.url !== undefined) {
    if (/^https?:\/\//i.test(spec.url)) return { url: spec.url.replace(/\/$/, ''), via: 'jig file URL' };
    if (!o.resolveHttp) throw new ConfigError(`slot ${o.slot}: plug address ${spec.url} names a virtual plug, but no virtual jig is running (use --sim or a generated jig file)`, { slot: o.slot, step: 'locate-plug' });
    const resolveHttp = o.resolveHttp;
    const clock = o.clock ?? new RealClock();
    const timeoutMs = o.timeoutMs ?? 60_000;
    const deadline = clock.now() + timeoutMs;
    for (;;) {
      const r = resolveHttp(spec.url);
      if (r) return { url: r.baseUrl.replace(/\/$/, ''), via: r.via };
      if (clock.now() >= deadline) break;
      await clock.sleep(Math.min(o.pollMs ?? 250, Math.max(1, deadline - clock.now())));
    }
    throw new TimeoutError(`slot ${o.slot}: virtual plug ${spec.url} serves no HTTP within ${(timeoutMs / 1000).toFixed(1)} s (not running OpenBeken, or not on a network)`, {
      slot: o.slot,
      step: 'locate-plug',
    });
  }
  const leasesPath = spec.leases!;
  if (!o.mac) {
    throw new ConfigError(`slot ${o.slot} finds its plug by MAC in ${leasesPath}, but no MAC is known (read it over the ROM first, or give --mac)`, { slot: o.slot, step: 'locate-plug' });
  }
  const mac = normMac(o.mac);
  const clock = o.clock ?? new RealClock();
  const timeoutMs = o.timeoutMs ?? spec.leaseTimeoutMs ?? 60_000;
  const now = o.nowEpochS ?? ((): number => Date.now() / 1000);
  const deadline = clock.now() + timeoutMs;
  let lastProblem = 'no lease for it yet';
  for (;;) {
    try {
      const lease = findLease(parseDnsmasqLeases(await readFile(leasesPath, 'utf8')), mac, now());
      if (lease) return { url: `http://${lease.ip}${spec.port && spec.port !== 80 ? `:${spec.port}` : ''}`, via: `DHCP lease of ${mac} in ${leasesPath}` };
      lastProblem = 'no lease for it yet';
    } catch (e) {
      // The file may not exist until the first client joins.
      lastProblem = `cannot read the leases file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
    }
    if (clock.now() >= deadline) break;
    await clock.sleep(Math.min(o.pollMs ?? 500, Math.max(1, deadline - clock.now())));
  }
  throw new TimeoutError(`slot ${o.slot}: plug ${mac} did not get a DHCP lease in ${leasesPath} within ${(timeoutMs / 1000).toFixed(1)} s (${lastProblem})`, {
    slot: o.slot,
    step: 'locate-plug',
    mac,
    leases: leasesPath,
  });
}
