import { readFile } from 'node:fs/promises';
import { Bk7231Flasher } from '../rig/bk7231/flasher.ts';
import { DutError, PlugrigError, ProtocolError, TimeoutError, TransportError } from '../rig/core/errors.ts';
import type { ObkHttpClient } from '../rig/dut/obk-http-client.ts';
import { PIN_COUNT, type DeviceTemplate } from '../rig/dut/device-template.ts';
import { findLease, parseDnsmasqLeases } from '../rig/dut/plug-locator.ts';
import { edges, sampleLight, sampleLightFor } from './light-samples.ts';
import { stepPolicy, type PlanDefaults } from './plan/declare.ts';
import type { SuiteEntry } from './plan/schema.ts';
import { plugOnline, type OnlinePlug } from './plug-online.ts';
import type { Step, StepContext } from './runner/step.ts';
import type { SlotHardware } from './slot-hardware.ts';
import { withRomPort } from './rom-port.ts';

export type IdentitySuiteEntry = Extract<SuiteEntry, { suite: 'identity' }>;

/** OpenBeken's SoftAP address (openbeken-http.md §4). */
const AP_ADDRESS = '192.168.4.1';
/** Light-sensor sampling while the boot is watched. */
const BOOT_SAMPLE_MS = 25;

/**
 * Is this the unit the plan expects, running what it should? MAC over the ROM (unless this run's
 * flash session read it), then on mains: OpenBeken answers (told apart from the stock Tuya app and
 * from nothing by HTTP and the LED), build and chipset, /api/info MAC = ROM MAC, its network
 * identity matches that MAC, and /api/pins equals the plan's template.
 */
