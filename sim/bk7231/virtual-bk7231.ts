import { crc32 } from 'node:zlib';
import type { Clock } from '../../rig/core/clock.ts';
import { ConfigError } from '../../rig/core/errors.ts';
import type { ModemLines, UartTx, VirtualUartDevice } from '../serial/uart-device.ts';
import { FLASH_PARTS, DEFAULT_FLASH_PART, type FlashPart, type FlashPartName, type FlashTiming } from './flash-parts.ts';
import { HostFrameParser, type HostFrame } from './host-frame-parser.ts';
import { LongCmd, REBOOT_MAGIC, ShortCmd, Status, le32, longReply, readLe32, shortReply } from './rom-replies.ts';
import { FLASH_PAGE_BYTES, SpiFlash } from './spi-flash.ts';
import { BOOTLOADER_ADDR, RF_SECTOR_ADDR, macFromSeed, parseMac, rfSector, syntheticBootloader } from './synthetic-flash.ts';
import { DEFAULT_CHIP_TIMING, uartWireMs, type ChipTiming } from './timing.ts';

/** off: no power. reset: CEN held low or the chip is coming out of reset. rom: link window open. */
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
  /** Written over the synthetic content (e.g. an OpenBeken UA image at 0x11000). */
  initialImages?: ReadonlyArray<{ address: number; data: Uint8Array }>;
  cenWiring?: CenWiring;
  /** Text on which the application reboots into the ROM (OpenBeken: "reboot\r\n"); null = never. */
  appRebootText?: string | null;
  /** 32 eFuse bytes; default: Tuya's default key in bytes 0..15, rest 0. */
  efuse?: Uint8Array;
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
  /** Chip resets (power-on, CEN release, Reboot command, app reboot). */
  resets: number;
  appBoots: number;
  links: number;
  /** Time from ROM start to the accepted LinkCheck of the latest link, ms. */
  lastLinkMs: number | undefined;
}

interface Write4KPipeline {
  address: number;
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
 */
export class VirtualBk7231 implements VirtualUartDevice {
  readonly flash: SpiFlash;
  readonly mac: Uint8Array;
  readonly timing: Readonly<ChipTiming>;
  readonly flashTiming: Readonly<FlashTiming>;
  readonly counters: Bk7231Counters;

