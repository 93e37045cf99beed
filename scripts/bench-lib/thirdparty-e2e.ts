/**
 * End to end (process start to exit) against UNMODIFIED bk7231tools: one `plugrig sim --pty`
 * chip, each timed run a fresh process of a flasher writing the same 1 MiB image at 0x11000 at
 * one baud rate through that pty: our CLI (`plugrig flash --port`) and bk7231tools
 * (`python3 -m bk7231tools write_flash`). Before every timed run the chip is put into the case's
 * starting content (another 1 MiB image, or erased) and after it the chip's CRC of the region is
 * asked independently; a run whose chip CRC differs from the image's is a failed flash, not a
 * time. Nothing of bk7231tools is part of this repository: BK7231TOOLS_DIR names a local
 * checkout; its only help is the pty shim (pty-modem-shim/sitecustomize.py).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, writeFileSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../../rig/core/log.ts';
import { RealClock } from '../../rig/core/clock.ts';
import { FlashError } from '../../rig/core/errors.ts';
import { Bk7231Flasher } from '../../rig/bk7231/flasher.ts';
import { crc32Raw } from '../../rig/bk7231/protocol/crc32.ts';
import { AutoReset } from '../../rig/bk7231/reset.ts';
import { openLink } from '../../rig/serial/open-link.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SHIM = fileURLToPath(new URL('./pty-modem-shim', import.meta.url));

/** 'plugrig-other': `plugrig flash` of another checkout (E2eOptions.otherPlugrig), e.g. the one before a change. */
export type E2eTool = 'plugrig' | 'bk7231tools' | 'plugrig-other';
export type E2eStart = 'factory' | 'blank';

export interface E2eRun {
  tool: E2eTool;
  start: E2eStart;
  baud: number;
  round: number;
  /**
   * Each tool at its own default rate (ours: no --baud; bk7231tools: no -b, i.e. 115200), not the
   * common one: issue 6 §5's "ours at its default baud vs bk7231tools at its default" pair.
   */
  defaults: boolean;
  /** Process start to exit, ms of wall time. */
  ms: number;
  /** CPU time of the process and its children (user + system), s, from /usr/bin/time; null where it is missing. */
  cpuS: number | null;
  /** Ours only: the flash's own time as `plugrig flash` prints it (port open to done); the rest of `ms` is start-up and exit. */
  flashS: number | null;
  /** The chip's CRC of the region after the run, asked by us, equal to the image's. */
  chipCrc: number;
  log: string;
}

export interface E2eResult {
  workDir: string;
  bk7231toolsDir: string;
  runs: E2eRun[];
  /** `plugrig --help`, process start to exit, ms (how much of each of our runs is start-up). */
  helpMs: number;
  /** What bin/plugrig.mjs runs: the compiled dist/ (as after `npm ci`), or the sources through tsx. */
  plugrigEntry: 'dist' | 'tsx';
  loadAverage: { before: number[]; after: number[] };
  /** Profiled extra runs (E2eOptions.profileDir): not timed for the ratios. */
  profiles: E2eProfile[];
}

/** One extra run per tool and start under `strace -c -f`, and ours once more under `node --cpu-prof`. */
export interface E2eProfile {
  tool: E2eTool;
  start: E2eStart;
  /** strace -c -f summary file, and its total line (calls, errors). */
  strace: string | null;
  syscalls: { total: number; errors: number; top: Array<{ name: string; calls: number }> } | null;
  /** V8 CPU profile of our process (ours only), and its self time by module group, ms. */
  cpuProfile: string | null;
  selfMs: Array<{ group: string; ms: number }>;
}

export interface E2eOptions {
  bk7231toolsDir: string;
  python?: string;
  /** The image every timed run writes (1 MiB at `offset`) and the other one a "factory" chip holds. */
  image: Uint8Array;
  other: Uint8Array;
  offset: number;
  baud: number;
  starts: readonly E2eStart[];
  /** Rounds of (ours, bk7231tools) per start, interleaved so that load drift hits both alike. */
  rounds?: number;
  log: Logger;
  progress: (message: string) => void;
  /** Also profile one run per tool and start into this directory (strace -c -f; node --cpu-prof for ours). */
  profileDir?: string;
  /** A second checkout whose `plugrig flash` is timed in every round too (same chip, same image, interleaved). */
  otherPlugrig?: string;
  /** Pairs (ours, bk7231tools) each at its own default rate, on a chip holding another image, after the rounds. Default 0. */
  defaultsRounds?: number;
  /** Our default rate (DEFAULT_BAUD), for the record of those runs. */
  ourDefaultBaud?: number;
}