export function identitySuite(entry: IdentitySuiteEntry, hw: SlotHardware, defaults: PlanDefaults): Step[] {
  const il = hw.io.interlock;
  const c = (): SlotHardware['io']['components'] => hw.io.components;
  const policy = stepPolicy(entry, defaults);
  let online: OnlinePlug | undefined;
  const need = (): OnlinePlug => {
    if (!online) throw new DutError('the plug did not come online in the boot step', { slot: hw.spec.id, step: 'identity' });
    return online;
  };
  return [
    {
      name: 'MAC and chip over the ROM (mains off)',
      critical: true,
      ...policy,
      run: async (ctx) => {
        const known = hw.romSession?.mac;
        if (known) {
          ctx.check('MAC read in this run\'s ROM session', true, { mac: known });
          return { mac: known, from: 'flash session' };
        }
        await il.connectUart();
        await il.power3v3(true);
        try {
          return await withRomPort(hw, ctx, async (port) => {
            const flasher = new Bk7231Flasher({ port, reset: hw.io.resetStrategy(), baudRate: hw.baudRate, log: ctx.log });
            const info = await flasher.connect();
            ctx.check(`ROM reports a ${entry.chipset}`, info.chipName === entry.chipset, { chip: info.chipName });
            ctx.check('ROM reads a MAC from the RF sector', info.mac !== null, { mac: info.mac });
            if (info.mac) {
              ctx.unit({ mac: info.mac });
              if (hw.romSession) hw.romSession.mac = info.mac;
            }
            return { mac: info.mac, chip: info.chipName, flash: info.flashIdHex };
          });
        } finally {
          await il.power3v3(false);
          await il.disconnectUart();
        }
      },
    },
    {
      name: 'boots OpenBeken on mains (not the stock Tuya app, not nothing)',
      critical: true,
      ...policy,
      // The boot window, then the diagnostic request that names an HTTP fault.
      timeoutMs: Math.max(policy.timeoutMs, entry.bootWithinMs + 5000 + DIAGNOSTIC_WAIT_MS),
      run: async (ctx) => {
        await il.power3v3(false);
        await il.disconnectUart();
        // The boot's LED is kept for a later suite that asked for it (hw.bootLight): only a boot this step started.
        const watch = hw.bootLight;
        if (watch) watch.boot = undefined;
        const booting = il.state().mains !== 'on';
        await il.mainsOn();
        const mainsOnT = ctx.clock.now();
        const sampleMs = watch?.sampleMs ?? BOOT_SAMPLE_MS;
        const read = (): { level: number | undefined; lit: boolean } => ({ level: c().lightLevel(), lit: c().ledLit() });
        const led = sampleLight(ctx.clock, read, sampleMs, ctx.signal);
        try {
          online = await withinModelTime(ctx, entry.bootWithinMs + 1000, plugOnline(hw, ctx, entry.bootWithinMs), 'no reply to GET /api/info');
        } catch (e) {
          await led.stop();
          const byLed = classifyNoOpenBeken(e, led.samples, entry.bootWithinMs, hw.spec.id);
          // On the network with the LED solid: what the HTTP server does decides (one long-waiting request).
          throw byLed === ON_THE_NETWORK ? await diagnoseHttp(hw, ctx, e, entry.bootWithinMs, diagLed(led.samples, hw.spec.id)) : byLed;
        }
        await led.stop();
        if (watch && booting) {
          const connected = watch.connectedMs !== undefined ? sampleLightFor(ctx.clock, read, sampleMs, watch.connectedMs) : undefined;
          watch.boot = { mainsOnT, onlineT: ctx.clock.now(), sampleMs, samples: led.samples, ...(connected ? { connected } : {}) };
        }
        ctx.check('OpenBeken answers /api/info', true, { url: online.client.url, uptime: online.info.uptime_s });
        ctx.unit({ plugUrl: online.client.url, build: online.info.build });
        return { url: online.client.url, build: online.info.build, uptime: online.info.uptime_s };
      },
    },
    {
      name: 'build, chipset and MAC over HTTP',
      ...policy,
      run: async (ctx) => {
        const { info } = need();
        const version = /version\s+(\S+)/.exec(info.build)?.[1];
        if (entry.expectVersion !== undefined) ctx.check(`build is version ${entry.expectVersion}`, version === entry.expectVersion, { build: info.build, version: version ?? null });
        ctx.check(`chipset ${entry.chipset}`, info.chipset === entry.chipset, { chipset: info.chipset });
        const rom = hw.romSession?.mac;
        ctx.check('MAC from /api/info equals the one the ROM read', rom !== undefined && sameMac(info.mac, rom), { api: info.mac, rom: rom ?? null });
        return { version: version ?? null, chipset: info.chipset, mac: info.mac };
      },
    },
    {
      name: 'network identity matches the MAC (station lease or AP name)',
      ...policy,
      run: async (ctx) => {
        const { client, info } = need();
        const rom = hw.romSession?.mac;
        if (!rom) throw new DutError('no ROM MAC to compare with', { slot: hw.spec.id, step: 'identity' });
        const net = (await client.status(5)).StatusNET as Record<string, unknown> | undefined;
        ctx.check('STATUS 5 Mac equals the ROM MAC', typeof net?.Mac === 'string' && sameMac(net.Mac, rom), { mac: net?.Mac ?? null });
        const tail = rom.replace(/:/g, '').slice(4).toUpperCase();
        if (info.ip === AP_ADDRESS) {
          // AP mode: OpenBeken names its SoftAP and its host after MAC bytes 2..5 (frozen at default config).
          ctx.check(`AP host name obk${tail} (AP SSID OpenBK7231N_${tail})`, net?.Hostname === `obk${tail}`, { hostname: net?.Hostname ?? null });
          return { mode: 'ap', ssid: `OpenBK7231N_${tail}` };
        }
        const leases = hw.spec.plug?.leases;
        if (leases) {
          const lease = findLease(parseDnsmasqLeases(await readFile(leases, 'utf8')), rom, Date.now() / 1000);
          ctx.check('the station\'s DHCP lease of the ROM MAC is the address the plug reports', lease?.ip === info.ip, { lease: lease?.ip ?? null, ip: info.ip, leases });
        } else {
          // Found by the station's resolver (MAC-keyed lease on the virtual network, or the jig's URL).
          ctx.check('the plug reports the station address it was reached at', client.host === info.ip, { reached: client.host, ip: info.ip });
        }
        return { mode: 'sta', ip: info.ip, hostname: net?.Hostname ?? null };
      },
    },
    {
      name: "applied template read back from /api/pins equals the plan's",
      ...policy,
      run: async (ctx) => {
        const template = hw.provisioning?.template;
        if (!template) throw new DutError("the plan names no device template to compare /api/pins with (plan \"device\": {\"template\": ...})", { slot: hw.spec.id, step: 'identity' });
        const pins = await need().client.pins();
        const diffs = templateDiffs(template, pins);
        ctx.check(`pins and channels are ${template.label}'s`, diffs.length === 0, { template: template.label, differences: diffs });
        return { template: template.label, pins: template.pins.length };
      },
    },
  ];
}

