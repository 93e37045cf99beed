import { crc32 } from 'node:zlib';
import type { Clock } from '../../rig/core/clock.ts';
import { ConfigError } from '../../rig/core/errors.ts';
import type { ModemLines, UartTx, VirtualUartDevice } from '../serial/uart-device.ts';
import { FLASH_PARTS, DEFAULT_FLASH_PART, type FlashPart, type FlashPartName, type FlashTiming } from './flash-parts.ts';
import { HostFrameParser, type HostFrame } from './host-frame-parser.ts';
import { LongCmd, REBOOT_MAGIC, ShortCmd, Status, le32, longReply, readLe32, shortReply } from './rom-replies.ts';
import { FLASH_PAGE_BYTES, SpiFlash } from './spi-flash.ts';
import { identifyBootImage, type BootImage } from './boot-image.ts';
import { factoryImages, type FlashContent } from './factory-content.ts';
import { macFromSeed, parseMac } from './synthetic-flash.ts';
import { DEFAULT_CHIP_TIMING, uartWireMs, type ChipTiming } from './timing.ts';

/**
 * off: no power. reset: CEN held low or the chip is coming out of reset. rom: link window open.
 * app: the ROM handed over to the flash content; `firmware` says what that content runs (possibly
 * nothing: the CPU then sits in the bootloader's failure loop until the next reset).
 */
export type ChipState = 'off' | 'reset' | 'rom' | 'rom-linked' | 'app';

/**
 * Which adapter modem line pulls CEN low when asserted. 'rts' is what bk7231tools and
 * hid_download_py expect (bk7231-protocol.md §4.2); 'none' = modem lines not wired.
 */
export type CenWiring = 'rts' | 'dtr' | 'none';

export const ROM_BAUD = 115200;
export const CHIP_ID_REG = 0x00800000;
export const BK7231N_CHIP_ID = 0x7231c;
export const EFUSE_CTRL_REG = 0x00800074;
export const EFUSE_DATA_REG = 0x00800078;
/** Tuya's default eFuse encryption key words (bk7231-protocol.md §8), stored LE in eFuse bytes 0..15. */
const TUYA_DEFAULT_KEY = [0x510fb093, 0xa3cbeadc, 0x5993a17e, 0xc7adeb03];
/** SPI NOR erase opcodes accepted by FlashErase (0x0F long) and the unit each erases. */
const ERASE_UNITS: Record<number, 4096 | 32768 | 65536> = { 0x20: 4096, 0x52: 32768, 0xd8: 65536 };
const WRITE_4K_LEN = 0x1005;
/** Cap for CheckCRC ranges: the SPI controller sends 24-bit addresses (16 MiB). ASSUMPTION. */
const CRC_MAX_BYTES = 1 << 24;

export interface VirtualBk7231Options {
  /** Determines synthetic content (bootloader bytes, calibration data, default MAC). Default 1. */
  seed?: number;
  /** Unit MAC, "C8:47:8C:12:34:56" or 6 bytes; default derived from the seed with a C8:47:8C prefix. */
  mac?: string | Uint8Array;
  /** Flash part model; default TH25Q16HB. */
  part?: FlashPartName | FlashPart;
  /** JEDEC ID override (MFR, TYPE, CAP). */
  flashId?: readonly [number, number, number];
  /** Initial SR1 | SR2 << 8, e.g. 0x4004 (protected). Default 0. */
  initialSr?: number;
  /** Shorthand for timing.linkWindowMs. */
  linkWindowMs?: number;
  timing?: Partial<ChipTiming>;
  /** Overrides of the part's operation times. */
  flashTiming?: Partial<FlashTiming>;
  /**
   * What the flash holds before initialImages: 'factory' (default: bootloader, stock Tuya app, Tuya
   * storage, RF/MAC sector) or 'blank' (bootloader and RF/MAC sector only).
   */
  content?: FlashContent;
  /** Written over the synthetic content (e.g. an OpenBeken UA image at 0x11000). */
  initialImages?: ReadonlyArray<{ address: number; data: Uint8Array }>;
  /** Defect "image does not boot": whatever the flash holds, the app never starts (as a damaged boot path would). */
  appDoesNotBoot?: boolean;
  cenWiring?: CenWiring;
  /** Text on which the application reboots into the ROM (OpenBeken: "reboot\r\n"); null = never. */
  appRebootText?: string | null;
  /** 32 eFuse bytes; default: Tuya's default key in bytes 0..15, rest 0. */
  efuse?: Uint8Array;
  /** Injected faults (off by default), for tests that must see the host catch them. */
  faults?: Bk7231Faults;
}

