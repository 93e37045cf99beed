/**
 * Where the time of one end-to-end flash goes, for our CLI and for unmodified bk7231tools alike:
 * the virtual chip runs in THIS process behind the same PtyBridge `plugrig sim --pty` uses, and
 * every command is timestamped on the chip's side of the pty (wall clock): when its first and
 * last bytes reached the simulator, when the chip queued its reply. From those, per command kind:
 * the time the chip spent on it (modelled wire time of the request and the reply, the operation,
 * plus the simulator's timer slip) and the idle gap before it (reply left the chip -> the next
 * command's first byte here: pty/socat transit both ways plus the tool's own think time); and the
 * process's start-up (spawn -> first byte) and exit (last reply -> exit). Not a timed ratio (the
 * harness itself shares the CPU): bench-flash's case 5 measures those; this says where they go.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { RealClock, type Clock } from '../../rig/core/clock.ts';
import { Bk7231Flasher } from '../../rig/bk7231/flasher.ts';
import { AutoReset } from '../../rig/bk7231/reset.ts';
import { openLink } from '../../rig/serial/open-link.ts';
import { HostFrameParser } from '../../sim/bk7231/host-frame-parser.ts';
import { VirtualBk7231 } from '../../sim/bk7231/virtual-bk7231.ts';
import { PtyBridge } from '../../sim/serial/pty-bridge.ts';
import type { UartTx, VirtualUartDevice } from '../../sim/serial/uart-device.ts';
import { wireTimeMs } from '../../sim/serial/virtual-uart-wire.ts';
import type { E2eOptions, E2eStart, E2eTool } from './thirdparty-e2e.ts';
import { writeFloor, type FlashFloor } from './floor.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SHIM = fileURLToPath(new URL('./pty-modem-shim', import.meta.url));

/** One command as the simulator saw it (ms on this process's performance clock). */
export interface TimedCommand {
  kind: string;
  /** First / last byte of the request handed to the simulator by the pty. */
  firstAt: number;
  lastAt: number;
  /** Reply queued by the chip (null: none, e.g. Reboot), and its modelled wire time at the chip's rate. */
  replyAt: number | null;
  replyWireMs: number;
  /** Request's modelled wire time at the chip's rate when it arrived. */
  requestWireMs: number;
}

export interface KindSummary {
  kind: string;
  n: number;
  /** Sum over commands: first request byte here -> reply queued (modelled request wire + operation + sim timer slip). */
  chipMs: number;
  /** Sum over commands: previous reply's last byte modelled out of the chip -> this request's first byte here. */
  gapMs: number;
  gapMedianMs: number;
  gapP95Ms: number;
}

export interface TimelineRun {
  tool: E2eTool;
  start: E2eStart;
  baud: number;
  /** Process spawn -> exit. */
  totalMs: number;
  /** Spawn -> the first byte of the first command reached the simulator. */
  startupMs: number;
  /** Last reply out of the chip (or the last request, when it has no reply) -> process exit. */
  exitMs: number;
  commands: number;
  byKind: KindSummary[];
  /** Sum of all gaps (the wire idle between a reply and the next command). */
  gapMs: number;
  /** Sum of the chip's time on every command (see KindSummary.chipMs). */
  chipMs: number;
  /** The write's floor from the chip's content before the run (floor.ts, independent of either tool's plan). */
  floor: FlashFloor;
}

/** A command's kind from its frame: the ROM command name, with the erase size and whether a CRC covers one sector or more. */
function kindOf(form: 'short' | 'long', code: number, payload: Uint8Array): string {
  const u32 = (i: number): number => (payload[i]! | (payload[i + 1]! << 8) | (payload[i + 2]! << 16) | (payload[i + 3]! << 24)) >>> 0;
  if (form === 'short') {
    switch (code) {
      case 0x00: return 'LinkCheck';
      case 0x01: return 'WriteReg';
      case 0x03: return 'ReadReg';
      case 0x0e: return 'Reboot';
      case 0x0f: return 'SetBaudRate';
      case 0x10: {
        const len = u32(4) - u32(0) + 1;
        return len <= 0x101 ? 'CheckCRC(<=257B)' : len <= 0x1000 ? 'CheckCRC(4K)' : len <= 0x10000 ? 'CheckCRC(<=64K)' : 'CheckCRC(>64K)';
      }
      default: return `short 0x${code.toString(16)}`;
    }
  }
  switch (code) {
    case 0x06: return 'FlashWrite';
    case 0x07: return 'Write4K';
    case 0x09: return 'Read4K';
    case 0x0c: return 'ReadSR';
    case 0x0d: return 'WriteSR';
    case 0x0e: return 'GetMID';
    case 0x0f: return payload[0] === 0x20 ? 'Erase4K' : payload[0] === 0x52 ? 'Erase32K' : payload[0] === 0xd8 ? 'Erase64K' : 'Erase?';
    default: return `long 0x${code.toString(16)}`;
  }
}

