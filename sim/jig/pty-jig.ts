import { accessSync, closeSync, constants, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { RealClock } from '../../rig/core/clock.ts';
import { ConfigError, TransportError } from '../../rig/core/errors.ts';
import { rootLogger, type Logger } from '../../rig/core/log.ts';
import { loadJigFile, SlotSchema, type JigSpec, type SlotSpec } from '../../rig/jig/jig-config.ts';
import { StationNetwork, freeStationPort } from '../net/station-network.ts';
import { DEFAULT_VIRTUAL_WIFI, VirtualJig } from './virtual-jig.ts';
import { readSlotWiring } from './wiring.ts';
import { slotFaults } from '../../rig/jig/fault-spec.ts';
import { PtyBridge } from '../serial/pty-bridge.ts';
import { serveScpiTcp, type ScpiTcpServer } from '../scpi/scpi-tcp-server.ts';
import { VirtualWt310e } from '../scpi/virtual-wt310e.ts';

const SIM = 'sim:';
/** Name of the generated jig file inside the link directory. */
export const GENERATED_JIG_FILE = 'jig.json';
/** The virtual station network's DHCP leases (dnsmasq format) inside the link directory. */
export const LEASES_FILE = 'dnsmasq.leases';
/** Holds the pid of the `plugrig sim --jig` that owns the link directory's links. */
export const LOCK_FILE = 'plugrig-sim.lock';
/** A pty symlink is named after its `sim:` name, so that name must be a plain file name. */
const LINK_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export type PtyJigDeviceKind = 'uart' | 'io-board' | 'pzem004t' | 'scpi';

/** One virtual device as the outside world reaches it. */
export interface PtyJigDevice {
  /** The `sim:` name without its prefix (also the symlink's file name). */
  name: string;
  kind: PtyJigDeviceKind;
  /** Slot ids that use the device. */
  slots: number[];
  /** Its `sim:` path in the source jig file. */
  simPath: string;
  /** Pty symlink, or tcp://127.0.0.1:<port> for a SCPI meter. */
  address: string;
  /** /dev/pts/N behind the symlink (ptys only). */
  ptyPath?: string;
  /** What differs from the real wiring. */
  note?: string;
}

export interface PtyJig {
  readonly vj: VirtualJig;
  /** The station network the slots' plugs join; its leases file is in the link directory. */
  readonly network: StationNetwork;
  readonly devices: readonly PtyJigDevice[];
  /** The jig with every `sim:` port replaced by its pty/TCP address (validated). */
  readonly generated: JigSpec;
  readonly jigFile: string;
  /** Resolves with the first bridge failure (socat died, pty I/O error). */
  readonly failed: Promise<TransportError>;
  /** Close every bridge (removing its symlink) and the TCP servers, dispose the virtual jig, remove jig.json. Idempotent. */
  close(): Promise<void>;
}

export interface StartPtyJigOptions {
  jigPath: string;
  linkDir: string;
  seed: number;
  socatPath?: string;
  log?: Logger;
}

interface Planned {
  simPath: string;
  kind: PtyJigDeviceKind;
  slots: number[];
}

/**
 * A slot bound by USB path / serial gets a pty named like a `sim:` UART: other processes reach ptys
 * by path, not through a USB bus (so no replug across processes).
 */
function usbSlotSimPath(slotId: number): string {
  return `${SIM}uart${slotId}`;
}

/** Every `sim:` device of a jig with its kind and users; duplicates and unusable names are refused. */
export function planSimDevices(jig: JigSpec): Planned[] {
  // The fake USB bus lives in this process; a client elsewhere would open the machine's real one.
  for (const slot of jig.slots) {
    const w = readSlotWiring(slot);
    if ('hub' in w.power3v3 || w.loads.some((l) => l.relay)) {
      throw new ConfigError(`jig ${jig.name}: slot ${slot.id} switches loads or 3V3 over USB, which the pty virtual jig cannot offer other processes; run it in-process (--sim)`, { step: 'sim-jig', slot: slot.id });
    }
  }
  const out: Planned[] = [];
  const add = (simPath: string | undefined, kind: PtyJigDeviceKind, slots: number[]): void => {
    if (!simPath?.startsWith(SIM)) return;
    const name = simPath.slice(SIM.length);
    if (!LINK_NAME.test(name) || name === GENERATED_JIG_FILE || name === LEASES_FILE) {
      throw new ConfigError(`jig ${jig.name}: ${simPath} cannot name a pty link (use letters, digits, ".", "_", "-")`, { step: 'sim-jig', path: simPath });
    }
    const prev = out.find((p) => p.simPath === simPath);
    if (prev) throw new ConfigError(`jig ${jig.name}: ${simPath} is named twice (${prev.kind} and ${kind})`, { step: 'sim-jig', path: simPath });
    out.push({ simPath, kind, slots });
  };
  for (const [name, io] of Object.entries(jig.ioBoards)) add(io.port, 'io-board', jig.slots.filter((s) => s.io === name).map((s) => s.id));
  for (const [name, m] of Object.entries(jig.meters)) {
    const users = jig.slots.filter((s) => s.meter.ref === name).map((s) => s.id);
    if (m.kind === 'pzem004t') add(m.port, 'pzem004t', users);
    else add(m.address, 'scpi', users);
  }
  for (const s of jig.slots) {
    if (s.uart.port === undefined && slotFaults(jig.faults, s.faults).adapter) {
      throw new ConfigError(`jig ${jig.name}: slot ${s.id} has faults.adapter (USB-UART unplug), which the pty virtual jig cannot model (its UARTs are fixed ptys); run it in-process (--sim)`, { step: 'sim-jig', slot: s.id });
    }
    add(s.uart.port ?? usbSlotSimPath(s.id), 'uart', [s.id]);
  }
  if (out.length === 0) throw new ConfigError(`jig ${jig.name} names no sim: device; there is nothing to simulate`, { step: 'sim-jig' });
  return out;
}

/**
 * The jig as clients outside this process must use it: `sim:` ports become their addresses, and
 * `modem-lines` resets become `jig-cen` because a pty carries no DTR/RTS (the I/O board's CEN pin
 * still reaches the chip through the Firmata pty). Returns the slot ids rewritten that way.
 */
export function rewriteJigForPtys(jig: JigSpec, addresses: ReadonlyMap<string, string>, linkDir: string): { spec: JigSpec; resetRewritten: number[] } {
  const spec = structuredClone(jig);
  const map = (p: string | undefined): string | undefined => (p !== undefined ? (addresses.get(p) ?? p) : p);
  for (const io of Object.values(spec.ioBoards)) {
    const port = map(io.port);
    if (port !== undefined) io.port = port;
  }
  for (const m of Object.values(spec.meters)) {
    if (m.kind === 'pzem004t') m.port = map(m.port)!;
    else m.address = map(m.address)!;
  }
  const resetRewritten: number[] = [];
  for (const s of spec.slots) {
    const address = addresses.get(s.uart.port ?? usbSlotSimPath(s.id));
    if (address === undefined) continue;
    // A slot bound by USB path is on a pty by name here (the host finds no USB adapter for it).
    if (s.uart.port === undefined) s.uart = { ...(s.uart.baudRate !== undefined ? { baudRate: s.uart.baudRate } : {}), port: address };
    s.uart.port = address;
    if (s.reset.method === 'modem-lines') {
      s.reset = { method: 'jig-cen', pulseMs: 50 };
      resetRewritten.push(s.id);
    }
  }
  spec.description = `${jig.name} on ptys under ${linkDir} (generated by plugrig sim --jig --pty)${jig.description ? `. ${jig.description}` : ''}`;
  return { spec, resetRewritten };
}

/** Fail early with one clear message when socat cannot be run at all. */
async function assertSocat(socat: string): Promise<void> {
  const r = await execa(socat, ['-V'], { reject: false, stdin: 'ignore' });
  if (r.failed && r.exitCode === undefined) {
    throw new TransportError(`cannot run ${socat}: it is needed to create the ptys (install it, e.g. "apt-get install socat")`, {
      step: 'sim-jig',
      socat,
      reason: r.originalMessage,
    }, { cause: r });
  }
}

function prepareLinkDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    if (!statSync(dir).isDirectory()) throw new Error('not a directory');
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (e) {
    throw new ConfigError(`link directory ${dir} is not a writable directory: ${(e as Error).message}`, { step: 'sim-jig', path: dir }, { cause: e });
  }
}