/**
 * Deliberate faults. Keys are 4 KiB sector addresses; values count how many commands are hit
 * (Infinity = every one). Replies stay well-formed: only the host's CRC checks can notice.
 */
export interface Bk7231Faults {
  /** FlashWrite4K/FlashWrite commands into the sector whose pages program nothing (cells stay as they were). */
  failPrograms?: Readonly<Record<number, number>>;
  /** FlashRead4K replies for the sector with one data bit flipped. */
  garbleReads?: Readonly<Record<number, number>>;
  /**
   * Missed link window: the first N ROM starts boot the application at once (the host's LinkCheck
   * comes too late), as when the reset pulse is too short or the adapter's latency too high.
   */
  missLinkWindows?: number;
  /**
   * Brown-outs: the supply dips during the nth FlashErase (`during: 'erase'`) or FlashWrite4K
   * (`during: 'write'`) this chip executes (1-based, counted over the chip's life). The operation
   * stops halfway (half the unit erased / half the pages programmed), no reply is sent, and the
   * chip resets (ROM, then the application after the link window).
   */
  brownOuts?: ReadonlyArray<{ during: 'erase' | 'write'; nth: number }>;
  /** Flash that stays protected: FlashWriteSR is echoed but the status register keeps its value (SRP / WP# held). */
  statusRegisterLocked?: boolean;
  /**
   * Stray writes: the nth FlashWrite4K this chip receives (1-based, over its life) arrives with its
   * address XOR `addressXor` (bits flipped on the line), so it programs, and echoes, that address.
   */
  strayWrites?: ReadonlyArray<{ nth: number; addressXor: number }>;
}

export interface Bk7231Counters {
  /** Executed commands by name (e.g. "FlashErase"); unknown ones as "short:0x70" / "long:0x0a". */
  commands: Record<string, number>;
  /** Frames with a known code but an impossible payload length (no reply). */
  malformed: number;
  bytesIn: number;
  bytesOut: number;
  /** Bytes lost because they arrived while busy with a full RX buffer. */
  rxDropped: number;
  eraseBusyMs: number;
  programBusyMs: number;
  crcBusyMs: number;
  readBusyMs: number;
  /** Chip resets (power-on, CEN release, Reboot command, app reboot, brown-out). */
  resets: number;
  /** Injected brown-outs that happened. */
  brownOuts: number;
  appBoots: number;
  links: number;
  /** Time from ROM start to the accepted LinkCheck of the latest link, ms. */
  lastLinkMs: number | undefined;
}

/**
 * An erase or program command the chip starts, with the address exactly as it arrived (before the
 * flash wraps it): what a soak needs to see where a flipped address bit sent it.
 */
export interface FlashOperation {
  kind: 'erase' | 'program';
  /** Address field of the command as received (may lie beyond the flash; the flash aliases it). */
  address: number;
  length: number;
  /** Modelled time the chip started it, ms. */
  atMs: number;
}

interface Write4KPipeline {
  address: number;
  /** Injected fault: this command programs nothing. */
  fails?: boolean;
  /** Pages already handed to the flash. */
  pages: number;
  /** When the flash finishes the last scheduled page. */
  end: number;
}

/**
 * The BK7231N as seen from its UART1: mask-ROM downloader with a timed SPI flash behind it.
 * Follows bk7231-protocol.md §14; every reply leaves at the time its operation would finish on
 * the shared Clock. While a command runs the chip is busy: incoming bytes wait in a small RX
 * buffer (timing.rxBufferBytes) and are parsed afterwards.
 *
 * All chip times are MODELLED: they derive from the modelled arrival times the wire passes to
 * receive() (the ideal timeline), never from the time a callback happens to run. Under a real
 * clock with event-loop lag the model therefore decides exactly as under a virtual clock; only
 * replies whose modelled time has already passed leave late (the wire queues them at once).
 */
export class VirtualBk7231 implements VirtualUartDevice {
  readonly flash: SpiFlash;
  readonly mac: Uint8Array;
  readonly timing: Readonly<ChipTiming>;
  readonly flashTiming: Readonly<FlashTiming>;
  readonly counters: Bk7231Counters;