function sameMac(a: string, b: string): boolean {
  const norm = (m: string): string => m.toLowerCase().replace(/[^0-9a-f]/g, '');
  return norm(a) === norm(b);
}

/** Every pin whose role or channel differs from the template, in words. */
export function templateDiffs(template: DeviceTemplate, pins: { roles: number[]; channels: number[]; channels2?: number[]; rolenames: string[] }): string[] {
  const out: string[] = [];
  const name = (r: number | undefined): string => (r === undefined ? 'none' : (pins.rolenames[r] ?? String(r)).trim() || 'none');
  for (let pin = 0; pin < PIN_COUNT; pin++) {
    const want = template.pins.find((p) => p.pin === pin);
    const role = pins.roles[pin] ?? 0;
    if ((want?.roleIndex ?? 0) !== role) {
      out.push(`P${pin}: role ${name(role)}, template ${want ? want.role : 'none'}`);
      continue;
    }
    if (!want) continue;
    if ((pins.channels[pin] ?? 0) !== want.channel) out.push(`P${pin}: channel ${pins.channels[pin] ?? 0}, template ${want.channel}`);
    if ((pins.channels2?.[pin] ?? 0) !== want.channel2) out.push(`P${pin}: channel2 ${pins.channels2?.[pin] ?? 0}, template ${want.channel2}`);
  }
  return out;
}

/**
 * `work`, or a TimeoutError once `ms` pass on the step's clock: a request the plug accepts and never
 * answers must not outlive the boot budget, or the step's own timeout would end it unclassified.
 */
async function withinModelTime<T>(ctx: StepContext, ms: number, work: Promise<T>, what: string): Promise<T> {
  work.catch(() => undefined);
  const ctrl = new AbortController();
  const onAbort = (): void => ctrl.abort();
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  const late = ctx.clock.sleep(ms, ctrl.signal).then(() => {
    throw new TimeoutError(what, { slot: ctx.slot, step: 'identity', timeoutMs: ms });
  });
  late.catch(() => undefined);
  try {
    return await Promise.race([work, late]);
  } finally {
    ctrl.abort();
    ctx.signal.removeEventListener('abort', onAbort);
  }
}

/** Half-period of a steady blink (ms between toggles); the Wi-Fi LED patterns it tells apart (ASSUMPTION: one unit's timing). */
const TUYA_PAIRING_HALF_MS = 250;
const OBK_AP_HALF_MS = 275;
const OBK_CONNECTING_HALF_MS = 525;
/** Still blinking: the last toggle is at most this long before the last sample. */
const BLINKING_NOW_MS = 2000;
/** Dark this long at the end after a blink: the blinking stopped (safe mode drives no LED). */
const WENT_DARK_MS = 5000;

/**
 * No OpenBeken API after mains on: say what runs instead, from the LED the light sensor saw and what
 * the request saw. The stock Tuya app blinks its pairing pattern (250 ms) and serves nothing; OpenBeken
 * that never joins the station network blinks its not-connected pattern (~525 ms) or, with its AP
 * open, ~275 ms; a boot loop blinks in bursts cut short by restarts until the 5th quick boot enters
 * safe mode, which opens its AP and drives no LED; a unit that boots nothing keeps the LED dark.
 * OpenBeken joined (LED solid) without a usable API is ON_THE_NETWORK: diagnoseHttp says what its
 * HTTP server does wrong.
 */
