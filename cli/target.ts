import { RealClock, VirtualClock, type Clock } from '../rig/core/clock.ts';
import { ConfigError } from '../rig/core/errors.ts';
import { rootLogger } from '../rig/core/log.ts';
import { AutoReset, ModemLineReset, NoReset, BK7231TOOLS_RESET_SEQUENCE, HID_DOWNLOAD_RESET_SEQUENCE, type ResetStrategy } from '../rig/bk7231/reset.ts';
import { openLink } from '../rig/serial/open-link.ts';
import type { SerialLink } from '../rig/serial/serial-link.ts';
import type { VirtualBk7231 } from '../sim/bk7231/virtual-bk7231.ts';
import type { FaultsSpec } from '../rig/jig/fault-spec.ts';
import { cliStderr } from './io.ts';

/** Options every chip-facing command shares. */
export interface TargetArgs {
  port?: string;
  sim?: boolean;
  reset?: string;
  'sim-seed'?: number;
  'sim-time'?: 'real' | 'virtual';
  'sim-protected'?: boolean;
  'sim-faults'?: string;
}

export const targetOptions = {
  port: { type: 'string', describe: 'serial port of the USB-UART on the CB2S UART1 (e.g. /dev/ttyUSB0, a pty link)' },
  sim: { type: 'boolean', describe: 'use a virtual BK7231N (in-process virtual jig)' },
  reset: {
    type: 'string',
    default: 'auto',
    describe: `how to reset the chip: auto (rts where the port has DTR/RTS, else wait for a manual reset), rts (${BK7231TOOLS_RESET_SEQUENCE}), hid (${HID_DOWNLOAD_RESET_SEQUENCE}), none, or a sequence like "R1|W100|R0"`,
  },
  'sim-seed': { type: 'number', default: 1, describe: 'virtual chip: seed for its MAC and synthetic flash content' },
  'sim-time': { choices: ['real', 'virtual'] as const, default: 'real', describe: 'virtual chip: real-time pacing, or virtual time (instant)' },
  'sim-protected': { type: 'boolean', default: true, describe: 'virtual chip: start with the flash block-protected (SR 0x4004) like many shipped plugs' },
  'sim-faults': { type: 'string', describe: 'virtual chip: faults to inject, as JSON in the form of a jig file\'s faults.chip block (e.g. {"strayWrites":[{"nth":3,"addressXor":1048576}]})' },
} as const;

/** `--sim-faults` as the chip faults it names (a jig file's faults.chip block); refused before anything is opened. */
async function simFaults(args: TargetArgs): Promise<FaultsSpec['chip']> {
  const text = args['sim-faults'];
  if (text === undefined) return undefined;
  if (!args.sim) throw new ConfigError('--sim-faults applies to the virtual chip only: add --sim', { step: 'args' });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`--sim-faults is not JSON: ${(e as Error).message}`, { step: 'args' });
  }
  const { ChipFaultsSchema } = await import('../rig/jig/fault-spec.ts');
  const parsed = ChipFaultsSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(`--sim-faults${issue.path.length ? '.' + issue.path.join('.') : ''}: ${issue.message}`, { step: 'args' });
  }
  return parsed.data;
}

export interface Target {
  link: SerialLink;
  reset: ResetStrategy;
  clock: Clock;
  chip?: VirtualBk7231;
  describe: string;
  close(): Promise<void>;
}

/** `--reset` to a strategy; `notice` carries the one-time "no modem lines" message (stderr). */
export function resetFrom(spec: string, notice: (message: string) => void = (m) => cliStderr().write(`plugrig: ${m}\n`)): ResetStrategy {
  if (spec === 'auto') return new AutoReset({ notice });
  if (spec === 'rts') return ModemLineReset.bk7231tools();
  if (spec === 'hid') return ModemLineReset.hidDownload();
  if (spec === 'none') return new NoReset();
  if (/^([DRW]\d+)(\|[DRW]\d+)*$/.test(spec)) return new ModemLineReset(spec);
  throw new ConfigError(`--reset "${spec}" is not auto, rts, hid, none or a sequence like "R1|W100|R0"`, { step: 'args' });
}

/** Open the chip to talk to: a real/pty serial port, or a fresh virtual chip. */
export async function openTarget(args: TargetArgs): Promise<Target> {
  if (args.sim && args.port) throw new ConfigError('give either --port or --sim, not both', { step: 'args' });
  if (!args.sim && !args.port) throw new ConfigError('no target: give --port <serial port> or --sim', { step: 'args' });
  // A malformed --reset is refused before the port is opened.
  const reset = resetFrom(args.reset ?? 'auto');
  const log = rootLogger();
  const faults = await simFaults(args);
  if (args.sim) {
    // Loaded only for --sim: a real port's flash, backup or info does not pay for the simulator's modules.
    const [{ VirtualSerialBus }, { VirtualBk7231 }, { busEndpoints }, { chipFaultOptions }] = await Promise.all([
      import('../sim/serial/virtual-binding.ts'),
      import('../sim/bk7231/virtual-bk7231.ts'),
      import('../sim/serial/bus-endpoints.ts'),
      import('../sim/jig/slot-faults.ts'),
    ]);
    const clock = args['sim-time'] === 'virtual' ? new VirtualClock() : new RealClock();
    const bus = new VirtualSerialBus(clock);
    const chip = new VirtualBk7231({ seed: args['sim-seed'] ?? 1, initialSr: args['sim-protected'] === false ? 0 : 0x4004, ...chipFaultOptions(faults) });
    bus.attach('sim:uart1', chip, { modemLines: true });
    chip.powerOn();
    const link = await openLink('sim:uart1', { baudRate: 115200, clock, endpoints: busEndpoints(bus), log });
    return {
      link,
      reset,
      clock,
      chip,
      describe: `virtual BK7231N (seed ${args['sim-seed'] ?? 1}, ${clock.kind} time)`,
      close: () => link.close(),
    };
  }
  const clock = new RealClock();
  const link = await openLink(args.port!, { baudRate: 115200, clock, log });
  return { link, reset, clock, describe: args.port!, close: () => link.close() };
}

/** Parse 0x-prefixed or decimal numbers, with K/M suffixes (0x11000, 68K, 2M). */
export function parseSize(text: string | number | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  if (typeof text === 'number') return text;
  const m = /^(0x[0-9a-f]+|\d+)([kKmM]?)$/i.exec(text.trim());
  if (!m) throw new ConfigError(`${what} "${text}" is not a number (use 0x11000, 69632, 68K or 2M)`, { step: 'args' });
  const base = Number(m[1]);
  const mult = m[2] === '' ? 1 : /k/i.test(m[2]!) ? 1024 : 1024 * 1024;
  return base * mult;
}