  readonly #parser = new HostFrameParser();
  readonly #commandListeners = new Set<(name: string, count: number) => void>();
  readonly #cenWiring: CenWiring;
  readonly #appRebootText: Uint8Array | null;
  readonly #registers = new Map<number, number>();
  readonly #efuse: Uint8Array;
  readonly #timers = new Set<() => void>();
  #clock: Clock | undefined;
  #tx: UartTx | undefined;
  #state: ChipState = 'off';
  #powered = false;
  #cenHigh = true;
  #baud = ROM_BAUD;
  /** Modelled time at which the current operation and its reply end; Infinity while rebooting. */
  #busyUntil = -Infinity;
  /** Bytes waiting in the RX buffer. */
  #rxQueue: number[] = [];
  /**
   * Modelled times at which recently buffered bytes were read out (non-decreasing). A byte whose
   * delivery runs late, after the buffer was read at the end of a busy period it arrived in, still
   * finds those bytes in the buffer at its arrival time.
   */
  #rxReadAt: number[] = [];
  /** Modelled time up to which buffered bytes have been handled. */
  #drainedTo = -Infinity;
  #romStartedAt = 0;
  #write4k: Write4KPipeline | undefined;
  #appTail: number[] = [];
  #firmware: BootImage | undefined;
  readonly #appDoesNotBoot: boolean;
  readonly #stateListeners = new Set<(state: ChipState) => void>();
  readonly #flashOpListeners = new Set<(op: FlashOperation) => void>();
  readonly #failPrograms: Map<number, number>;
  readonly #garbleReads: Map<number, number>;
  #missLinkWindows: number;
  readonly #brownOuts: ReadonlyArray<{ during: 'erase' | 'write'; nth: number }>;
  readonly #srLocked: boolean;
  /** FlashErase / FlashWrite4K commands executed so far (brown-out schedule). */
  #erases = 0;
  #writes = 0;
  readonly #strayWrites: ReadonlyArray<{ nth: number; addressXor: number }>;
  /** FlashWrite4K frames received (the strayWrites fault counts them). */
  #write4kReceived = 0;