function classifyNoOpenBeken(e: unknown, samples: ReadonlyArray<{ t: number; lit: boolean }>, withinMs: number, slot: number): PlugrigError | typeof ON_THE_NETWORK {
  const msg = e instanceof Error ? e.message : String(e);
  const s = (withinMs / 1000).toFixed(0);
  if (/safe mode/.test(msg)) return new DutError(`OpenBeken boots in safe mode (/api/* not served): ${msg}`, { slot, step: 'identity' }, { cause: e });
  const toggles = edges(samples.map((x) => ({ ...x, level: undefined })));
  const lit = samples.filter((x) => x.lit).length;
  const end = samples.at(-1);
  const diag = { slot, step: 'identity', ledToggles: toggles.length, litSamples: lit, samples: samples.length };
  if (lit === 0) return new DutError(`nothing boots: no HTTP within ${s} s and the LED stayed dark`, diag, { cause: e });
  const last = toggles.at(-1);
  if (toggles.length >= 4 && end && last !== undefined && end.t - last <= BLINKING_NOW_MS) {
    // A steady blink: the mean toggle interval over the last few toggles (a boot's start is irregular).
    const tail = toggles.slice(-Math.min(toggles.length, 9));
    const half = (tail.at(-1)! - tail[0]!) / (tail.length - 1);
    const nearest = [TUYA_PAIRING_HALF_MS, OBK_AP_HALF_MS, OBK_CONNECTING_HALF_MS].reduce((a, b) => (Math.abs(b - half) < Math.abs(a - half) ? b : a));
    const d = { ...diag, halfPeriodMs: half };
    const every = `toggles every ~${half.toFixed(0)} ms`;
    if (nearest === TUYA_PAIRING_HALF_MS) return new DutError(`stock firmware still running: no OpenBeken HTTP within ${s} s, LED blinking (${every}, the Tuya pairing pattern)`, d, { cause: e });
    if (nearest === OBK_AP_HALF_MS) return new DutError(`Wi-Fi never joins: OpenBeken runs with its AP open (LED ${every}) and is not on the station network within ${s} s`, d, { cause: e });
    return new DutError(`Wi-Fi never joins: OpenBeken runs but does not get onto the station network within ${s} s (LED ${every}, its not-connected pattern)`, d, { cause: e });
  }
  if (toggles.length >= 3 && end && last !== undefined && !end.lit && end.t - last >= WENT_DARK_MS) {
    const gaps = toggles.slice(1).map((t, i) => t - toggles[i]!);
    const restarts = gaps.filter((g) => g > OBK_CONNECTING_HALF_MS * 1.4).length;
    return new DutError(
      `boot loop: the LED blinked in bursts cut short by ${restarts} restart(s), then stayed dark for the last ${((end.t - last) / 1000).toFixed(0)} s (OpenBeken's safe mode drives no LED and opens its AP), no HTTP within ${s} s`,
      { ...diag, restarts },
      { cause: e },
    );
  }
  if (toggles.length === 0 || (end?.lit === true && last !== undefined && end.t - last >= WENT_DARK_MS)) return ON_THE_NETWORK;
  return new DutError(`no OpenBeken HTTP within ${s} s (LED lit at times, ${toggles.length} toggles): ${msg}`, diag, { cause: e });
}

/** classifyNoOpenBeken's verdict when the LED says OpenBeken runs and joined: ask the HTTP server. */
const ON_THE_NETWORK = Symbol('on the network');

/** How long the diagnostic request waits: long enough to tell a slow server from a stalled one. */
const DIAGNOSTIC_WAIT_MS = 15_000;

