/**
 * Small in-memory stand-ins for the four contracts, for tests of the firmware core on its own
 * (the real ones are the flash-backed storage and pins of the plug hardware, and H6's BL0937 driver).
 */
import type { Clock } from '../../../../rig/core/clock.ts';
import type {
  ObkCommandResult,
  ObkConfigData,
  ObkEnergyDriver,
  ObkEnergyDriverOptions,
  ObkEnergyReadings,
  ObkGpio,
  ObkRetainedData,
  ObkStorage,
  ObkWifiEnvironment,
} from '../contracts.ts';
import { cloneConfig } from '../obk-config.ts';

/** Config and retained data kept in memory; counts writes so save rules can be checked. */
export class MemoryStorage implements ObkStorage {
  config: ObkConfigData | undefined;
  retained: ObkRetainedData = { bootCount: 0, bootSuccessCount: 0, energyTotalWh: 0, energyTodayWh: 0 };
  configSaves = 0;
  retainedSaves = 0;
  /** Clock times of the config saves (when a clock is given). */
  readonly configSaveTimes: number[] = [];
  readonly #clock: Clock | undefined;

  constructor(clock?: Clock, config?: ObkConfigData) {
    this.#clock = clock;
    this.config = config && cloneConfig(config);
  }
  loadConfig(): ObkConfigData | undefined {
    return this.config && cloneConfig(this.config);
  }
  saveConfig(cfg: ObkConfigData): void {
    this.config = cloneConfig(cfg);
    this.configSaves++;
    if (this.#clock) this.configSaveTimes.push(this.#clock.now());
  }
  loadRetained(): ObkRetainedData {
    return { ...this.retained };
  }
  saveRetained(data: ObkRetainedData): void {
    this.retained = { ...data };
    this.retainedSaves++;
  }
}

/** Pins: inputs read `inputs` (default high: the pull-up), outputs are recorded with their times. */
export class FakeGpio implements ObkGpio {
  readonly inputs = new Map<number, boolean>();
  readonly outputs = new Map<number, boolean>();
  readonly writes: Array<{ t: number; pin: number; high: boolean }> = [];
  readonly edges = new Map<number, number>();
  released = 0;
  readonly #clock: Clock;

  constructor(clock: Clock) {
    this.#clock = clock;
  }
  write(pin: number, high: boolean): void {
    this.outputs.set(pin, high);
    this.writes.push({ t: this.#clock.now(), pin, high });
  }
  read(pin: number): boolean {
    return this.inputs.get(pin) ?? true;
  }
  takeFallingEdges(pin: number): number {
    const n = this.edges.get(pin) ?? 0;
    this.edges.set(pin, 0);
    return n;
  }
  releaseAll(): void {
    this.outputs.clear();
    this.released++;
  }
  /** Writes to one pin (times and levels). */
  writesTo(pin: number): Array<{ t: number; high: boolean }> {
    return this.writes.filter((w) => w.pin === pin).map(({ t, high }) => ({ t, high }));
  }
}

/** A station network: joins after `joinDelayMs` when the SSID/password match, else rejects. */
export class FakeWifi implements ObkWifiEnvironment {
  readonly #clock: Clock;
  networks = new Map<string, string>([['rig-net', 'rig-pass']]);
  joinDelayMs = 1500;
  ip = '10.0.0.42';
  readonly joins: Array<{ t: number; ssid: string }> = [];
  readonly accessPoints: Array<{ t: number; ssid: string }> = [];
  readonly leaves: number[] = [];

  constructor(clock: Clock) {
    this.#clock = clock;
  }
  async join(_mac: Uint8Array, ssid: string, pass: string, signal: AbortSignal): Promise<{ ip: string }> {
    this.joins.push({ t: this.#clock.now(), ssid });
    await this.#clock.sleep(this.joinDelayMs, signal);
    if (this.networks.get(ssid) !== pass) throw new Error(`no network ${ssid} with that password`);
    return { ip: this.ip };
  }
  openAccessPoint(_mac: Uint8Array, ssid: string): void {
    this.accessPoints.push({ t: this.#clock.now(), ssid });
  }
  leave(): void {
    this.leaves.push(this.#clock.now());
  }
}

/** A metering driver whose readings and calibration results the test sets; records calls. */
export class FakeEnergyDriver implements ObkEnergyDriver {
  readonly options: ObkEnergyDriverOptions;
  ticks = 0;
  stopped = 0;
  readonly calls: string[] = [];
  calibrateResult: ObkCommandResult = 'ok';
  current: ObkEnergyReadings = {
    voltage: 0, current: 0, power: 0, apparent: 0, reactive: 0, factor: 0, energyTotalWh: 0, energyTodayWh: 0, valid: false,
  };

  constructor(options: ObkEnergyDriverOptions) {
    this.options = options;
  }
  onEverySecond(): void {
    this.ticks++;
  }
  readings(): ObkEnergyReadings {
    return this.current;
  }
  calibrate(kind: 'voltage' | 'current' | 'power', args: string): ObkCommandResult {
    this.calls.push(`${kind} ${args}`);
    if (args.trim() === '') return 'not-enough-arguments';
    if (this.calibrateResult === 'error') this.options.log('Error', 'EnergyMeter', 'Calibration incorrect - connect load first.');
    return this.calibrateResult;
  }
  powerMax(args: string): ObkCommandResult {
    this.calls.push(`powerMax ${args}`);
    return args.trim() === '' ? 'not-enough-arguments' : 'ok';
  }
  energyCntReset(args: string): ObkCommandResult {
    this.calls.push(`energyCntReset ${args}`);
    this.options.retained.energyTotalWh = 0;
    this.options.saveRetained();
    return 'ok';
  }
  stop(): void {
    this.stopped++;
    this.options.saveRetained();
  }
}
