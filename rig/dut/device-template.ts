/**
 * Device templates in OpenBeken's devices-list format (openbeken-bl0937.md §7): a file holds either
 * one device entry or `{"version", "devices": [...]}`. `pins` maps a GPIO index to
 * `"<RoleName>;<channel>[;<channel2>]"`, `flags` is a decimal string (sometimes a number) of the
 * 64-bit flag word, `flag` a legacy single flag index, `command` the startup command.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../core/errors.ts';
import { roleIndex, roleName } from './obk-roles.ts';

/** BK7231N has 29 GPIO entries (PLATFORM_GPIO_MAX); channels are 0..63 (CHANNEL_MAX). */
export const PIN_COUNT = 29;
export const CHANNEL_COUNT = 64;
/** initCommandLine is 1568 bytes with its terminating NUL. */
export const MAX_COMMAND_BYTES = 1567;

export interface TemplatePin {
  pin: number;
  /** Canonical short role name (legacy `Button`/`Relay` mapped). */
  role: string;
  /** OpenBeken IOR_* number. */
  roleIndex: number;
  channel: number;
  channel2: number;
}

export interface DeviceTemplate {
  /** File it came from (for messages). */
  source: string;
  vendor?: string;
  name: string;
  model?: string;
  chip: string;
  board?: string;
  /** By pin number, ascending. */
  pins: TemplatePin[];
  /** The 64-bit flag word when the template gives `flags`. */
  flags?: bigint;
  /** Legacy single flag index (`flag`). */
  flag?: number;
  /** Startup command, '' when none. */
  command: string;
  /** "Tuya RMC021" style label. */
  label: string;
}

const EntrySchema = z
  .object({
    vendor: z.string().optional(),
    name: z.string().min(1),
    model: z.string().optional(),
    chip: z.string().min(1),
    board: z.string().optional(),
    pins: z.record(z.string()),
    flags: z.union([z.string(), z.number()]).optional(),
    flag: z.union([z.number(), z.string()]).optional(),
    command: z.string().optional(),
  })
  .passthrough();

const ListSchema = z.object({ version: z.union([z.number(), z.string()]).optional(), devices: z.array(z.unknown()).min(1) }).passthrough();

/** Parse a 64-bit flag word: decimal (a string or a number); a negative value is the signed low word /api/info prints. */
export function parseFlagWord(raw: string | number): bigint | string {
  const text = typeof raw === 'number' ? (Number.isInteger(raw) ? String(raw) : 'x') : raw.trim();
  if (!/^-?\d+$/.test(text)) return `flag word ${JSON.stringify(raw)} is not a number (expected a decimal like "1024")`;
  const v = BigInt(text);
  if (v < 0n) {
    if (v < -(2n ** 31n)) return `flag word ${text} is below the signed 32-bit range`;
    return v + 2n ** 32n;
  }
  if (v >= 2n ** 64n) return `flag word ${text} does not fit in 64 bits`;
  return v;
}

/** Validate one device entry; returns the template or the list of problems. */
export function validateDeviceEntry(raw: unknown, source: string): DeviceTemplate | string[] {
  const r = EntrySchema.safeParse(raw);
  if (!r.success) return r.error.issues.map((i) => `${i.path.join('.') || '(entry)'}: ${i.message}`);
  const e = r.data;
  const problems: string[] = [];
  const pins: TemplatePin[] = [];
  for (const [key, value] of Object.entries(e.pins)) {
    const where = `pins["${key}"]`;
    if (!/^\d+$/.test(key) || Number(key) >= PIN_COUNT) {
      problems.push(`${where}: pin ${JSON.stringify(key)} out of range (BK7231N pins are 0..${PIN_COUNT - 1})`);
      continue;
    }
    const [rolePart = '', ch = '0', ch2 = '0', ...extra] = value.split(';');
    const idx = roleIndex(rolePart);
    if (idx === undefined) problems.push(`${where}: unknown role ${JSON.stringify(rolePart)}`);
    const chan = (s: string, what: string): number => {
      const t = s.trim() === '' ? '0' : s.trim();
      if (!/^\d+$/.test(t) || Number(t) >= CHANNEL_COUNT) {
        problems.push(`${where}: ${what} ${JSON.stringify(s)} is not a channel 0..${CHANNEL_COUNT - 1}`);
        return 0;
      }
      return Number(t);
    };
    const channel = chan(ch, 'channel');
    const channel2 = chan(ch2, 'second channel');
    if (extra.length) problems.push(`${where}: ${JSON.stringify(value)} has more than role;channel;channel2`);
    if (idx !== undefined) pins.push({ pin: Number(key), role: idx === 0 ? 'None' : roleName(idx), roleIndex: idx, channel, channel2 });
  }
  let flags: bigint | undefined;
  if (e.flags !== undefined) {
    const f = parseFlagWord(e.flags);
    if (typeof f === 'string') problems.push(`flags: ${f}`);
    else flags = f;
  }
  let flag: number | undefined;
  if (e.flag !== undefined) {
    const n = typeof e.flag === 'number' ? e.flag : /^\d+$/.test(e.flag.trim()) ? Number(e.flag) : NaN;
    if (!Number.isInteger(n) || n < 0 || n > 63) problems.push(`flag: ${JSON.stringify(e.flag)} is not a flag index 0..63`);
    else flag = n;
  }
  const command = e.command ?? '';
  if (Buffer.byteLength(command, 'utf8') > MAX_COMMAND_BYTES) problems.push(`command: ${Buffer.byteLength(command)} bytes, OpenBeken keeps at most ${MAX_COMMAND_BYTES}`);
  if (problems.length) return problems;
  pins.sort((a, b) => a.pin - b.pin);
  return {
    source,
    ...(e.vendor !== undefined ? { vendor: e.vendor } : {}),
    name: e.name,
    ...(e.model !== undefined ? { model: e.model } : {}),
    chip: e.chip,
    ...(e.board !== undefined ? { board: e.board } : {}),
    pins,
    ...(flags !== undefined ? { flags } : {}),
    ...(flag !== undefined ? { flag } : {}),
    command,
    label: [e.vendor, e.model ?? e.name].filter(Boolean).join(' '),
  };
}