function diagLed(samples: ReadonlyArray<{ t: number; lit: boolean }>, slot: number): Record<string, unknown> {
  return { slot, step: 'identity', litSamples: samples.filter((x) => x.lit).length, samples: samples.length };
}

/**
 * OpenBeken is on the station network (LED solid) but its API did not come up within the boot
 * window: one GET /api/info that waits DIAGNOSTIC_WAIT_MS, without retries, says which fault it is
 * (a negative status, JSON cut short or garbled, a body that stops, nothing at all, late replies, a
 * port that refuses connections), each in one message that starts with its name.
 */
async function diagnoseHttp(hw: SlotHardware, ctx: StepContext, first: unknown, withinMs: number, diag: Record<string, unknown>): Promise<PlugrigError> {
  const s = (withinMs / 1000).toFixed(0);
  const firstMsg = first instanceof Error ? first.message : String(first);
  let client: ObkHttpClient;
  try {
    client = await hw.plug!.connect(hw.romSession?.mac, ctx.signal, { timeoutMs: 5000 });
  } catch (e) {
    return new DutError(`no OpenBeken HTTP within ${s} s and the plug cannot be located (LED solid): ${e instanceof Error ? e.message : String(e)}`, diag, { cause: first });
  }
  const waits = client.withTiming({ timeoutMs: DIAGNOSTIC_WAIT_MS, retries: 0 });
  const t0 = ctx.clock.now();
  try {
    await waits.info();
    const took = ctx.clock.now() - t0;
    const normal = Math.min(client.timeoutMs, 2000);
    if (took > normal) {
      return new DutError(`HTTP times out: GET /api/info was answered only after ${(took / 1000).toFixed(1)} s, longer than the ${(normal / 1000).toFixed(1)} s the rig waits for a reply`, { ...diag, replyMs: took }, { cause: first });
    }
    return new DutError(`HTTP came up late: OpenBeken answered GET /api/info only after the ${s} s boot window (${firstMsg})`, diag, { cause: first });
  } catch (e) {
    if (!(e instanceof PlugrigError)) throw e;
    const c = e.context;
    const d = { ...diag, diagnostic: e.message };
    if (e instanceof ProtocolError && typeof c.status === 'number' && c.status < 0) {
      return new DutError(`HTTP negative status: OpenBeken answers GET /api/info with status ${c.status} ("HTTP/1.1 ${c.status} OK", an OpenBeken REST error code where an HTTP status belongs)`, d, { cause: e });
    }
    if (e instanceof ProtocolError && c.jsonFault === 'truncated') return new DutError(`HTTP reply truncated: ${e.message}`, d, { cause: e });
    if (e instanceof ProtocolError && c.jsonFault === 'malformed') return new DutError(`HTTP reply malformed: ${e.message}`, d, { cause: e });
    if (e instanceof TimeoutError && c.waiting === 'body') {
      return new DutError(`HTTP stalls mid-body: the status line and headers of GET /api/info arrive, then part of the body, then nothing for ${(DIAGNOSTIC_WAIT_MS / 1000).toFixed(0)} s (${e.message})`, d, { cause: e });
    }
    if (e instanceof TimeoutError) {
      return new DutError(`HTTP stalls: OpenBeken is on the station network (LED solid) and accepts the connection, but GET /api/info gets no reply within ${s} s nor in ${(DIAGNOSTIC_WAIT_MS / 1000).toFixed(0)} s more`, d, { cause: e });
    }
    if (e instanceof TransportError && c.errno === 'ECONNREFUSED') {
      return new DutError(`HTTP connection refused: OpenBeken is on the station network (LED solid) but ${client.url} refuses connections ${s} s after mains on (nothing listens on port ${client.port})`, d, { cause: e });
    }
    if (/safe mode/.test(e.message)) return new DutError(`OpenBeken boots in safe mode (/api/* not served): ${e.message}`, d, { cause: e });
    return new DutError(`no OpenBeken HTTP within ${s} s (LED solid): ${e.message}`, d, { cause: e });
  }
}