/** Is `pid` a live process that could be a plugrig sim (not a pid since reused by something else)? */
function liveSim(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    return /node|plugrig|tsx/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
  } catch {
    return true; // no /proc to ask: alive is all we know
  }
}

/**
 * Take the link directory for this process: a second sim on the same directory would replace the first
 * one's links and delete them when it ends. A lock whose pid is gone (a sim killed with -9) is stale and
 * taken over. Returns the release function (removes the lock only while it is still ours).
 */
export function lockLinkDir(linkDir: string, log?: Logger): () => void {
  const lock = join(linkDir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = openSync(lock, 'wx');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new ConfigError(`cannot create the lock file ${lock}: ${(e as Error).message}`, { step: 'sim-jig', path: lock }, { cause: e });
      const text = (() => {
        try {
          return readFileSync(lock, 'utf8').trim();
        } catch {
          return '';
        }
      })();
      const pid = Number(text);
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && liveSim(pid)) {
        throw new ConfigError(`link directory ${linkDir} is in use by plugrig sim pid ${pid} (lock file ${lock}); stop that sim or choose another --link-dir`, { step: 'sim-jig', path: linkDir, pid });
      }
      log?.warn({ lock, pid: text }, 'stale lock of a sim that is gone: taking the link directory over');
      rmSync(lock, { force: true });
      continue;
    }
    writeSync(fd, `${process.pid}\n`);
    closeSync(fd);
    return () => {
      try {
        if (Number(readFileSync(lock, 'utf8').trim()) === process.pid) rmSync(lock, { force: true });
      } catch {
        // already gone
      }
    };
  }
  throw new ConfigError(`cannot take the lock file ${lock} (another sim keeps recreating it?)`, { step: 'sim-jig', path: lock });
}

