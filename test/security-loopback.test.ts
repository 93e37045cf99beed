import { mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { RealClock } from '../rig/core/clock.ts';
import { startVirtualJigOnPtys } from '../sim/jig/pty-jig.ts';
import { startStandalonePlug } from '../sim/plug/standalone-plug.ts';
import { virtualStationWifi } from '../sim/jig/pty-jig.ts';

/**
 * Everything the virtual jig opens for others to connect to — the SCPI meter's TCP port, the station
 * network's plug HTTP servers, a standalone plug's HTTP API — listens on loopback only. Checked from
 * the kernel's side: every listening TCP socket this process owns (its socket inodes in /proc/self/fd,
 * matched against /proc/net/tcp and tcp6), whatever code opened it.
 */
const ROOT = new URL('..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'plugrig-listen-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** Our socket inodes. */
function ownSocketInodes(): Set<string> {
  const out = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (m) out.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** "0100007F:1F90" (little-endian IPv4) or 32 hex digits of IPv6 -> printable address. */
function decodeAddress(hex: string): string {
  const [addr, port] = hex.split(':') as [string, string];
  if (addr.length === 8) return `${[3, 2, 1, 0].map((i) => parseInt(addr.slice(i * 2, i * 2 + 2), 16)).join('.')}:${parseInt(port, 16)}`;
  // IPv6: four little-endian 32-bit words.
  const words = [0, 1, 2, 3].map((w) => addr.slice(w * 8, w * 8 + 8).match(/../g)!.reverse().join(''));
  return `[${words.join('').match(/.{4}/g)!.join(':')}]:${parseInt(port, 16)}`;
}

function isLoopback(address: string): boolean {
  return /^127\./.test(address) || address.startsWith('[0000:0000:0000:0000:0000:0000:0000:0001]') || address.startsWith('[0000:0000:0000:0000:0000:ffff:7f');
}

/** Listening TCP sockets of this process, by local address. */
function ownListeners(): string[] {
  const inodes = ownSocketInodes();
  const out: string[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '0A') continue; // 0A = LISTEN
      if (inodes.has(f[9]!)) out.push(decodeAddress(f[1]!));
    }
  }
  return out;
}

t.test('the virtual jig on ptys (SCPI over TCP, station network) and a virtual plug listen on loopback only', async (t) => {
  const raw = JSON.parse(readFileSync(join(ROOT, 'fixtures/jigs/virtual-1slot.json'), 'utf8')) as Record<string, unknown> & { slots: Array<Record<string, unknown>> };
  raw.meters = { wt: { kind: 'scpi', model: 'WT310E', address: 'sim:wt0', serial: 'C2QD12345' } };
  raw.slots[0]!.meter = { ref: 'wt', channel: 1 };
  const jigPath = join(dir, 'jig.json');
  writeFileSync(jigPath, JSON.stringify(raw));
  const before = ownListeners();
  const pj = await startVirtualJigOnPtys({ jigPath, linkDir: join(dir, 'links'), seed: 1 });
  const clock = new RealClock();
  const plug = startStandalonePlug({ clock, seed: 2, template: null, loadW: 60, httpPort: 0, wifi: virtualStationWifi(), defects: [] });
  try {
    const url = await plug.waitForHttp(30_000);
    t.match(url, /^http:\/\/127\./, `the plug's URL is on loopback: ${url}`);
    const listeners = ownListeners().filter((a) => !before.includes(a));
    const scpi = pj.devices.find((d) => d.kind === 'scpi')!;
    t.ok(listeners.length >= 2, `listening sockets opened: ${listeners.join(', ')}`);
    t.ok(listeners.some((a) => scpi.address.endsWith(`:${a.split(':').at(-1)}`)), `the SCPI server (${scpi.address}) is among them`);
    t.ok(listeners.some((a) => url.endsWith(`:${a.split(':').at(-1)}`)), 'the plug HTTP server is among them');
    for (const a of listeners) t.ok(isLoopback(a), `${a} is a loopback address`);
  } finally {
    await plug.close();
    await pj.close();
  }
});
