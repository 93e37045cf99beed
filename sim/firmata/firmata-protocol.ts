/**
 * Firmata 2.5 wire constants and a byte-wise message parser (pure: bytes in, messages out).
 * Facts: /work/shared/reference/instruments.md §B6 and the Firmata protocol document.
 */

export const FIRMATA = {
  DIGITAL_MESSAGE: 0x90,
  ANALOG_MESSAGE: 0xe0,
  REPORT_ANALOG: 0xc0,
  REPORT_DIGITAL: 0xd0,
  SET_PIN_MODE: 0xf4,
  SET_DIGITAL_PIN_VALUE: 0xf5,
  REPORT_VERSION: 0xf9,
  SYSTEM_RESET: 0xff,
  START_SYSEX: 0xf0,
  END_SYSEX: 0xf7,
  // Sysex commands
  ANALOG_MAPPING_QUERY: 0x69,
  ANALOG_MAPPING_RESPONSE: 0x6a,
  CAPABILITY_QUERY: 0x6b,
  CAPABILITY_RESPONSE: 0x6c,
  PIN_STATE_QUERY: 0x6d,
  PIN_STATE_RESPONSE: 0x6e,
  EXTENDED_ANALOG: 0x6f,
  STRING_DATA: 0x71,
  REPORT_FIRMWARE: 0x79,
  SAMPLING_INTERVAL: 0x7a,
} as const;

export const PIN_MODE = {
  INPUT: 0x00,
  OUTPUT: 0x01,
  ANALOG: 0x02,
  PWM: 0x03,
  PULLUP: 0x0b,
  /** Firmata's "ignore this pin" pseudo-mode. */
  IGNORE: 0x7f,
} as const;

/** Firmata protocol version this board implements (StandardFirmata 2.5). */
export const FIRMATA_VERSION = { major: 2, minor: 5 } as const;

/** StandardFirmata caps a sysex message at MAX_DATA_BYTES. */
export const MAX_SYSEX_DATA = 64;

export type FirmataMessage =
  | { kind: 'digital'; port: number; value: number }
  | { kind: 'analog'; channel: number; value: number }
  | { kind: 'reportAnalog'; channel: number; enable: boolean }
  | { kind: 'reportDigital'; port: number; enable: boolean }
  | { kind: 'setPinMode'; pin: number; mode: number }
  | { kind: 'setPinValue'; pin: number; value: number }
  | { kind: 'reportVersion' }
  | { kind: 'systemReset' }
  | { kind: 'sysex'; command: number; data: Uint8Array };

/** Data bytes each channel/command status byte expects (sysex is handled separately). */
const DATA_BYTES: Record<number, number> = {
  [FIRMATA.DIGITAL_MESSAGE]: 2,
  [FIRMATA.ANALOG_MESSAGE]: 2,
  [FIRMATA.SET_PIN_MODE]: 2,
  [FIRMATA.SET_DIGITAL_PIN_VALUE]: 2,
  [FIRMATA.REPORT_ANALOG]: 1,
  [FIRMATA.REPORT_DIGITAL]: 1,
};

/**
 * Byte-at-a-time parser with MIDI-style recovery: any status byte (>= 0x80) aborts whatever
 * was in progress, so a split, truncated or garbled message never swallows the next one.
 * (StandardFirmata itself keeps buffering a sysex until F7; aborting on a status byte is
 * stricter and only differs on garbage.) Data bytes with no command pending are dropped.
 */
export class FirmataParser {
  #status = 0;
  #channel = 0;
  #need = 0;
  #data: number[] = [];
  #inSysex = false;
  #sysexOverflow = false;

  /** Feed bytes; returns the complete messages they finish, in order. */
  push(bytes: Uint8Array): FirmataMessage[] {
    const out: FirmataMessage[] = [];
    for (const b of bytes) {
      const m = this.#byte(b);
      if (m) out.push(m);
    }
    return out;
  }

  #byte(b: number): FirmataMessage | undefined {
    if (this.#inSysex) {
      if (b === FIRMATA.END_SYSEX) {
        this.#inSysex = false;
        if (this.#sysexOverflow || this.#data.length === 0) return undefined;
        const [command, ...rest] = this.#data;
        return { kind: 'sysex', command: command!, data: Uint8Array.from(rest) };
      }
      if (b < 0x80) {
        if (this.#data.length < MAX_SYSEX_DATA) this.#data.push(b);
        else this.#sysexOverflow = true;
        return undefined;
      }
      this.#inSysex = false; // a status byte inside a sysex: drop the sysex, parse the byte
    }
    if (b < 0x80) {
      if (this.#need === 0) return undefined;
      this.#data.push(b);
      if (--this.#need > 0) return undefined;
      return this.#complete();
    }
    this.#need = 0;
    this.#data = [];
    if (b === FIRMATA.START_SYSEX) {
      this.#inSysex = true;
      this.#sysexOverflow = false;
      return undefined;
    }
    if (b === FIRMATA.REPORT_VERSION) return { kind: 'reportVersion' };
    if (b === FIRMATA.SYSTEM_RESET) return { kind: 'systemReset' };
    const status = b < 0xf0 ? b & 0xf0 : b;
    const need = DATA_BYTES[status];
    if (need === undefined) return undefined;
    this.#status = status;
    this.#channel = b & 0x0f;
    this.#need = need;
    return undefined;
  }

  #complete(): FirmataMessage | undefined {
    const [d0 = 0, d1 = 0] = this.#data;
    this.#data = [];
    const ch = this.#channel;
    switch (this.#status) {
      case FIRMATA.DIGITAL_MESSAGE:
        return { kind: 'digital', port: ch, value: d0 | (d1 << 7) };
      case FIRMATA.ANALOG_MESSAGE:
        return { kind: 'analog', channel: ch, value: d0 | (d1 << 7) };
      case FIRMATA.SET_PIN_MODE:
        return { kind: 'setPinMode', pin: d0, mode: d1 };
      case FIRMATA.SET_DIGITAL_PIN_VALUE:
        return { kind: 'setPinValue', pin: d0, value: d1 };
      case FIRMATA.REPORT_ANALOG:
        return { kind: 'reportAnalog', channel: ch, enable: d0 !== 0 };
      case FIRMATA.REPORT_DIGITAL:
        return { kind: 'reportDigital', port: ch, enable: d0 !== 0 };
      default:
        return undefined;
    }
  }
}

/** Split a 14-bit value into Firmata's two 7-bit data bytes (LSB first). */
export function sevenBit(value: number): [number, number] {
  return [value & 0x7f, (value >> 7) & 0x7f];
}

/** Encode an ASCII string as Firmata 7-bit LSB/MSB pairs (firmware name, STRING_DATA). */
export function encodeString(text: string): number[] {
  const out: number[] = [];
  for (const ch of Buffer.from(text, 'latin1')) out.push(...sevenBit(ch));
  return out;
}