  constructor(options: VirtualBk7231Options = {}) {
    const seed = options.seed ?? 1;
    const part = typeof options.part === 'object' ? options.part : FLASH_PARTS[options.part ?? DEFAULT_FLASH_PART];
    if (!part) throw new ConfigError(`unknown flash part "${String(options.part)}"`, { step: 'sim-bk7231' });
    this.flash = new SpiFlash({ part, jedecId: options.flashId, initialSr: options.initialSr });
    this.timing = { ...DEFAULT_CHIP_TIMING, ...options.timing, ...(options.linkWindowMs !== undefined ? { linkWindowMs: options.linkWindowMs } : {}) };
    this.flashTiming = { ...part.timing, ...options.flashTiming };
    this.mac = options.mac === undefined ? macFromSeed(seed) : typeof options.mac === 'string' ? parseMac(options.mac) : Uint8Array.from(options.mac);
    this.#cenWiring = options.cenWiring ?? 'rts';
    const text = options.appRebootText === undefined ? 'reboot\r\n' : options.appRebootText;
    this.#appRebootText = text === null || text === '' ? null : new TextEncoder().encode(text);
    this.#efuse = new Uint8Array(32);
    if (options.efuse) this.#efuse.set(options.efuse.subarray(0, 32));
    else TUYA_DEFAULT_KEY.forEach((w, i) => this.#efuse.set(le32(w), i * 4));
    this.counters = {
      commands: {}, malformed: 0, bytesIn: 0, bytesOut: 0, rxDropped: 0,
      eraseBusyMs: 0, programBusyMs: 0, crcBusyMs: 0, readBusyMs: 0,
      resets: 0, brownOuts: 0, appBoots: 0, links: 0, lastLinkMs: undefined,
    };
    for (const img of factoryImages(options.content ?? 'factory', seed, this.mac)) this.flash.load(img.address, img.data);
    for (const img of options.initialImages ?? []) this.flash.load(img.address, img.data);
    this.#appDoesNotBoot = options.appDoesNotBoot ?? false;
    this.#failPrograms = faultMap(options.faults?.failPrograms);
    this.#garbleReads = faultMap(options.faults?.garbleReads);
    this.#missLinkWindows = options.faults?.missLinkWindows ?? 0;
    this.#brownOuts = options.faults?.brownOuts ?? [];
    this.#srLocked = options.faults?.statusRegisterLocked ?? false;
    this.#strayWrites = options.faults?.strayWrites ?? [];
  }

  // ---- VirtualUartDevice ----

  baudRate(): number {
    return this.#baud;
  }

  connect(tx: UartTx, clock: Clock): void {
    this.#tx = tx;
    this.#clock = clock;
    // A reset that happened before the wire existed starts the ROM now.
    if (this.#state === 'reset' && this.#powered && this.#cenHigh) this.#scheduleRom(clock.now());
  }

  /**
   * `atMs`: modelled arrival of the last byte; the others arrived one character time (at the
   * chip's rate) apart before it. Without it every byte arrived now.
   */
  receive(bytes: Uint8Array, atMs?: number): void {
    this.counters.bytesIn += bytes.length;
    const last = atMs ?? this.#now();
    const spacing = atMs === undefined ? 0 : uartWireMs(1, this.#baud);
    const arrival = (i: number): number => last - (bytes.length - 1 - i) * spacing;
    if (this.#state === 'app') {
      bytes.forEach((b, i) => this.#appByte(b, arrival(i)));
      return;
    }
    for (let i = 0; i < bytes.length; i++) {
      if (!this.#inRom()) return;
      this.#rxByte(bytes[i]!, arrival(i));
    }
  }

  modemLines(lines: ModemLines): void {
    if (this.#cenWiring === 'rts') this.setCen(!lines.rts);
    else if (this.#cenWiring === 'dtr') this.setCen(!lines.dtr);
  }

  // ---- power and reset ----

  get state(): ChipState {
    return this.#state;
  }

  /** What runs while the state is 'app' (decided from the flash at the moment of boot); undefined otherwise. */
  get firmware(): BootImage | undefined {
    return this.#state === 'app' ? this.#firmware : undefined;
  }

  /** Called after every state change (power, reset, ROM, app boot). Returns an unsubscribe function. */
  onStateChange(listener: (state: ChipState) => void): () => void {
    this.#stateListeners.add(listener);
    return () => this.#stateListeners.delete(listener);
  }

  /** The running firmware resets the chip (OpenBeken `restart`, a watchdog): the ROM starts again. */
  restartFromApp(): void {
    if (this.#state !== 'app') return;
    this.#reset();
  }

  /** Called for every erase and program command the chip starts (observation only). Returns an unsubscribe function. */
  onFlashOperation(listener: (op: FlashOperation) => void): () => void {
    this.#flashOpListeners.add(listener);
    return () => this.#flashOpListeners.delete(listener);
  }

  #flashOp(kind: FlashOperation['kind'], address: number, length: number, atMs: number): void {
    for (const fn of this.#flashOpListeners) fn({ kind, address, length, atMs });
  }

  /** Busy (running a command or sending its reply) at the current clock time. */
  isBusy(): boolean {
    return this.#busyUntil > this.#now();
  }

  powerOn(): void {
    if (this.#powered) return;
    this.#powered = true;
    if (this.#cenHigh) this.#reset();
    else this.#enter('reset');
  }

  powerOff(): void {
    this.#powered = false;
    this.#enter('off');
  }

  /** CEN level: low holds the chip in reset, the rising edge starts the ROM. */
  setCen(high: boolean): void {
    if (high === this.#cenHigh) return;
    this.#cenHigh = high;
    if (!this.#powered) return;
    if (high) this.#reset();
    else this.#enter('reset');
  }

  // ---- internals: state ----

  #now(): number {
    if (!this.#clock) throw new ConfigError('virtual BK7231 used before connect()', { step: 'sim-bk7231' });
    return this.#clock.now();
  }

  #at(t: number, fn: () => void): void {
    if (!this.#clock) throw new ConfigError('virtual BK7231 used before connect()', { step: 'sim-bk7231' });
    const cancel = this.#clock.at(t, () => {
      this.#timers.delete(cancel);
      fn();
    });
    this.#timers.add(cancel);
  }

  /** Drop everything in flight (timers, partial frames, buffered bytes) and switch state. */
  #enter(state: ChipState): void {
    for (const cancel of this.#timers) cancel();
    this.#timers.clear();
    this.#parser.reset();
    this.#rxQueue = [];
    this.#rxReadAt = [];
    this.#drainedTo = -Infinity;
    this.#busyUntil = -Infinity;
    this.#write4k = undefined;
    this.#appTail = [];
    this.#baud = ROM_BAUD;
    this.#state = state;
    if (state !== 'app') this.#firmware = undefined;
    for (const fn of [...this.#stateListeners]) fn(state);
  }

  /** Reset at modelled time `at` (default now). */
  #reset(at?: number): void {
    this.#enter('reset');
    this.counters.resets++;
    if (!this.#clock) return; // connect() starts the ROM
    this.#scheduleRom(at ?? this.#now());
  }

  #scheduleRom(resetAt: number): void {
    const romAt = resetAt + this.timing.resetToRomMs;
    this.#at(romAt, () => this.#startRom(romAt));
  }

  #startRom(at: number): void {
    this.#enter('rom');
    this.#romStartedAt = at;
    if (this.#missLinkWindows > 0) {
      this.#missLinkWindows--;
      this.#bootApp();
      return;
    }
    if (Number.isFinite(this.timing.linkWindowMs)) {
      this.#at(this.#romStartedAt + this.timing.linkWindowMs, () => {
        if (this.#state === 'rom') this.#bootApp();
      });
    }
  }

  #inRom(): boolean {
    return this.#state === 'rom' || this.#state === 'rom-linked';
  }

  #bootApp(): void {
    this.#firmware = this.#appDoesNotBoot
      ? { kind: 'none', reason: 'corrupt', detail: 'defect: the image does not boot' }
      : identifyBootImage(this.flash);
    this.counters.appBoots++;
    this.#enter('app');
  }

  /** Only OpenBeken listens for its reboot text on UART1 (stock Tuya firmware and a dead CPU do not). */
  #appByte(b: number, t: number): void {
    const pattern = this.#appRebootText;
    if (!pattern || this.#firmware?.kind !== 'openbeken') return;
    this.#appTail.push(b);
    if (this.#appTail.length > pattern.length) this.#appTail.shift();
    if (this.#appTail.length === pattern.length && this.#appTail.every((x, i) => x === pattern[i])) {
      this.#appTail = [];
      const resetAt = t + this.timing.appRebootMs;
      this.#at(resetAt, () => this.#reset(resetAt));
    }
  }

  // ---- internals: ROM ----

  /** Parse byte `b` at modelled time t (its arrival, or when the chip became free to look at it). */
  #romByte(b: number, t: number): void {
    const frame = this.#parser.push(b);
    if (frame) {
      this.#execute(frame, t);
      this.#write4k = undefined;
      return;
    }
    this.#trackWrite4K(t);
  }

  /** A byte that arrived in the ROM at modelled time t. */
  #rxByte(b: number, t: number): void {
    this.#drainUntil(t);
    if (this.#rxQueue.length === 0 && t >= this.#busyUntil) {
      this.#romByte(b, t);
      return;
    }
    // Received while busy: it needs room in the buffer as it was at time t.
    while (this.#rxReadAt.length > 0 && this.#rxReadAt[0]! <= t) this.#rxReadAt.shift();
    if (this.#rxQueue.length + this.#rxReadAt.length >= this.timing.rxBufferBytes) {
      this.counters.rxDropped++;
      return;
    }
    this.#rxQueue.push(b);
    // Delivered after the chip already became free (and read the buffer): it is read now.
    this.#drainUntil(this.#drainedTo);
  }

  /**
   * Parse the RX buffer at each moment the chip became free up to modelled time t (a parsed frame
   * may make it busy again; the rest then waits for that operation).
   */
  #drainUntil(t: number): void {
    this.#drainedTo = Math.max(this.#drainedTo, t);
    while (this.#rxQueue.length > 0 && this.#busyUntil <= t && this.#inRom()) {
      this.#rxReadAt.push(this.#busyUntil);
      this.#romByte(this.#rxQueue.shift()!, this.#busyUntil);
    }
  }

  /** FlashWrite4K programs each 256-byte page as soon as it has arrived and the previous one is done. */
  #trackWrite4K(t: number): void {
    // Called for every byte: only the address (5 body bytes) and page boundaries need a look.
    const got = this.#parser.pendingBodyLength;
    if (got < 0) {
      this.#write4k = undefined;
      return;
    }
    if (got !== 5 && (got < 5 || (got - 5) % FLASH_PAGE_BYTES !== 0)) return;
    const p = this.#parser.pending();
    if (!p || p.form !== 'long' || p.body[0] !== LongCmd.FlashWrite4K || p.declaredLength !== WRITE_4K_LEN) {
      this.#write4k = undefined;
      return;
    }
    if (got === 5) {
      const stray = this.#strayWrites.find((x) => x.nth === this.#write4kReceived + 1);
      this.#write4kReceived++;
      this.#write4k = { address: (readLe32(p.body, 1) ^ (stray?.addressXor ?? 0)) >>> 0, pages: 0, end: t };
    } else if (this.#write4k && got > 5 && (got - 5) % FLASH_PAGE_BYTES === 0) {
      this.#programPage(this.#write4k, p.body.slice(got - FLASH_PAGE_BYTES, got), t);
    }
  }

  /** Program the next page of `w` once it has arrived (t) and the previous page is done. */
  #programPage(w: Write4KPipeline, data: Uint8Array, t: number): void {
    const start = Math.max(t, w.end);
    w.end = start + this.flashTiming.pageProgramMs;
    const address = w.address + w.pages * FLASH_PAGE_BYTES;
    if (w.pages === 0) {
      w.fails = this.#hitFault(this.#failPrograms, w.address);
      this.#flashOp('program', w.address, 16 * FLASH_PAGE_BYTES, start);
    }
    w.pages++;
    this.counters.programBusyMs += this.flashTiming.pageProgramMs;
    const fails = w.fails === true;
    this.#at(w.end, () => {
      if (!fails) this.flash.program(address, data);
    });
  }

  /** Consume one hit of an injected fault for the sector holding `address`. */
  #hitFault(faults: Map<number, number>, address: number): boolean {
    const sector = this.flash.wrap(address) & ~0xfff;
    const left = faults.get(sector) ?? 0;
    if (left <= 0) return false;
    faults.set(sector, left - 1);
    return true;
  }

  /** A brown-out scheduled for this (1-based) erase/write command. */
  #brownOutNow(during: 'erase' | 'write', nth: number): boolean {
    return this.#brownOuts.some((b) => b.during === during && b.nth === nth);
  }