  readonly #parser = new HostFrameParser();
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
  #busy = false;
  #rxQueue: number[] = [];
  #romStartedAt = 0;
  #write4k: Write4KPipeline | undefined;
  #appTail: number[] = [];

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
      resets: 0, appBoots: 0, links: 0, lastLinkMs: undefined,
    };
    this.flash.load(BOOTLOADER_ADDR, syntheticBootloader(seed));
    this.flash.load(RF_SECTOR_ADDR, rfSector(this.mac, seed));
    for (const img of options.initialImages ?? []) this.flash.load(img.address, img.data);
  }

  // ---- VirtualUartDevice ----

  baudRate(): number {
    return this.#baud;
  }

  connect(tx: UartTx, clock: Clock): void {
    this.#tx = tx;
    this.#clock = clock;
    // A reset that happened before the wire existed starts the ROM now.
    if (this.#state === 'reset' && this.#powered && this.#cenHigh) this.#at(clock.now() + this.timing.resetToRomMs, () => this.#startRom());
  }

  receive(bytes: Uint8Array): void {
    this.counters.bytesIn += bytes.length;
    if (this.#state === 'app') {
      for (const b of bytes) this.#appByte(b);
      return;
    }
    if (this.#state !== 'rom' && this.#state !== 'rom-linked') return;
    for (const b of bytes) {
      if (this.#state !== 'rom' && this.#state !== 'rom-linked') return;
      if (this.#busy) {
        if (this.#rxQueue.length < this.timing.rxBufferBytes) this.#rxQueue.push(b);
        else this.counters.rxDropped++;
      } else {
        this.#romByte(b);
      }
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

  isBusy(): boolean {
    return this.#busy;
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
    this.#busy = false;
    this.#write4k = undefined;
    this.#appTail = [];
    this.#baud = ROM_BAUD;
    this.#state = state;
  }

  #reset(): void {
    this.#enter('reset');
    this.counters.resets++;
    if (!this.#clock) return; // connect() starts the ROM
    this.#at(this.#now() + this.timing.resetToRomMs, () => this.#startRom());
  }

  #startRom(): void {
    this.#enter('rom');
    this.#romStartedAt = this.#now();
    if (Number.isFinite(this.timing.linkWindowMs)) {
      this.#at(this.#romStartedAt + this.timing.linkWindowMs, () => {
        if (this.#state === 'rom') this.#bootApp();
      });
    }
  }

  #bootApp(): void {
    this.#enter('app');
    this.counters.appBoots++;
  }

  #appByte(b: number): void {
    const pattern = this.#appRebootText;
    if (!pattern) return;
    this.#appTail.push(b);
    if (this.#appTail.length > pattern.length) this.#appTail.shift();
    if (this.#appTail.length === pattern.length && this.#appTail.every((x, i) => x === pattern[i])) {
      this.#appTail = [];
      this.#at(this.#now() + this.timing.appRebootMs, () => this.#reset());
    }
  }

  // ---- internals: ROM ----

  #romByte(b: number): void {
    const frame = this.#parser.push(b);
    if (frame) {
      this.#execute(frame);
      this.#write4k = undefined;
      return;
    }
    this.#trackWrite4K();
  }

  /** FlashWrite4K programs each 256-byte page as soon as it has arrived and the previous one is done. */
  #trackWrite4K(): void {
    const p = this.#parser.pending();
    if (!p || p.form !== 'long' || p.body[0] !== LongCmd.FlashWrite4K || p.declaredLength !== WRITE_4K_LEN) {
      this.#write4k = undefined;
      return;
    }
    const got = p.body.length;
    if (got === 5) {
      this.#write4k = { address: readLe32(p.body, 1), pages: 0, end: this.#now() };
    } else if (this.#write4k && got > 5 && (got - 5) % FLASH_PAGE_BYTES === 0) {
      this.#programPage(this.#write4k, p.body.slice(got - FLASH_PAGE_BYTES, got));
    }
  }

  #programPage(w: Write4KPipeline, data: Uint8Array): void {
    const start = Math.max(this.#now(), w.end);
    w.end = start + this.flashTiming.pageProgramMs;
    const address = w.address + w.pages * FLASH_PAGE_BYTES;
    w.pages++;
    this.counters.programBusyMs += this.flashTiming.pageProgramMs;
    this.#at(w.end, () => this.flash.program(address, data));
  }

  #count(name: string): void {
    this.counters.commands[name] = (this.counters.commands[name] ?? 0) + 1;
  }

  /** Send `reply` at time t; the chip stays busy until its last byte has left the UART. */
  #replyAt(t: number, reply: () => Uint8Array): void {
    this.#busy = true;
    this.#at(t, () => {
      const bytes = reply();
      this.counters.bytesOut += bytes.length;
      this.#tx?.send(bytes);
      this.#at(t + uartWireMs(bytes.length, this.#baud), () => this.#idle());
    });
  }

  #idle(): void {
    this.#busy = false;
    while (!this.#busy && this.#rxQueue.length > 0 && (this.#state === 'rom' || this.#state === 'rom-linked')) {
      this.#romByte(this.#rxQueue.shift()!);
    }
  }

  #execute(f: HostFrame): void {
    const now = this.#now();
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
        this.#replyAt(now + ta, () => shortReply(0x01, [0x00]));
        return;
      case 'WriteReg': {
        this.#writeRegister(readLe32(p, 0), readLe32(p, 4));
        const echo = p.slice(0, 8);
        this.#replyAt(now + ta, () => shortReply(ShortCmd.WriteReg, echo));
        return;
      }
      case 'ReadReg': {
        const addr = readLe32(p, 0);
        const value = this.#readRegister(addr);
        this.#replyAt(now + ta, () => shortReply(ShortCmd.ReadReg, [...le32(addr), ...le32(value)]));
        return;
      }
      case 'Reboot':
        if (p[0] !== REBOOT_MAGIC) return; // other arguments: no reply (N ROM behaviour UNCERTAIN)
        this.#busy = true;
        this.#at(now + ta, () => this.#reset());
        return;
      case 'SetBaudRate': {
        const baud = readLe32(p, 0);
        if (baud === 0) return;
        const echo = p.slice(0, 5);
        this.#baud = baud; // re-initialised at once; the echo leaves after the delay at the new rate
        this.#replyAt(now + p[4]! * this.timing.baudDelayUnitMs + ta, () => shortReply(ShortCmd.SetBaudRate, echo));
        return;
      }
      case 'CheckCrc': {
        const start = readLe32(p, 0);
        const end = readLe32(p, 4);
        // N ROM: end is inclusive and byte-exact (bk7231-protocol.md §6).
        const length = end >= start ? Math.min(end - start + 1, CRC_MAX_BYTES) : 0;
        const busy = (length / this.timing.crcBytesPerSec) * 1000;
        this.counters.crcBusyMs += busy;
        this.#replyAt(now + ta + busy, () => {
          const raw = ~crc32(this.flash.read(start, length)) >>> 0;
          return shortReply(ShortCmd.CheckCrc, le32(raw));
        });
        return;
      }
      case 'FlashRead4K': {
        const addr = readLe32(p, 0);
        const busy = (4096 / (this.timing.readBytesPerSec ?? this.flashTiming.readBytesPerSec)) * 1000;
        this.counters.readBusyMs += busy;
        this.#replyAt(now + ta + busy, () => {
          const body = new Uint8Array(4 + 4096);
          body.set(le32(addr), 0);
          body.set(this.flash.read(addr, 4096), 4);
          return longReply(LongCmd.FlashRead4K, Status.Ok, body);
        });
        return;
      }
      case 'FlashWrite4K': {
        const addr = readLe32(p, 0);
        if (f.payload.length + 1 !== WRITE_4K_LEN) {
          // HCI-boot answers a wrong length with PACK_LEN_ERROR (N ROM: UNCERTAIN) and writes nothing.
          this.#replyAt(now + ta, () => longReply(LongCmd.FlashWrite4K, Status.PackLenError, le32(addr)));
          return;
        }
        const w = this.#write4k ?? { address: addr, pages: 0, end: now };
        while (w.pages < 16) {
          const off = 4 + w.pages * FLASH_PAGE_BYTES;
          this.#programPage(w, p.slice(off, off + FLASH_PAGE_BYTES));
        }
        this.#replyAt(w.end + ta, () => longReply(LongCmd.FlashWrite4K, Status.Ok, le32(addr)));
        return;
      }
      case 'FlashWrite': {
        const addr = readLe32(p, 0);
        const data = p.slice(4);
        const echo = [...le32(addr), data.length & 0xff];
        if (data.length > FLASH_PAGE_BYTES) {
          this.#replyAt(now + ta, () => longReply(LongCmd.FlashWrite, Status.ParamError, echo));
          return;
        }
        const busy = this.flashTiming.pageProgramMs;
        this.counters.programBusyMs += busy;
        this.#replyAt(now + ta + busy, () => {
          this.flash.program(addr, data);
          return longReply(LongCmd.FlashWrite, Status.Ok, echo);
        });
        return;
      }
      case 'FlashErase': {
        const opcode = p[0]!;
        const addr = readLe32(p, 1);
        const echo = p.slice(0, 5);
        const unit = ERASE_UNITS[opcode];
        if (!unit) {
          this.#replyAt(now + ta, () => longReply(LongCmd.FlashErase, Status.ParamError, echo));
          return;
        }
        const t = this.flashTiming;
        const busy = unit === 4096 ? t.erase4kMs : unit === 32768 ? t.erase32kMs : t.erase64kMs;
        this.counters.eraseBusyMs += busy;
        this.#replyAt(now + ta + busy, () => {
          this.flash.erase(addr, unit);
          return longReply(LongCmd.FlashErase, Status.Ok, echo);
        });
        return;
      }
      case 'FlashReadSr': {
        const op = p[0]!;
        this.#replyAt(now + ta, () => longReply(LongCmd.FlashReadSr, Status.Ok, [op, this.flash.readStatus(op)]));
        return;
      }
      case 'FlashWriteSr': {
        // WREN, opcode + values, WRDI; the ROM is assumed to wait for the write cycle (tW)
        // before echoing (UNCERTAIN: tools re-read the SR right after the echo).
        const echo = p.slice();
        this.#replyAt(now + ta + this.flashTiming.writeSrMs, () => {
          this.flash.writeStatus(echo[0]!, echo.subarray(1));
          return longReply(LongCmd.FlashWriteSr, Status.Ok, echo);
        });
        return;
      }
      case 'FlashGetMid': {
        const request = p.slice();
        this.#replyAt(now + ta, () => longReply(LongCmd.FlashGetMid, Status.Ok, this.flash.transfer(request)));
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