/** A local bk7231tools checkout (BK7231TOOLS_DIR), or null. */
export function findBk7231tools(dir = process.env.BK7231TOOLS_DIR): string | null {
  return dir && existsSync(join(dir, 'bk7231tools', '__main__.py')) ? dir : null;
}

/** The same test bin/plugrig.mjs makes: dist/ is used only when no source is newer than it. */
function plugrigEntry(): 'dist' | 'tsx' {
  let built: number;
  try {
    built = statSync(join(ROOT, 'dist/cli/main.js')).mtimeMs;
  } catch {
    return 'tsx';
  }
  if (process.env.PLUGRIG_FROM_SOURCE) return 'tsx';
  for (const dir of ['cli', 'rig', 'sim', 'station', 'firmware', 'suites', 'reports']) {
    if (!existsSync(join(ROOT, dir))) continue;
    for (const e of readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })) {
      if (e.isFile() && e.name.endsWith('.ts') && statSync(join(e.parentPath, e.name)).mtimeMs > built) return 'tsx';
    }
  }
  return 'dist';
}

const TIME = ['/usr/bin/time'].find((p) => existsSync(p));

/** bk7231tools write_flash's rate without -b (its argparse default, `__main__.py`). */
export const BK7231TOOLS_DEFAULT_BAUD = 115_200;

/**
 * Run a process to its exit; resolves with its wall time, CPU time (through /usr/bin/time, which
 * both tools pay alike) and exit code, output to `logFile`.
 */
async function timedRun(cmd: string, args: readonly string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; logFile: string; timeoutMs: number }): Promise<{ ms: number; cpuS: number | null; code: number | null }> {
  const cpuFile = `${opts.logFile}.cpu`;
  const { ms, code } = await wallRun(TIME ?? cmd, TIME ? ['-f', '%U %S', '-o', cpuFile, cmd, ...args] : args, opts);
  let cpuS: number | null = null;
  if (TIME) {
    const m = /^([\d.]+) ([\d.]+)\s*$/m.exec(readFileSync(cpuFile, 'utf8'));
    if (m) cpuS = Number(m[1]) + Number(m[2]);
  }
  return { ms, cpuS, code };
}

function wallRun(cmd: string, args: readonly string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; logFile: string; timeoutMs: number }): Promise<{ ms: number; code: number | null }> {
  const fd = openSync(opts.logFile, 'w');
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', fd, fd] });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      closeSync(fd);
      reject(e);
    });
    child.on('exit', (code) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      clearTimeout(timer);
      closeSync(fd);
      resolve({ ms, code });
    });
  });
}

/** One session of our flasher on the pty (not timed): write `content` or just read the CRC, then reboot. */
async function session(path: string, log: Logger, work: (f: Bk7231Flasher) => Promise<number | void>): Promise<number | void> {
  const link = await openLink(path, { baudRate: 115200, clock: new RealClock(), log });
  try {
    const flasher = new Bk7231Flasher({ port: link, reset: new AutoReset(), log });
    await flasher.connect();
    const out = await work(flasher);
    await flasher.reboot();
    return out;
  } finally {
    await link.close();
  }
}

