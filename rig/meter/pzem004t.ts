import type { SerialPortStream } from '@serialport/stream';
import type { Clock } from '../core/clock.ts';
import { InstrumentError, PlugrigError, TransportError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { withDeadline } from './deadline.ts';
import { ModbusRtuStreamPort } from './modbus-rtu-port.ts';
import {
  decodePzemRegisters,
  PZEM_FN_RESET_ENERGY,
  PZEM_GENERAL_ADDRESS,
  PZEM_INPUT_REGISTER_COUNT,
  PZEM_REG_ADDRESS,
  PZEM_REG_ALARM_THRESHOLD,
  type PzemRegisterValues,
} from './pzem-registers.ts';
import { accuracyBand, type AccuracyTable, type MeterIdentity, type MeterReading, type Quantity, type ReferenceMeter } from './reference-meter.ts';
import { DEFAULT_RETRY, withRetry, type RetryPolicy } from './retry.ts';
import { PzemBus } from './pzem-bus.ts';

type ModbusRTU = PzemBus['client'];

const DATASHEET = 'PZEM-004T v3.0 datasheet (instruments.md §B1), plus half the resolution';

/** Manufacturer's figures (the library author calls them optimistic): a smoke reference, not a calibration one. */
export const PZEM_ACCURACY: AccuracyTable = {
  volts: { pctOfReading: 0.5, absolute: 0.05, source: DATASHEET },
  amps: { pctOfReading: 0.5, absolute: 0.0005, source: DATASHEET },
  watts: { pctOfReading: 0.5, absolute: 0.05, source: DATASHEET },
  wh: { pctOfReading: 0.5, absolute: 0.5, source: DATASHEET },
  hz: { pctOfReading: 0.5, absolute: 0.05, source: DATASHEET },
  pf: { pctOfReading: 1, absolute: 0.005, source: DATASHEET },
};

export interface Pzem004tOptions {
  /** An unopened or open SerialPortStream at 9600 8N1 (native binding or the virtual bus). */
  stream: SerialPortStream;
  clock: Clock;
  /** Slave address; 0xF8 (general) works when the PZEM is alone on the line. */
  address?: number;
  /** Per-transaction reply timeout, ms (the reference library uses 100 ms). */
  timeoutMs?: number;
  retry?: RetryPolicy;
  serial?: string;
  calibrationDate?: string;
  log?: Logger;
}

interface ModbusFailure {
  message?: string;
  modbusCode?: number;
}

/**
 * PZEM-004T v3.0 over Modbus-RTU, through modbus-serial's ModbusRTU client on a re-framing port
 * (ModbusRtuStreamPort), so the same code runs on a real adapter and on the virtual jig. Reply timeouts
 * run on the Clock (modbus-serial's own wall-clock timer is disabled); every failure becomes an
 * InstrumentError carrying the bytes seen, and transactions are retried per `retry`.
 */
export class Pzem004tMeter implements ReferenceMeter {
  readonly accuracy = PZEM_ACCURACY;
  /** Its registers refresh about once a second (UNCERTAIN: the library only says it re-reads at most every 200 ms). */
  readonly updateIntervalMs = 1000;
  readonly #client: ModbusRTU;
  readonly #port: ModbusRtuStreamPort;
  readonly #clock: Clock;
  readonly #timeoutMs: number;
  readonly #retry: RetryPolicy;
  readonly #opts: Omit<Pzem004tOptions, 'stream'>;
  readonly #bus: PzemBus;
  #address: number;

  private constructor(opts: Omit<Pzem004tOptions, 'stream'>, bus: PzemBus) {
    this.#opts = opts;
    this.#bus = bus;
    this.#port = bus.port;
    this.#client = bus.client;
    this.#clock = opts.clock;
    this.#address = opts.address ?? PZEM_GENERAL_ADDRESS;
    this.#timeoutMs = opts.timeoutMs ?? 200;
    this.#retry = opts.retry ?? DEFAULT_RETRY;
    bus.use(this);
  }

  /** A PZEM alone on its own line (its own bus). */
  static async open(opts: Pzem004tOptions): Promise<Pzem004tMeter> {
    return new Pzem004tMeter(opts, await PzemBus.open(opts.stream, opts.log));
  }

  /** One of several PZEMs on a shared Modbus line (distinct slave addresses): its transactions take turns with the others'. */
  static onBus(bus: PzemBus, opts: Omit<Pzem004tOptions, 'stream'>): Pzem004tMeter {
    return new Pzem004tMeter(opts, bus);
  }

  get address(): number {
    return this.#address;
  }

  /** All 10 input registers, scaled, including the power alarm flag. */
  async readRegisters(): Promise<PzemRegisterValues> {
    const r = await this.#transact('pzem-read', () => this.#client.readInputRegisters(0x0000, PZEM_INPUT_REGISTER_COUNT));
    return decodePzemRegisters(r.data);
  }

  async read(): Promise<MeterReading> {
    const v = await this.readRegisters();
    return { volts: v.volts, amps: v.amps, watts: v.watts, pf: v.pf, hz: v.hz, wh: v.wh, timestamp: this.#clock.now() };
  }

  uncertainty(quantity: Quantity, value: number): number {
    const spec = this.accuracy[quantity];
    if (!spec) throw new InstrumentError(`PZEM-004T states no accuracy for ${quantity}`, { step: 'uncertainty' });
    return accuracyBand(spec, value);
  }

  async identity(): Promise<MeterIdentity> {
    return {
      kind: 'pzem004t',
      manufacturer: 'Peacefair',
      model: 'PZEM-004T v3.0',
      ...(this.#opts.serial !== undefined ? { serial: this.#opts.serial } : {}),
      ...(this.#opts.calibrationDate !== undefined ? { calibrationDate: this.#opts.calibrationDate } : {}),
    };
  }

  async readAlarmThreshold(): Promise<number> {
    const r = await this.#transact('pzem-read-threshold', () => this.#client.readHoldingRegisters(PZEM_REG_ALARM_THRESHOLD, 1));
    return r.data[0]!;
  }

  async setAlarmThreshold(watts: number): Promise<void> {
    if (!Number.isInteger(watts) || watts < 0 || watts > 0xffff) {
      throw new InstrumentError(`alarm threshold ${watts} W is not a 16-bit integer`, { step: 'pzem-set-threshold' });
    }
    await this.#writeHolding('pzem-set-threshold', PZEM_REG_ALARM_THRESHOLD, watts);
  }

  /** The slave address stored in the device (holding register 0x0002). */
  async readAddress(): Promise<number> {
    const r = await this.#transact('pzem-read-address', () => this.#client.readHoldingRegisters(PZEM_REG_ADDRESS, 1));
    return r.data[0]!;
  }

  /** Store a new slave address (0x01..0xF7); later requests use it. */
  async setAddress(address: number): Promise<void> {
    if (!Number.isInteger(address) || address < 0x01 || address > 0xf7) {
      throw new InstrumentError(`PZEM address must be 0x01..0xF7, got ${address}`, { step: 'pzem-set-address', address });
    }
    await this.#writeHolding('pzem-set-address', PZEM_REG_ADDRESS, address);
    this.#address = address;
  }

  /** Custom function 0x42: a 4-byte echo is success, a 5-byte exception reply is refusal. */
  async resetEnergy(): Promise<void> {
    const r = await this.#transact('pzem-reset-energy', () => this.#client.customFunction(PZEM_FN_RESET_ENERGY, []));
    if (r.data.length !== 0) {
      throw new InstrumentError('reset-energy reply is not a 4-byte echo', { step: 'pzem-reset-energy', address: this.#address, bytesSeen: this.#port.bytesSeen() });
    }
  }

  /** Closes the line once its last meter is closed. */
  async close(): Promise<void> {
    await this.#bus.release(this);
  }

  async #writeHolding(step: string, register: number, value: number): Promise<void> {
    const r = await this.#transact(step, () => this.#client.writeRegister(register, value));
    if (r.address !== register || r.value !== value) {
      throw new InstrumentError(`write echo mismatch: register 0x${r.address.toString(16)} = ${r.value}`, {
        step,
        address: this.#address,
        bytesSeen: this.#port.bytesSeen(),
        expected: `register 0x${register.toString(16)} = ${value}`,
      });
    }
  }

  /** One request/reply on the line, with deadline, error mapping and retries. */
  #transact<T>(step: string, op: () => Promise<T>): Promise<T> {
    const run = (): Promise<T> =>
      withRetry(this.#clock, this.#retry, async (attempt) => {
        const lost = this.#port.lost;
        if (lost) throw lost instanceof PlugrigError ? lost : new TransportError(`PZEM-004T port failed: ${lost.message}`, { step, address: this.#address }, { cause: lost });
        this.#client.setID(this.#address);
        try {
          return await withDeadline(this.#clock, this.#timeoutMs, op().catch((e: unknown) => { throw this.#mapError(step, e, attempt); }), () =>
            new InstrumentError(`PZEM-004T at 0x${this.#address.toString(16)} did not answer within ${this.#timeoutMs} ms`, {
              step,
              address: this.#address,
              attempt,
              bytesSeen: this.#port.bytesSeen(),
            }),
          );
        } finally {
          this.#port.abandon();
        }
      }, (e) => e instanceof InstrumentError && e.context.modbusCode === undefined);
    return this.#bus.turn(run);
  }

  #mapError(step: string, e: unknown, attempt: number): Error {
    if (e instanceof PlugrigError) return e;
    const f = (e ?? {}) as ModbusFailure;
    const message = f.message ?? String(e);
    return new InstrumentError(`PZEM-004T ${step} failed: ${message}`, {
      step,
      address: this.#address,
      attempt,
      bytesSeen: this.#port.bytesSeen(),
      ...(f.modbusCode !== undefined ? { modbusCode: f.modbusCode } : {}),
    }, { cause: e });
  }
}