  /** The supply dips at modelled time t: whatever runs stops, the chip resets. */
  #brownOut(t: number): void {
    this.counters.brownOuts++;
    this.#busyUntil = Infinity;
    this.#at(t, () => this.#reset(t));
  }

  #count(name: string): void {
    const n = (this.counters.commands[name] ?? 0) + 1;
    this.counters.commands[name] = n;
    for (const fn of this.#commandListeners) fn(name, n);
  }

  /**
   * Told of every command the ROM accepted for execution (its name and how many of that kind so far),
   * before it runs: a jig fault can act at a given step of a flash. Returns the unsubscribe.
   */
  onCommand(fn: (name: string, count: number) => void): () => void {
    this.#commandListeners.add(fn);
    return () => void this.#commandListeners.delete(fn);
  }

  /**
   * Send the `length`-byte reply built by `build` at modelled time t (the operation's effects,
   * e.g. an erase, happen in `build`, at that time). The chip is busy until the reply's last byte
   * has left the UART; buffered bytes are parsed then.
   */
  #replyAt(t: number, length: number, build: () => Uint8Array): void {
    const end = t + uartWireMs(length, this.#baud);
    this.#busyUntil = end;
    this.#at(t, () => {
      const bytes = build();
      this.counters.bytesOut += bytes.length;
      this.#tx?.send(bytes);
    });
    this.#at(end, () => this.#drainUntil(end));
  }

  /** A reply whose bytes are known now; `effect` runs when it leaves. */
  #reply(t: number, bytes: Uint8Array, effect?: () => void): void {
    this.#replyAt(t, bytes.length, () => {
      effect?.();
      return bytes;
    });
  }

  /** Execute a frame whose last byte the chip saw at modelled time `now`. */
  #execute(f: HostFrame, now: number): void {
    const ta = this.timing.turnaroundMs;
    const p = f.payload;
    const name = f.form === 'short' ? SHORT_NAMES[f.code] : LONG_NAMES[f.code];
    if (!name) {
      this.#count(`${f.form}:0x${f.code.toString(16).padStart(2, '0')}`);
      return;
    }
    const expected = PAYLOAD_LENGTH[name];
    if (expected && !expected(p.length)) {
      this.counters.malformed++;
      return;
    }
    this.#count(name);
    switch (name) {
      case 'LinkCheck':
        if (this.#state === 'rom') {
          this.#state = 'rom-linked';
          this.counters.links++;
          this.counters.lastLinkMs = now - this.#romStartedAt;
        }
        this.#reply(now + ta, shortReply(0x01, [0x00]));
        return;
      case 'WriteReg': {
        this.#writeRegister(readLe32(p, 0), readLe32(p, 4));
        const echo = p.slice(0, 8);
        this.#reply(now + ta, shortReply(ShortCmd.WriteReg, echo));
        return;
      }
      case 'ReadReg': {
        const addr = readLe32(p, 0);
        const value = this.#readRegister(addr);
        this.#reply(now + ta, shortReply(ShortCmd.ReadReg, [...le32(addr), ...le32(value)]));
        return;
      }
      case 'Reboot':
        if (p[0] !== REBOOT_MAGIC) return; // other arguments: no reply (N ROM behaviour UNCERTAIN)
        this.#busyUntil = Infinity; // whatever arrives meanwhile is lost in the reset
        this.#at(now + ta, () => this.#reset(now + ta));
        return;
      case 'SetBaudRate': {
        const baud = readLe32(p, 0);
        if (baud === 0) return;
        const echo = p.slice(0, 5);
        this.#baud = baud; // re-initialised at once; the echo leaves after the delay at the new rate
        this.#reply(now + p[4]! * this.timing.baudDelayUnitMs + ta, shortReply(ShortCmd.SetBaudRate, echo));
        return;
      }
      case 'CheckCrc': {
        const start = readLe32(p, 0);
        const end = readLe32(p, 4);
        // N ROM: end is inclusive and byte-exact (bk7231-protocol.md §6).
        const length = end >= start ? Math.min(end - start + 1, CRC_MAX_BYTES) : 0;
        const busy = (length / this.timing.crcBytesPerSec) * 1000;
        this.counters.crcBusyMs += busy;
        this.#replyAt(now + ta + busy, SHORT_REPLY_BYTES + 4, () => {
          const raw = ~crc32(this.flash.read(start, length)) >>> 0;
          return shortReply(ShortCmd.CheckCrc, le32(raw));
        });
        return;
      }
      case 'FlashRead4K': {
        const addr = readLe32(p, 0);
        const busy = (4096 / (this.timing.readBytesPerSec ?? this.flashTiming.readBytesPerSec)) * 1000;
        this.counters.readBusyMs += busy;
        this.#replyAt(now + ta + busy, LONG_REPLY_BYTES + 4 + 4096, () => {
          const body = new Uint8Array(4 + 4096);
          body.set(le32(addr), 0);
          body.set(this.flash.read(addr, 4096), 4);
          if (this.#hitFault(this.#garbleReads, addr)) body[4 + 0x123] ^= 0x10;
          return longReply(LongCmd.FlashRead4K, Status.Ok, body);
        });
        return;
      }
      case 'FlashWrite4K': {
        // The address as decoded when the frame's header arrived (a stray write's, see strayWrites).
        const addr = this.#write4k?.address ?? readLe32(p, 0);
        if (f.payload.length + 1 !== WRITE_4K_LEN) {
          // HCI-boot answers a wrong length with PACK_LEN_ERROR (N ROM: UNCERTAIN) and writes nothing.
          this.#reply(now + ta, longReply(LongCmd.FlashWrite4K, Status.PackLenError, le32(addr)));
          return;
        }
        const w = this.#write4k ?? { address: addr, pages: 0, end: now };
        while (w.pages < 16) {
          const off = 4 + w.pages * FLASH_PAGE_BYTES;
          this.#programPage(w, p.slice(off, off + FLASH_PAGE_BYTES), now);
        }
        if (this.#brownOutNow('write', ++this.#writes)) {
          // The reset cancels the page programs still pending: the sector ends half programmed.
          this.#brownOut(Math.max(now, w.end - 8 * this.flashTiming.pageProgramMs));
          return;
        }
        this.#reply(w.end + ta, longReply(LongCmd.FlashWrite4K, Status.Ok, le32(addr)));
        return;
      }
      case 'FlashWrite': {
        const addr = readLe32(p, 0);
        const data = p.slice(4);
        const echo = [...le32(addr), data.length & 0xff];
        if (data.length > FLASH_PAGE_BYTES) {
          this.#reply(now + ta, longReply(LongCmd.FlashWrite, Status.ParamError, echo));
          return;
        }
        const busy = this.flashTiming.pageProgramMs;
        this.counters.programBusyMs += busy;
        const fails = this.#hitFault(this.#failPrograms, addr);
        this.#flashOp('program', addr, data.length, now);
        this.#reply(now + ta + busy, longReply(LongCmd.FlashWrite, Status.Ok, echo), () => {
          if (!fails) this.flash.program(addr, data);
        });
        return;
      }
      case 'FlashErase': {
        const opcode = p[0]!;
        const addr = readLe32(p, 1);
        const echo = p.slice(0, 5);
        const unit = ERASE_UNITS[opcode];
        if (!unit) {
          this.#reply(now + ta, longReply(LongCmd.FlashErase, Status.ParamError, echo));
          return;
        }
        const t = this.flashTiming;
        const busy = unit === 4096 ? t.erase4kMs : unit === 32768 ? t.erase32kMs : t.erase64kMs;
        this.counters.eraseBusyMs += busy;
        this.#flashOp('erase', addr, unit, now);
        if (this.#brownOutNow('erase', ++this.#erases)) {
          const cut = now + ta + busy / 2;
          this.#at(cut, () => this.flash.eraseInterrupted(addr, unit, 0.5));
          this.#brownOut(cut);
          return;
        }
        this.#reply(now + ta + busy, longReply(LongCmd.FlashErase, Status.Ok, echo), () => this.flash.erase(addr, unit));
        return;
      }
      case 'FlashReadSr': {
        const op = p[0]!;
        // Read when the reply leaves: a WriteSr parsed just before takes effect at its own reply.
        this.#replyAt(now + ta, LONG_REPLY_BYTES + 2, () => longReply(LongCmd.FlashReadSr, Status.Ok, [op, this.flash.readStatus(op)]));
        return;
      }
      case 'FlashWriteSr': {
        // WREN, opcode + values, WRDI; the ROM is assumed to wait for the write cycle (tW)
        // before echoing (UNCERTAIN: tools re-read the SR right after the echo).
        const echo = p.slice();
        this.#reply(now + ta + this.flashTiming.writeSrMs, longReply(LongCmd.FlashWriteSr, Status.Ok, echo), () => {
          if (!this.#srLocked) this.flash.writeStatus(echo[0]!, echo.subarray(1));
        });
        return;
      }
      case 'FlashGetMid': {
        const request = p.slice();
        this.#replyAt(now + ta, LONG_REPLY_BYTES + request.length, () => longReply(LongCmd.FlashGetMid, Status.Ok, this.flash.transfer(request)));
        return;
      }
    }
  }

  #readRegister(addr: number): number {
    if (addr === CHIP_ID_REG) return BK7231N_CHIP_ID;
    return this.#registers.get(addr) ?? 0;
  }

  /** Small register file; the chip ID is read-only and the eFuse read port completes at once. */
  #writeRegister(addr: number, value: number): void {
    if (addr === CHIP_ID_REG) return;
    if (addr === EFUSE_CTRL_REG && (value & 1) !== 0) {
      const index = (value >> 8) & 0x1f;
      this.#registers.set(EFUSE_DATA_REG, 0x100 | this.#efuse[index]!);
      this.#registers.set(addr, (value & ~1) >>> 0);
      return;
    }
    this.#registers.set(addr, value >>> 0);
  }
}