/** Records what crosses the chip's UART, on the wall clock, without changing anything the chip does. */
class Recorder implements VirtualUartDevice {
  readonly chip: VirtualBk7231;
  commands: TimedCommand[] = [];
  readonly #parser = new HostFrameParser();
  #frameStart: number | null = null;
  #frameStartBaud = 115200;

  constructor(chip: VirtualBk7231) {
    this.chip = chip;
  }

  baudRate(): number {
    return this.chip.baudRate();
  }

  connect(tx: UartTx, clock: Clock): void {
    this.chip.connect(
      {
        send: (bytes) => {
          const c = this.commands[this.commands.length - 1];
          if (c && c.replyAt === null) {
            c.replyAt = performance.now();
            c.replyWireMs = wireTimeMs(bytes.length, this.chip.baudRate());
          }
          tx.send(bytes);
        },
      },
      clock,
    );
  }

  receive(bytes: Uint8Array, atMs?: number): void {
    this.chip.receive(bytes, atMs);
  }

  /** A chunk the pty handed to the simulator (before the wire paces it). */
  hostChunk(chunk: Uint8Array): void {
    const now = performance.now();
    for (let i = 0; i < chunk.length; i++) {
      // The first 01 after a complete frame starts the next one (neither tool sends other bytes between).
      if (this.#frameStart === null && chunk[i] === 0x01) {
        this.#frameStart = now;
        this.#frameStartBaud = this.chip.baudRate();
      }
      const f = this.#parser.push(chunk[i]!);
      if (f) {
        const bytes = (f.form === 'short' ? 5 : 8) + f.payload.length;
        this.commands.push({ kind: kindOf(f.form, f.code, f.payload), firstAt: this.#frameStart ?? now, lastAt: now, replyAt: null, replyWireMs: 0, requestWireMs: wireTimeMs(bytes, this.#frameStartBaud) });
        this.#frameStart = null;
      }
    }
  }
}

function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return 0;
  const v = [...xs].sort((a, b) => a - b);
  return v[Math.min(v.length - 1, Math.floor(q * (v.length - 1) + 0.5))]!;
}

export function summarizeTimeline(cmds: readonly TimedCommand[], spawnAt: number, exitAt: number): Omit<TimelineRun, 'tool' | 'start' | 'baud' | 'floor'> {
  const kinds = new Map<string, { n: number; chip: number; gaps: number[] }>();
  let prevEnd: number | null = null;
  for (const c of cmds) {
    const k = kinds.get(c.kind) ?? { n: 0, chip: 0, gaps: [] };
    k.n++;
    k.chip += (c.replyAt ?? c.lastAt) - c.firstAt;
    if (prevEnd !== null) k.gaps.push(Math.max(0, c.firstAt - prevEnd));
    kinds.set(c.kind, k);
    prevEnd = c.replyAt !== null ? c.replyAt + c.replyWireMs : c.lastAt;
  }
  const byKind = [...kinds].map(([kind, k]) => ({ kind, n: k.n, chipMs: k.chip, gapMs: k.gaps.reduce((a, b) => a + b, 0), gapMedianMs: quantile(k.gaps, 0.5), gapP95Ms: quantile(k.gaps, 0.95) }));
  byKind.sort((a, b) => b.chipMs + b.gapMs - (a.chipMs + a.gapMs));
  return {
    totalMs: exitAt - spawnAt,
    startupMs: cmds.length ? cmds[0]!.firstAt - spawnAt : NaN,
    exitMs: prevEnd !== null ? exitAt - prevEnd : NaN,
    commands: cmds.length,
    byKind,
    gapMs: byKind.reduce((n, k) => n + k.gapMs, 0),
    chipMs: byKind.reduce((n, k) => n + k.chipMs, 0),
  };
}

/** The timed bench's chip, images and tools, without its rounds and profiling. */
export interface TimelineOptions
  extends Pick<E2eOptions, 'bk7231toolsDir' | 'python' | 'image' | 'other' | 'offset' | 'baud' | 'starts' | 'log' | 'progress'> {
  tools: readonly E2eTool[];
}

/** One run per tool and start, each from the same starting content, with the chip in this process. */
export async function runE2eTimeline(o: TimelineOptions): Promise<{ runs: TimelineRun[]; loadAverage: { before: number[]; after: number[] }; workDir: string }> {
  const work = mkdtempSync(join(tmpdir(), 'plugrig-e2e-timeline-'));
  const imagePath = join(work, 'OpenBK7231N_UA_0.0.0-bench.bin');
  writeFileSync(imagePath, o.image);
  const link = join(work, 'chip');
  const before = loadavg();
  // As `plugrig sim --pty` builds it (cli/commands/sim.ts): stays in the ROM, flash protected.
  const chip = new VirtualBk7231({ seed: 1, linkWindowMs: Infinity, initialSr: 0x4004, cenWiring: 'none' });
  const rec = new Recorder(chip);
  const bridge = await PtyBridge.start({ device: rec, link, clock: new RealClock() });
  const hostWrite = bridge.wire.hostWrite.bind(bridge.wire);
  bridge.wire.hostWrite = (chunk: Uint8Array): number => {
    rec.hostChunk(chunk);
    return hostWrite(chunk);
  };
  chip.powerOn();
  const runs: TimelineRun[] = [];
  try {
    for (const start of o.starts) {
      for (const tool of o.tools) {
        o.progress(`timeline: ${tool}, ${start}: preparing the chip`);
        const l = await openLink(link, { baudRate: 115200, clock: new RealClock(), log: o.log });
        try {
          const f = new Bk7231Flasher({ port: l, reset: new AutoReset(), log: o.log });
          await f.connect();
          await f.write(start === 'factory' ? o.other : new Uint8Array(o.image.length).fill(0xff), o.offset);
          await f.reboot();
        } finally {
          await l.close();
        }
        await new Promise((r) => setTimeout(r, 300));
        const mem = chip.flash.read(0, chip.flash.size);
        const floor = writeFloor({ offset: o.offset, image: o.image, current: (a, n) => mem.slice(a, a + n), baud: o.baud, chip: chip.timing, flash: chip.flashTiming });
        rec.commands = [];
        const [cmd, args, cwd, env] =
          tool === 'bk7231tools'
            ? [o.python ?? '/usr/bin/python3', ['-m', 'bk7231tools', 'write_flash', '-d', link, '-b', String(o.baud), '-s', `0x${o.offset.toString(16)}`, imagePath], o.bk7231toolsDir, { ...process.env, PYTHONPATH: `${SHIM}:${o.bk7231toolsDir}`, PYTHONWARNINGS: 'ignore' }]
            : [process.execPath, ['bin/plugrig.mjs', 'flash', imagePath, '--port', link, '--baud', String(o.baud)], ROOT, process.env];
        o.progress(`timeline: ${tool}, ${start}: run`);
        const logFile = join(work, `${tool}-${start}.log`);
        const fd = openSync(logFile, 'w');
        const { spawnAt, exitAt, code } = await new Promise<{ spawnAt: number; exitAt: number; code: number | null }>((resolve, reject) => {
          const spawnAt = performance.now();
          const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', fd, fd] });
          child.on('error', reject);
          child.on('exit', (code) => resolve({ spawnAt, exitAt: performance.now(), code }));
        });
        closeSync(fd);
        if (code !== 0) throw new Error(`${tool} exited ${code} (${start}); see ${logFile}`);
        runs.push({ tool, start, baud: o.baud, ...summarizeTimeline(rec.commands, spawnAt, exitAt), floor });
        writeFileSync(join(work, `${tool}-${start}.commands.json`), JSON.stringify(rec.commands.map((c) => ({ ...c, firstAt: c.firstAt - spawnAt, lastAt: c.lastAt - spawnAt, replyAt: c.replyAt === null ? null : c.replyAt - spawnAt }))));
      }
    }
  } finally {
    await bridge.close();
  }
  return { runs, loadAverage: { before, after: loadavg() }, workDir: work };
}

/** The breakdown as text: per run, start-up, exit, and per command kind n / chip time / idle gaps. */
export function timelineText(t: Awaited<ReturnType<typeof runE2eTimeline>>): string {
  const out: string[] = [`load average before ${t.loadAverage.before.map((x) => x.toFixed(2)).join(' ')}, after ${t.loadAverage.after.map((x) => x.toFixed(2)).join(' ')}; per-command logs in ${t.workDir}`];
  const s = (ms: number): string => `${(ms / 1000).toFixed(3)} s`;
  for (const r of t.runs) {
    out.push('', `${r.tool}, ${r.start === 'factory' ? 'chip holding another image' : 'blank chip'}, @${r.baud}: ${s(r.totalMs)} spawn to exit; start-up ${s(r.startupMs)}, chip ${s(r.chipMs)}, idle gaps ${s(r.gapMs)}, exit ${s(r.exitMs)}; ${r.commands} commands`);
    const f = r.floor;
    out.push(`  write floor (floor.ts) ${s(f.totalMs)} = wire ${s(f.wireMs)} + erase ${s(f.eraseMs)} (4K/32K/64K ${f.erases['4K']}/${f.erases['32K']}/${f.erases['64K']}) + last page + CRC ${s(f.crcMs)}; spawn to exit / floor ${(r.totalMs / f.totalMs).toFixed(3)}, chip time / floor ${(r.chipMs / f.totalMs).toFixed(3)}`);
    out.push(`  ${'kind'.padEnd(18)} ${'n'.padStart(5)} ${'chip s'.padStart(8)} ${'gaps s'.padStart(8)} ${'gap med ms'.padStart(11)} ${'gap p95 ms'.padStart(11)}`);
    for (const k of r.byKind) out.push(`  ${k.kind.padEnd(18)} ${String(k.n).padStart(5)} ${(k.chipMs / 1000).toFixed(3).padStart(8)} ${(k.gapMs / 1000).toFixed(3).padStart(8)} ${k.gapMedianMs.toFixed(2).padStart(11)} ${k.gapP95Ms.toFixed(2).padStart(11)}`);
  }
  return out.join('\n');
}
