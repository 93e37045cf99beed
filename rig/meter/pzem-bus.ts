import modbusSerial from 'modbus-serial';
import type { SerialPortStream } from '@serialport/stream';
import { InstrumentError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { ModbusRtuStreamPort } from './modbus-rtu-port.ts';

// modbus-serial is CommonJS with `module.exports.default = module.exports`; under NodeNext the typed class is `.default`.
const ModbusRTU = modbusSerial.default;
type ModbusRTU = InstanceType<typeof ModbusRTU>;

/**
 * One Modbus-RTU line (one serial port) with one or more PZEM-004T slaves on it, each at its own
 * address. The line carries one request/reply at a time: `turn` is its lease, served strictly in
 * arrival order, so the meters of several slots share the port without interleaving frames (each
 * transaction keeps its own deadline and retries inside its turn). It closes when its last meter does.
 */
export class PzemBus {
  readonly port: ModbusRtuStreamPort;
  readonly client: ModbusRTU;
  #queue: Promise<unknown> = Promise.resolve();
  #waiting = 0;
  readonly #users = new Set<object>();
  #closed = false;

  private constructor(port: ModbusRtuStreamPort, client: ModbusRTU) {
    this.port = port;
    this.client = client;
  }

  static async open(stream: SerialPortStream, log?: Logger): Promise<PzemBus> {
    const port = new ModbusRtuStreamPort(stream);
    const client = new ModbusRTU(port);
    client.on('error', (err: unknown) => log?.warn({ err: String(err) }, 'pzem port error'));
    await new Promise<void>((resolve, reject) => {
      client.open((err: Error | null) => {
        if (err) reject(new InstrumentError(`cannot open PZEM-004T port: ${err.message}`, { step: 'pzem-open' }, { cause: err }));
        else resolve();
      });
    });
    return new PzemBus(port, client);
  }

  /** Transactions queued behind the one on the line. */
  waiting(): number {
    return this.#waiting;
  }

  /** Run one transaction when the line is free (FIFO). */
  turn<T>(transaction: () => Promise<T>): Promise<T> {
    this.#waiting++;
    const go = (): Promise<T> => {
      this.#waiting--;
      return transaction();
    };
    const result = this.#queue.then(go, go);
    this.#queue = result.catch(() => undefined);
    return result;
  }

  /** A meter on this line (counted, so the line closes after the last one). */
  use(meter: object): void {
    this.#users.add(meter);
  }

  async release(meter: object): Promise<void> {
    this.#users.delete(meter);
    if (this.#users.size > 0 || this.#closed) return;
    this.#closed = true;
    await this.#queue;
    await new Promise<void>((resolve) => this.client.close(() => resolve()));
  }
}