/**
 * Run the whole virtual jig of a jig file in this process on a RealClock: every serial `sim:`
 * device on its own pty (symlinked as <linkDir>/<name>), every SCPI `sim:` meter on a loopback
 * TCP port, and <linkDir>/jig.json describing it for other processes.
 */
export async function startVirtualJigOnPtys(o: StartPtyJigOptions): Promise<PtyJig> {
  const log = o.log ?? rootLogger().child({ cmd: 'sim --jig' });
  const jig = loadJigFile(o.jigPath);
  const planned = planSimDevices(jig);
  const linkDir = resolve(o.linkDir);
  prepareLinkDir(linkDir);
  const unlock = lockLinkDir(linkDir, log);
  const socat = o.socatPath ?? 'socat';
  const clock = new RealClock();
  let network: StationNetwork;
  let vj: VirtualJig;
  try {
    await assertSocat(socat);
    // Every plug serves HTTP on one port at its own loopback lease address, found by MAC in the leases file.
    network = new StationNetwork({ clock, ...virtualStationWifi(), leasesFile: join(linkDir, LEASES_FILE), httpPort: await freeStationPort() });
    vj = VirtualJig.fromSpec(jig, { clock, seed: o.seed, network });
  } catch (e) {
    unlock();
    throw e;
  }
  const bridges: PtyBridge[] = [];
  const servers: ScpiTcpServer[] = [];
  const jigFile = join(linkDir, GENERATED_JIG_FILE);
  let written = false;
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await Promise.all([...bridges.map((b) => b.close()), ...servers.map((s) => s.close())]);
    await vj.dispose();
    // The file describes ptys that no longer exist.
    if (written) rmSync(jigFile, { force: true });
    rmSync(join(linkDir, LEASES_FILE), { force: true });
    unlock();
  };

  try {
    const bySim = new Map([...vj.devices().map((d) => [d.path, d.device] as const), ...vj.usbUartSlots().map((u) => [usbSlotSimPath(u.slot), u.device] as const)]);
    const devices: PtyJigDevice[] = [];
    const starts = planned.map(async (p): Promise<PtyJigDevice> => {
      const name = p.simPath.slice(SIM.length);
      const device = bySim.get(p.simPath);
      if (p.kind === 'scpi') {
        if (!(device instanceof VirtualWt310e)) throw new ConfigError(`${p.simPath}: the virtual jig has no SCPI instrument there`, { step: 'sim-jig' });
        const server = await serveScpiTcp(device, { host: '127.0.0.1', port: 0 });
        servers.push(server);
        return { name, kind: p.kind, slots: p.slots, simPath: p.simPath, address: server.address };
      }
      if (!device) throw new ConfigError(`${p.simPath}: the virtual jig has no device there`, { step: 'sim-jig' });
      const bridge = await PtyBridge.start({ device, link: join(linkDir, name), clock, socatPath: socat, log, startTimeoutMs: 15000 });
      bridges.push(bridge);
      return { name, kind: p.kind, slots: p.slots, simPath: p.simPath, address: bridge.link, ptyPath: bridge.ptyPath };
    });
    const settled = await Promise.allSettled(starts);
    const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failure) throw failure.reason;
    for (const s of settled) if (s.status === 'fulfilled') devices.push(s.value);

    const addresses = new Map(devices.map((d) => [d.simPath, d.address]));
    const { spec, resetRewritten } = rewriteJigForPtys(jig, addresses, linkDir);
    addPlugLocations(spec, join(linkDir, LEASES_FILE), network.httpPort);
    for (const id of resetRewritten) {
      const slot = spec.slots.find((s) => s.id === id)!;
      const uart = devices.find((d) => d.kind === 'uart' && d.slots[0] === id);
      if (uart) uart.note = `reset modem-lines -> jig-cen (pty has no DTR/RTS; CEN is ${slot.io} pin ${readSlotWiring(slot).cen.pin})`;
    }
    for (const d of devices) if (d.kind === 'io-board') d.note = 'no auto-reset on open (pty has no DTR): query the version';
    for (const u of vj.usbUartSlots()) {
      const d = devices.find((x) => x.kind === 'uart' && x.slots[0] === u.slot);
      if (d) d.note = [d.note, `bound by USB path ${u.usbPath} in the jig file; a pty by name here`].filter(Boolean).join('; ');
    }

    try {
      writeFileSync(jigFile, JSON.stringify(spec, null, 2) + '\n');
      written = true;
    } catch (e) {
      throw new ConfigError(`cannot write the generated jig file ${jigFile}: ${(e as Error).message}`, { step: 'sim-jig' }, { cause: e });
    }
    const generated = loadJigFile(jigFile);

    const failed = new Promise<TransportError>((res) => {
      for (const b of bridges) {
        b.onFailure((err) => res(new TransportError(`virtual device at ${b.link} lost its pty: ${err.message}`, { ...err.context, step: 'sim-jig' }, { cause: err })));
      }
    });
    return { vj, network, devices, generated, jigFile, failed, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/** The device table printed on startup. */
export function formatPtyJigTable(devices: readonly PtyJigDevice[]): string {
  const rows = devices.map((d) => [
    d.name,
    d.kind,
    d.slots.length ? d.slots.join(',') : '-',
    d.ptyPath ? `${d.address} -> ${d.ptyPath}` : d.address,
    d.note ?? '',
  ]);
  const head = ['device', 'kind', 'slot', 'path / address', 'note'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n') + '\n';
}

/**
 * The station network's credentials as provisioning reads them (PLUGRIG_WIFI_SSID / PLUGRIG_WIFI_PASS
 * in the environment), else the virtual jig's defaults: the virtual AP is the station's network.
 */
export function virtualStationWifi(env: NodeJS.ProcessEnv = process.env): { ssid: string; pass: string } {
  return { ssid: env['PLUGRIG_WIFI_SSID'] || DEFAULT_VIRTUAL_WIFI.ssid, pass: env['PLUGRIG_WIFI_PASS'] || DEFAULT_VIRTUAL_WIFI.pass };
}

/**
 * Tell clients where each slot's plug serves HTTP: by MAC in the leases file on the one port. Written
 * only when the jig schema has the slot `plug` section (rig/jig/jig-config.ts), which the strict schema
 * would otherwise refuse.
 */
export function addPlugLocations(spec: JigSpec, leasesFile: string, port: number): boolean {
  if (!('plug' in SlotSchema.shape)) return false;
  for (const s of spec.slots) (s as SlotSpec & { plug?: unknown }).plug = { leases: leasesFile, port };
  return true;
}
