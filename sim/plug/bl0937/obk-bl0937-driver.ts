import type { ObkCommandResult, ObkEnergyDriver, ObkEnergyDriverOptions, ObkEnergyReadings } from '../obk/contracts.ts';
import { npfFixed } from '../obk/nanoprintf.ts';
import { evaluateNumber, tokenize } from '../obk/tokenizer.ts';

const f32 = Math.fround;

/** drv_bl0937.c defaults (openbeken-bl0937.md §2.2), used while the stored bit pattern is 0. */
export const OBK_BL0937_DEFAULT_CAL = { voltage: 0.13253012048, current: 0.0118577075, power: 1.5 } as const;
export const OBK_DEFAULT_POWER_MAX = 3680;
/** FreeRTOS on BK7231N: configTICK_RATE_HZ 500, i.e. 2 ms per tick. */
export const OBK_TICK_MS = 2;
const TICKS_PER_SECOND = 1000 / OBK_TICK_MS;
/** ConsumptionThreshold default, Wh, and the periodic save interval. */
export const OBK_ENERGY_SAVE_THRESHOLD_WH = 10;
export const OBK_ENERGY_SAVE_INTERVAL_MS = 6 * 3600 * 1000;

export interface ObkBl0937DriverExtras {
  /**
   * Model DRV_OnEverySecond failing to take the driver mutex (100 ms timeout): that second the driver
   * does nothing, so the next window is about 2 s long and SEL is not toggled (req 32).
   */
  mutexBusy?: () => boolean;
}

/** The raw window counts the driver last latched (for tests and benches that reason about calibration). */
export interface ObkBl0937Raw {
  voltage: number;
  current: number;
  power: number;
  ticks: number;
}

export interface ObkBl0937Driver extends ObkEnergyDriver {
  /** The un-normalised counts VoltageSet/CurrentSet/PowerSet would divide by, and the last window's ticks. */
  raw(): ObkBl0937Raw;
}

/** Tokenizer_GetArgFloat(0) with expansion: the expression evaluator (`2*115`), else atof (text reads 0). */
function argFloat(words: string[]): number {
  return evaluateNumber(words[0] ?? '');
}

/** Stored float bits are 0 (not -0): "use the default". */
function calOr(stored: number, fallback: number): number {
  return Object.is(stored, 0) ? f32(fallback) : f32(stored);
}

/**
 * OpenBeken's BL0937 driver (openbeken-http.md §5, requirements 27–32): falling-edge counts per ~1 s
 * window, SEL toggled every window starting HIGH, `count·cal·500/ticks` in float32 with the stale V/I
 * re-divided by the current window, PowerMax hold-last, BL_ProcessUpdate's clamps and S/Q/PF, and
 * energy integration with OpenBeken's flash checkpoints.
 */