function faultMap(spec: Readonly<Record<number, number>> | undefined): Map<number, number> {
  return new Map(Object.entries(spec ?? {}).map(([k, v]) => [Number(k) & ~0xfff, v]));
}

/** Bytes of an empty short / long reply frame (the payload comes on top). */
const SHORT_REPLY_BYTES = shortReply(0).length;
const LONG_REPLY_BYTES = longReply(0, 0).length;

const SHORT_NAMES: Record<number, string> = {
  [ShortCmd.LinkCheck]: 'LinkCheck',
  [ShortCmd.WriteReg]: 'WriteReg',
  [ShortCmd.ReadReg]: 'ReadReg',
  [ShortCmd.Reboot]: 'Reboot',
  [ShortCmd.SetBaudRate]: 'SetBaudRate',
  [ShortCmd.CheckCrc]: 'CheckCrc',
};

const LONG_NAMES: Record<number, string> = {
  [LongCmd.FlashWrite]: 'FlashWrite',
  [LongCmd.FlashWrite4K]: 'FlashWrite4K',
  [LongCmd.FlashRead4K]: 'FlashRead4K',
  [LongCmd.FlashReadSr]: 'FlashReadSr',
  [LongCmd.FlashWriteSr]: 'FlashWriteSr',
  [LongCmd.FlashGetMid]: 'FlashGetMid',
  [LongCmd.FlashErase]: 'FlashErase',
};

/** Payload lengths (after the code) each command needs; others get no reply (ROM behaviour UNCERTAIN). */
const PAYLOAD_LENGTH: Record<string, (n: number) => boolean> = {
  LinkCheck: (n) => n === 0,
  WriteReg: (n) => n === 8,
  ReadReg: (n) => n === 4,
  Reboot: (n) => n === 1,
  SetBaudRate: (n) => n === 5,
  CheckCrc: (n) => n === 8,
  FlashWrite: (n) => n >= 5,
  FlashWrite4K: (n) => n >= 4,
  FlashRead4K: (n) => n === 4,
  FlashReadSr: (n) => n === 1,
  FlashWriteSr: (n) => n === 2 || n === 3,
  FlashGetMid: (n) => n >= 1,
  FlashErase: (n) => n === 5,
};