/**
 * A template from parsed JSON: a single entry, or a devices list with one entry (or the one whose
 * model/name matches `select`). Throws one ConfigError listing every problem.
 */
export function parseDeviceTemplate(data: unknown, source: string, select?: string): DeviceTemplate {
  let entry: unknown = data;
  const list = ListSchema.safeParse(data);
  if (list.success && !(data as Record<string, unknown>).pins) {
    const devices = list.data.devices;
    if (select !== undefined) {
      const hits = devices.filter((d) => {
        const x = d as Record<string, unknown>;
        return x && (x.model === select || x.name === select);
      });
      if (hits.length !== 1) throw new ConfigError(`device template ${source}: ${hits.length === 0 ? 'no' : hits.length} device(s) with model or name ${JSON.stringify(select)}`, { step: 'template' });
      entry = hits[0];
    } else if (devices.length > 1) {
      const names = devices.map((d) => String((d as Record<string, unknown>)?.model ?? (d as Record<string, unknown>)?.name)).slice(0, 10);
      throw new ConfigError(`device template ${source} lists ${devices.length} devices; name one (${names.join(', ')}${devices.length > 10 ? ', ...' : ''})`, { step: 'template' });
    } else entry = devices[0];
  }
  const t = validateDeviceEntry(entry, source);
  if (Array.isArray(t)) throw new ConfigError(`invalid device template ${source}:\n  ${t.join('\n  ')}`, { step: 'template', problems: t });
  return t;
}

export function loadDeviceTemplate(path: string, select?: string): DeviceTemplate {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read device template ${path}: ${(e as Error).message}`, { step: 'template' }, { cause: e });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`device template ${path} is not valid JSON: ${(e as Error).message}`, { step: 'template' }, { cause: e });
  }
  return parseDeviceTemplate(data, path, select);
}

/** Roles and channels by pin index (29 entries), as /api/pins reports them. */
export function templatePinArrays(t: DeviceTemplate): { roles: number[]; channels: number[]; channels2: number[] } {
  const roles = new Array<number>(PIN_COUNT).fill(0);
  const channels = new Array<number>(PIN_COUNT).fill(0);
  const channels2 = new Array<number>(PIN_COUNT).fill(0);
  for (const p of t.pins) {
    roles[p.pin] = p.roleIndex;
    channels[p.pin] = p.channel;
    channels2[p.pin] = p.channel2;
  }
  return { roles, channels, channels2 };
}

/** The flag word a plug provisioned from this template ends up with (OpenBeken's default is flag 10 alone). */
export function effectiveFlags(t: DeviceTemplate, defaults = 1n << 10n): bigint {
  const base = t.flags ?? defaults;
  return t.flag === undefined ? base : base | (1n << BigInt(t.flag));
}

/**
 * A plan names its template by file (relative to the plan, or as given) or by `<board>-<model>`
 * (e.g. "CB2S-RMC021"), looked up among the device files in devicesDir.
 */
export function resolveDeviceTemplate(ref: string, o: { baseDir?: string; devicesDir: string }): string {
  const candidates = [ref, ...(o.baseDir ? [join(o.baseDir, ref)] : []), join(o.devicesDir, ref)];
  for (const c of candidates) if (/\.json$/i.test(c) && existsSync(c)) return c;
  const want = ref.toLowerCase();
  const hits: string[] = [];
  for (const f of existsSync(o.devicesDir) ? readdirSync(o.devicesDir).filter((x) => x.endsWith('.json')).sort() : []) {
    try {
      const t = loadDeviceTemplate(join(o.devicesDir, f));
      if ([t.board, t.model].filter(Boolean).join('-').toLowerCase() === want) hits.push(join(o.devicesDir, f));
    } catch {
      // An invalid neighbour does not hide a valid match; it is reported when named itself.
    }
  }
  if (hits.length === 0) throw new ConfigError(`device template "${ref}": no such file, and no device "<board>-<model>" of that name in ${o.devicesDir}`, { step: 'template' });
  // Several files may carry the same device (the web app's list has RMC021 twice); the first by name wins.
  return hits[0]!;
}