export async function runThirdPartyE2e(o: E2eOptions): Promise<E2eResult> {
  const python = o.python ?? '/usr/bin/python3';
  const work = mkdtempSync(join(tmpdir(), 'plugrig-e2e-'));
  const imagePath = join(work, 'OpenBK7231N_UA_0.0.0-bench.bin');
  writeFileSync(imagePath, o.image);
  const chipPath = join(work, 'chip');
  const before = loadavg();

  const helpMs = (await wallRun(process.execPath, ['bin/plugrig.mjs', '--help'], { cwd: ROOT, logFile: join(work, 'help.log'), timeoutMs: 60_000 })).ms;

  // The chip process, as a user would start it; it stays in the ROM (a pty has no reset lines).
  const simLog = openSync(join(work, 'sim.log'), 'w');
  const sim = spawn(process.execPath, ['bin/plugrig.mjs', 'sim', '--pty', '--link', chipPath], { cwd: ROOT, stdio: ['ignore', simLog, simLog] });
  const simExited = new Promise<void>((resolve) => sim.on('exit', () => resolve()));
  const runs: E2eRun[] = [];
  const profiles: E2eProfile[] = [];
  try {
    for (let i = 0; i < 300 && !existsSync(chipPath); i++) {
      if (sim.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    if (!existsSync(chipPath)) throw new Error(`plugrig sim --pty did not come up: ${readFileSync(join(work, 'sim.log'), 'utf8')}`);
    const blank = new Uint8Array(o.image.length).fill(0xff);
    const want = crc32Raw(o.image);
    const prepare = (start: E2eStart): Promise<unknown> => session(chipPath, o.log, async (f) => void (await f.write(start === 'factory' ? o.other : blank, o.offset)));
    // defaults: no rate option at all, so each tool runs at the rate a user gets without asking.
    const commandOf = (tool: E2eTool, defaults = false): [string, string[]] =>
      tool === 'bk7231tools'
        ? [python, ['-m', 'bk7231tools', 'write_flash', '-d', chipPath, ...(defaults ? [] : ['-b', String(o.baud)]), '-s', `0x${o.offset.toString(16)}`, imagePath]]
        : [process.execPath, ['bin/plugrig.mjs', 'flash', imagePath, '--port', chipPath, ...(defaults ? [] : ['--baud', String(o.baud)])]];
    const optsOf = (tool: E2eTool): { cwd: string; env?: NodeJS.ProcessEnv } =>
      tool === 'plugrig' ? { cwd: ROOT } : tool === 'plugrig-other' ? { cwd: o.otherPlugrig! } : { cwd: o.bk7231toolsDir, env: { ...process.env, PYTHONPATH: `${SHIM}:${o.bk7231toolsDir}`, PYTHONWARNINGS: 'ignore' } };
    const tools: E2eTool[] = ['plugrig', 'bk7231tools', ...(o.otherPlugrig ? (['plugrig-other'] as const) : [])];
    /** The chip's CRC of the region, asked by us after a run: a run that did not leave the image there is a failed flash. */
    const checkedCrc = async (tool: E2eTool, start: E2eStart): Promise<number> => {
      const chipCrc = (await session(chipPath, o.log, (f) => f.crc(o.offset, o.image.length))) as number;
      if (chipCrc !== want) {
        throw new FlashError(`${tool} exited 0 but the chip's CRC of the region is 0x${chipCrc.toString(16)}, the image's 0x${want.toString(16)} (${start})`, { phase: 'bench', chipCrc, expectedCrc: want });
      }
      return chipCrc;
    };
    for (let round = 1; round <= (o.rounds ?? 1); round++)
    for (const start of o.starts) {
      for (const tool of tools) {
        o.progress(`e2e round ${round}: ${tool} @${o.baud}, ${start === 'factory' ? 'chip holding another image' : 'blank chip'}: preparing the chip`);
        await prepare(start);
        o.progress(`e2e: ${tool} @${o.baud}: timed run`);
        const logFile = join(work, `${tool}-${start}-${round}.log`);
        const { ms, cpuS, code } = await timedRun(...commandOf(tool), { ...optsOf(tool), logFile, timeoutMs: 600_000 });
        if (code !== 0) throw new FlashError(`${tool} exited ${code} writing the image (${start}); see ${logFile}`, { phase: 'bench' });
        const chipCrc = await checkedCrc(tool, start);
        const flashS = tool !== 'bk7231tools' ? Number(/^time\s+([\d.]+) s$/m.exec(readFileSync(logFile, 'utf8'))?.[1] ?? NaN) : NaN;
        runs.push({ tool, start, baud: o.baud, round, defaults: false, ms, cpuS, flashS: Number.isFinite(flashS) ? flashS : null, chipCrc, log: logFile });
      }
    }
    for (let round = 1; round <= (o.defaultsRounds ?? 0); round++) {
      for (const tool of ['plugrig', 'bk7231tools'] as const) {
        const baud = tool === 'bk7231tools' ? BK7231TOOLS_DEFAULT_BAUD : (o.ourDefaultBaud ?? NaN);
        o.progress(`e2e defaults ${round}: ${tool} at its default rate, chip holding another image: preparing the chip`);
        await prepare('factory');
        o.progress(`e2e defaults: ${tool}: timed run`);
        const logFile = join(work, `${tool}-defaults-${round}.log`);
        const { ms, cpuS, code } = await timedRun(...commandOf(tool, true), { ...optsOf(tool), logFile, timeoutMs: 600_000 });
        if (code !== 0) throw new FlashError(`${tool} exited ${code} writing the image at its default rate; see ${logFile}`, { phase: 'bench' });
        const chipCrc = await checkedCrc(tool, 'factory');
        const flashS = tool === 'plugrig' ? Number(/^time\s+([\d.]+) s$/m.exec(readFileSync(logFile, 'utf8'))?.[1] ?? NaN) : NaN;
        runs.push({ tool, start: 'factory', baud, round, defaults: true, ms, cpuS, flashS: Number.isFinite(flashS) ? flashS : null, chipCrc, log: logFile });
      }
    }
    if (o.profileDir) {
      mkdirSync(o.profileDir, { recursive: true });
      for (const start of o.starts) {
        for (const tool of ['plugrig', 'bk7231tools'] as const) {
          const kinds = tool === 'plugrig' ? (['strace', 'cpu-prof'] as const) : (['strace'] as const);
          const profile: E2eProfile = { tool, start, strace: null, syscalls: null, cpuProfile: null, selfMs: [] };
          for (const kind of kinds) {
            o.progress(`e2e profile: ${tool} ${start} under ${kind}`);
            await prepare(start);
            const [cmd, args] = commandOf(tool);
            const base = join(o.profileDir, `${tool}-${start}`);
            const logFile = `${base}-${kind}.log`;
            const wrapped: [string, string[]] =
              kind === 'strace' ? ['/usr/bin/strace', ['-c', '-f', '-o', `${base}.strace`, cmd, ...args]] : [cmd, ['--cpu-prof', `--cpu-prof-dir=${base}.cpuprofile.d`, ...args]];
            const { code } = await wallRun(wrapped[0], wrapped[1], { ...optsOf(tool), logFile, timeoutMs: 600_000 });
            if (code !== 0) throw new FlashError(`${tool} exited ${code} under ${kind} (${start}); see ${logFile}`, { phase: 'bench' });
            await checkedCrc(tool, start);
            if (kind === 'strace') {
              profile.strace = `${base}.strace`;
              profile.syscalls = straceSummary(readFileSync(profile.strace, 'utf8'));
            } else {
              const dir = `${base}.cpuprofile.d`;
              const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
              if (file) {
                profile.cpuProfile = join(dir, file);
                profile.selfMs = cpuProfileGroups(readFileSync(profile.cpuProfile, 'utf8'));
              }
            }
          }
          profiles.push(profile);
        }
      }
    }
  } finally {
    sim.kill('SIGTERM');
    await Promise.race([simExited, new Promise((r) => setTimeout(r, 5000))]);
    if (sim.exitCode === null && sim.signalCode === null) sim.kill('SIGKILL');
    closeSync(simLog);
  }
  return { workDir: work, bk7231toolsDir: o.bk7231toolsDir, runs, helpMs, plugrigEntry: plugrigEntry(), loadAverage: { before, after: loadavg() }, profiles };
}

/** strace -c's total line and its most frequent calls. */
function straceSummary(text: string): E2eProfile['syscalls'] {
  const rows = text.split('\n').map((l) => l.trim().split(/\s+/));
  // "% time seconds usecs/call calls [errors] syscall"; the total row ends in "total".
  const total = rows.find((r) => r[r.length - 1] === 'total');
  if (!total) return null;
  const calls = (r: string[]): number => Number(r[3]);
  const top = rows
    .filter((r) => r.length >= 5 && /^[\d.]+$/.test(r[0]!) && r[r.length - 1] !== 'total')
    .map((r) => ({ name: r[r.length - 1]!, calls: calls(r) }))
    .sort((a, b) => b.calls - a.calls)
    .slice(0, 6);
  return { total: calls(total), errors: total.length >= 6 ? Number(total[4]) : 0, top };
}

/** Self time of a V8 CPU profile by module group (an npm package, a node: internal, our file, or V8's own). */
function cpuProfileGroups(json: string): Array<{ group: string; ms: number }> {
  const p = JSON.parse(json) as { nodes: Array<{ id: number; callFrame: { url: string; functionName: string } }>; samples: number[]; timeDeltas: number[] };
  const byNode = new Map<number, number>();
  p.samples.forEach((id, i) => byNode.set(id, (byNode.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
  const groups = new Map<string, number>();
  for (const n of p.nodes) {
    const url = n.callFrame.url;
    const pkg = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(url)?.[1];
    const group = !url ? `(${n.callFrame.functionName || 'v8'})` : pkg ? `npm:${pkg}` : url.startsWith('node:') ? url.replace(/^node:internal\/(\w+).*/, 'node:$1') : url.replace(/^.*\/(dist|cli|rig|sim|firmware|bin)\//, '$1/').replace(/\/[^/]+$/, '/');
    groups.set(group, (groups.get(group) ?? 0) + (byNode.get(n.id) ?? 0) / 1000);
  }
  return [...groups].map(([group, ms]) => ({ group, ms })).sort((a, b) => b.ms - a.ms);
}