export function createObkBl0937Driver(options: ObkEnergyDriverOptions & ObkBl0937DriverExtras): ObkBl0937Driver {
  const { clock, gpio, pins, config } = options;
  const ticksNow = (): number => Math.floor(clock.now() / OBK_TICK_MS);

  // BL0937_Init: SEL starts HIGH (g_sel = true), counters zeroed as the interrupts attach.
  let sel = true;
  gpio.write(pins.sel, sel);
  gpio.takeFallingEdges(pins.cf);
  gpio.takeFallingEdges(pins.cf1);
  let pulseStamp = ticksNow();
  let energyStamp = pulseStamp;
  let resV = 0;
  let resC = 0;
  let resP = 0;
  let lastTicks = 0;
  let lastP = f32(0);

  const r: ObkEnergyReadings = {
    voltage: 0,
    current: 0,
    power: 0,
    apparent: 0,
    reactive: 0,
    factor: 0,
    energyTotalWh: options.retained.energyTotalWh,
    energyTodayWh: options.retained.energyTodayWh,
    valid: false,
  };
  let total = options.retained.energyTotalWh;
  let today = options.retained.energyTodayWh;
  let savedTotal = total;
  let savedAt = clock.now();

  const powerMaxW = (): number => calOr(config.cal.powerMax, OBK_DEFAULT_POWER_MAX);

  /** Write the RAM copy of the flash vars (every update) and, on a checkpoint, flash it. */
  const syncRetained = (): void => {
    options.retained.energyTotalWh = f32(total);
    options.retained.energyTodayWh = f32(today);
  };
  const checkpoint = (): void => {
    syncRetained();
    savedTotal = total;
    savedAt = clock.now();
    options.saveRetained();
  };

  /** BL_ProcessUpdate(V, I, P, NAN, NAN). */
  const processUpdate = (v: number, i: number, p: number): void => {
    if (!options.flag(25)) {
      if (v < 0) v = 0;
      if (i < 0) i = 0;
      if (p < 0) p = 0;
    }
    if (options.flag(38) && options.relaysOpen()) {
      p = 0;
      i = 0;
    }
    const s = v * i; // double in the firmware
    r.voltage = v;
    r.current = i;
    r.power = p;
    r.apparent = f32(s);
    r.reactive = s <= Math.abs(p) ? 0 : f32(Math.sqrt(f32(s * s - p * p)));
    r.factor = s === 0 ? 1 : f32(p / s);
    r.valid = true;

    const now = ticksNow();
    const elapsed = now - energyStamp;
    energyStamp = now;
    let wh = f32(f32(elapsed * p) / f32((3600 * 1000) / OBK_TICK_MS));
    if (!(wh >= 0)) wh = 0;
    total += wh;
    today += wh;
    r.energyTotalWh = total;
    r.energyTodayWh = today;
    syncRetained();
    if (total - savedTotal >= OBK_ENERGY_SAVE_THRESHOLD_WH || clock.now() - savedAt >= OBK_ENERGY_SAVE_INTERVAL_MS) checkpoint();
  };

  const scale = (count: number, cal: number, ticks: number): number => f32(f32(f32(count * cal) * TICKS_PER_SECOND) / ticks);

  const driver: ObkBl0937Driver = {
    onEverySecond(): void {
      if (options.mutexBusy?.()) return;
      const vc = gpio.takeFallingEdges(pins.cf1);
      const voltageWindow = pins.selInverted ? !sel : sel;
      if (voltageWindow) resV = vc;
      else resC = vc;
      sel = !sel;
      gpio.write(pins.sel, sel);
      resP = gpio.takeFallingEdges(pins.cf);
      const now = ticksNow();
      const ticks = now - pulseStamp;
      pulseStamp = now;
      if (ticks <= 0) return;
      lastTicks = ticks;

      const v = scale(resV, calOr(config.cal.voltage, OBK_BL0937_DEFAULT_CAL.voltage), ticks);
      const i = scale(resC, calOr(config.cal.current, OBK_BL0937_DEFAULT_CAL.current), ticks);
      let p = scale(resP, calOr(config.cal.power, OBK_BL0937_DEFAULT_CAL.power), ticks);
      const pmax = powerMaxW();
      if (p > pmax) {
        options.log('Info', 'EnergyMeter', `Power reading: ${npfFixed(p)} exceeded MAX limit: ${npfFixed(pmax)}, Last: ${npfFixed(lastP)}`);
        p = lastP;
      } else lastP = p;
      processUpdate(v, i, p);
    },

    readings(): ObkEnergyReadings {
      return { ...r };
    },

    raw(): ObkBl0937Raw {
      return { voltage: resV, current: resC, power: resP, ticks: lastTicks };
    },

    calibrate(kind, args): ObkCommandResult {
      const words = tokenize(args);
      if (words.length < 1) return 'not-enough-arguments';
      const x = f32(argFloat(words));
      if (x === 0) return 'bad-argument';
      const raw = kind === 'voltage' ? resV : kind === 'current' ? resC : resP;
      if (Math.abs(raw) < 0.001) {
        options.log('Error', 'EnergyMeter', 'Calibration incorrect - connect load first.');
        return 'error';
      }
      const cal = f32(x / raw);
      if (Number.isNaN(cal) || Math.abs(cal) < 0.001) {
        options.log('Error', 'EnergyMeter', 'Calibration incorrect - result out of range.');
        return 'error';
      }
      config.cal[kind] = cal;
      options.configChanged();
      return 'ok';
    },

    powerMax(args): ObkCommandResult {
      const words = tokenize(args);
      if (words.length < 1) return 'not-enough-arguments';
      const w = f32(argFloat(words));
      if (w > 200 && w < 7200) {
        config.cal.powerMax = w;
        options.configChanged();
      }
      return 'ok';
    },

    energyCntReset(args): ObkCommandResult {
      const words = tokenize(args);
      total = words.length ? argFloat(words) : 0;
      today = 0;
      r.energyTotalWh = total;
      r.energyTodayWh = today;
      checkpoint();
      return 'ok';
    },

    stop(): void {
      checkpoint();
    },
  };
  return driver;
}
