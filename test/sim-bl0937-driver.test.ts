import t from 'tap';
import { VirtualClock } from '../rig/core/clock.ts';
import type { ObkConfigData, ObkGpio, ObkRetainedData } from '../sim/plug/obk/contracts.ts';
import { createObkBl0937Driver, OBK_BL0937_DEFAULT_CAL, type ObkBl0937DriverExtras } from '../sim/plug/bl0937/obk-bl0937-driver.ts';
import { Bl0937Chip } from '../sim/plug/bl0937/bl0937-chip.ts';

const f32 = Math.fround;
const PINS = { cf: 7, cf1: 6, sel: 24, selInverted: false };

/**
 * A fake BL0937 on the GPIOs with fixed frequencies, so every window's count is known by hand:
 * CF1 pulses at `vHz` while SEL is high and `iHz` while low, CF at `pHz`; edges = integer crossings
 * of a phase that starts at 0.
 */
function fakeGpio(clock: VirtualClock, hz: { vHz: number; iHz: number; pHz: number }) {
  const phase = { cf: 0, cf1: 0 };
  const taken = { cf: 0, cf1: 0 };
  let at = clock.now();
  let sel = false;
  const writes: Array<{ t: number; pin: number; high: boolean }> = [];
  const advance = (): void => {
    const dt = (clock.now() - at) / 1000;
    at = clock.now();
    phase.cf += hz.pHz * dt;
    phase.cf1 += (sel ? hz.vHz : hz.iHz) * dt;
  };
  const gpio: ObkGpio = {
    write(pin, high) {
      advance();
      writes.push({ t: clock.now(), pin, high });
      if (pin === PINS.sel) sel = high;
    },
    read: () => true,
    takeFallingEdges(pin) {
      advance();
      const out = pin === PINS.cf ? 'cf' : pin === PINS.cf1 ? 'cf1' : undefined;
      if (!out) return 0;
      const whole = Math.floor(phase[out] + 1e-9);
      const n = whole - taken[out];
      taken[out] = whole;
      return n;
    },
    releaseAll() {},
  };
  return { gpio, writes, hz, sel: () => sel };
}

function config(): ObkConfigData {
  return {
    version: 5, genericFlags: 0, genericFlags2: 0, changeCounter: 0, wifiSsid: '', wifiPass: '', mqttHost: '', mqttClientId: '',
    mqttUser: '', mqttPass: '', mqttPort: 1883, webappRoot: '', mac: new Uint8Array(6), shortDeviceName: '', longDeviceName: '',
    pinRoles: new Array(32).fill(0), pinChannels: new Array(32).fill(0), pinChannels2: new Array(32).fill(0),
    channelTypes: new Array(64).fill(0), startChannelValues: new Array(64).fill(0),
    cal: { voltage: 0, current: 0, power: 0, powerMax: 0 }, buttonShortTicks: 3, buttonLongTicks: 10, buttonRepeatTicks: 5,
    bootOkSeconds: 0, initCommandLine: '', ssid2: '', pass2: '', webPassword: '',
  };
}

function bench(opts: { clock?: VirtualClock; hz?: { vHz: number; iHz: number; pHz: number }; gpio?: ObkGpio; flags?: number[]; relaysOpen?: boolean; selInverted?: boolean; retained?: Partial<ObkRetainedData> } & ObkBl0937DriverExtras = {}) {
  const clock = opts.clock ?? new VirtualClock();
  const fake = fakeGpio(clock, opts.hz ?? { vHz: 1735, iHz: 84, pHz: 66 });
  const cfg = config();
  const retained: ObkRetainedData = { bootCount: 1, bootSuccessCount: 1, energyTotalWh: 0, energyTodayWh: 0, ...opts.retained };
  const saved: ObkRetainedData[] = [];
  const logs: string[] = [];
  let configChanges = 0;
  const flags = new Set(opts.flags ?? []);
  let relaysOpen = opts.relaysOpen ?? false;
  const driver = createObkBl0937Driver({
    clock,
    gpio: opts.gpio ?? fake.gpio,
    pins: { ...PINS, selInverted: opts.selInverted ?? false },
    config: cfg,
    configChanged: () => configChanges++,
    retained,
    saveRetained: () => saved.push({ ...retained }),
    relaysOpen: () => relaysOpen,
    flag: (n) => flags.has(n),
    log: (level, module, message) => logs.push(`${level}:${module}:${message}`),
    ...(opts.mutexBusy ? { mutexBusy: opts.mutexBusy } : {}),
  });
  /** Advance to the next whole second and run the 1 s timer. */
  const tick = async (ms = 1000): Promise<void> => {
    await clock.sleep(ms);
    driver.onEverySecond();
  };
  return { clock, fake, cfg, retained, saved, logs, driver, tick, configChanges: () => configChanges, setRelaysOpen: (o: boolean) => (relaysOpen = o) };
}

/** The firmware's normalisation, spelled out: float32 of count·cal, ·500, /ticks. */
const norm = (count: number, cal: number, ticks: number): number => f32(f32(f32(count * f32(cal)) * 500) / ticks);

t.test('req 27: SEL starts HIGH (voltage window), toggles every tick; the first I is 0; V and I refresh every 2 s, P every 1 s', async (t) => {
  const b = bench();
  t.same(b.fake.writes[0], { t: 0, pin: 24, high: true }, 'driver init drives SEL high');
  t.same(b.driver.readings().valid, false);
  await b.tick();
  t.equal(b.fake.sel(), false, 'SEL toggled after the first window');
  t.same(b.driver.raw(), { voltage: 1735, current: 0, power: 66, ticks: 500 }, 'integer counts of the 1 s window');
  t.equal(b.driver.readings().current, 0, 'first I = 0: no current window yet');
  t.equal(b.driver.readings().voltage, norm(1735, OBK_BL0937_DEFAULT_CAL.voltage, 500));
  await b.tick();
  t.same(b.driver.raw(), { voltage: 1735, current: 84, power: 66, ticks: 500 }, 'second window is current; V held');
  t.equal(b.driver.readings().current, norm(84, OBK_BL0937_DEFAULT_CAL.current, 500));
  b.fake.hz.vHz = 1800;
  b.fake.hz.iHz = 100;
  b.fake.hz.pHz = 70;
  await b.tick();
  t.same(b.driver.raw(), { voltage: 1800, current: 84, power: 70, ticks: 500 }, 'window 3: V and P refresh, I is 2 s old');
  await b.tick();
  t.same(b.driver.raw(), { voltage: 1800, current: 100, power: 70, ticks: 500 }, 'window 4: I refreshes');
  t.same(b.fake.writes.map((w) => w.high), [true, false, true, false, true], 'SEL alternates every window');
});

t.test('req 27: SEL_n swaps what a window means, not the pin (the pin still starts HIGH)', async (t) => {
  const b = bench({ selInverted: true });
  t.equal(b.fake.writes[0]!.high, true, 'pin still driven high first');
  await b.tick();
  t.same(b.driver.raw(), { voltage: 0, current: 1735, power: 66, ticks: 500 }, 'the SEL-high (voltage) pulses are taken as current');
  t.equal(b.driver.readings().voltage, 0);
  await b.tick();
  t.equal(b.driver.raw().voltage, 84);
});

t.test('req 28: x = count·cal·500/ticks in float32; the stale V/I is re-divided by the current window', async (t) => {
  const b = bench({ hz: { vHz: 1000, iHz: 200, pHz: 100 } });
  await b.tick(1000);
  await b.tick(1000);
  const i2 = b.driver.readings().current;
  t.equal(i2, norm(200, OBK_BL0937_DEFAULT_CAL.current, 500));
  t.equal(i2, f32(f32(f32(200 * f32(0.0118577075)) * 500) / 500), 'exact float32 chain');
  // A 1.5 s window: 1500 voltage pulses over 750 ticks; the 2 s old current count (200) now over 750 ticks.
  await b.tick(1500);
  const r = b.driver.readings();
  t.same(b.driver.raw(), { voltage: 1500, current: 200, power: 150, ticks: 750 });
  t.equal(r.voltage, norm(1500, OBK_BL0937_DEFAULT_CAL.voltage, 750));
  t.equal(r.current, norm(200, OBK_BL0937_DEFAULT_CAL.current, 750), 'stale count rescaled by the new window length');
  t.ok(r.current < i2, `stale I reads low (${r.current} < ${i2}): no settling, no averaging`);
  t.equal(r.power, norm(150, 1.5, 750));
  t.equal(r.power, 150 * 1.5 * (500 / 750), 'P = 150 W exactly');
  // float32, not double: 1735 pulses of the default V factor.
  const b2 = bench();
  await b2.tick();
  const v = b2.driver.readings().voltage;
  t.equal(v, f32(v), 'the value is a float32');
  t.not(v, 1735 * 0.13253012048, 'and differs from the double product');
  t.ok(Math.abs(v - 229.939759) < 1e-4, `V = ${v}`);
  // The first window starts at driver init, however long it is.
  const b3 = bench({ hz: { vHz: 1000, iHz: 0, pHz: 0 } });
  await b3.tick(1250);
  t.same(b3.driver.raw().ticks, 625);
  t.equal(b3.driver.readings().voltage, norm(1250, OBK_BL0937_DEFAULT_CAL.voltage, 625));
});

t.test('req 29: PowerMax hold-last on P only (initial 0); energy integrates the held value; PowerMax range', async (t) => {
  const b = bench({ hz: { vHz: 1000, iHz: 3000, pHz: 3000 } }); // 3000 Hz × 1.5 = 4500 W > 3680
  await b.tick();
  t.equal(b.driver.readings().power, 0, 'first reading over the limit: the initial last value 0');
  t.match(b.logs.join('\n'), /Info:EnergyMeter:Power reading: 4500\.0+ exceeded MAX limit: 3680\.0+, Last: 0\.0+/);
  b.fake.hz.pHz = 1000;
  await b.tick();
  t.equal(b.driver.readings().power, 1500);
  b.fake.hz.pHz = 3000;
  const wh0 = b.driver.readings().energyTotalWh;
  await b.tick();
  t.equal(b.driver.readings().power, 1500, 'over the limit: last good value held');
  t.equal(b.driver.readings().current, norm(3000, OBK_BL0937_DEFAULT_CAL.current, 500), 'I is not filtered');
  t.equal(b.driver.readings().energyTotalWh - wh0, f32(f32(500 * 1500) / 1_800_000), 'energy integrates the held 1500 W');
  t.equal(b.driver.powerMax('5000'), 'ok');
  t.equal(b.cfg.cal.powerMax, 5000, 'stored in cal slot 3');
  await b.tick();
  t.equal(b.driver.readings().power, 4500, 'new limit applies');
  for (const bad of ['200', '7200', '100000', 'abc']) {
    t.equal(b.driver.powerMax(bad), 'ok', `PowerMax ${bad}: ok`);
    t.equal(b.cfg.cal.powerMax, 5000, `PowerMax ${bad}: ignored`);
  }
  t.equal(b.driver.powerMax(''), 'not-enough-arguments');
});

t.test('req 30: negatives clamped unless flag 25; flag 38 zeroes P and I with the relay open; S, Q, PF', async (t) => {
  const fresh = bench();
  t.same(fresh.driver.readings(), { voltage: 0, current: 0, power: 0, apparent: 0, reactive: 0, factor: 0, energyTotalWh: 0, energyTodayWh: 0, valid: false }, 'zeros (Factor 0) before the first update');
  const b = bench({ hz: { vHz: 1700, iHz: 100, pHz: 10 } });
  await b.tick();
  let r = b.driver.readings();
  t.equal(r.current, 0);
  t.equal(r.apparent, 0);
  t.equal(r.factor, 1, 'S = 0 gives PF = 1');
  t.equal(r.reactive, 0);
  await b.tick();
  r = b.driver.readings();
  const s = r.voltage * r.current;
  t.equal(r.apparent, f32(s), 'S = V·I');
  t.equal(r.factor, f32(r.power / s), 'PF = P/S');
  t.equal(r.reactive, f32(Math.sqrt(f32(s * s - r.power * r.power))), 'Q = sqrt(S² − P²)');
  // S <= |P| (uncalibrated P reads high): Q = 0.
  const hi = bench({ hz: { vHz: 1700, iHz: 10, pHz: 1000 } });
  await hi.tick();
  await hi.tick();
  t.equal(hi.driver.readings().reactive, 0, 'Q = 0 when S <= |P|');
  // A negative factor (PowerSet -100) gives negative P: clamped to 0, or kept with flag 25.
  for (const flag25 of [false, true]) {
    const n = bench({ hz: { vHz: 1700, iHz: 100, pHz: 50 }, flags: flag25 ? [25] : [] });
    await n.tick();
    t.equal(n.driver.calibrate('power', '-100'), 'ok');
    await n.tick();
    t.equal(n.driver.readings().power, flag25 ? norm(50, -2, 500) : 0, flag25 ? 'flag 25 keeps the negative value' : 'negative P clamped to 0');
  }
  const f38 = bench({ hz: { vHz: 1700, iHz: 100, pHz: 50 }, flags: [38], relaysOpen: true });
  await f38.tick();
  await f38.tick();
  t.equal(f38.driver.readings().power, 0, 'flag 38 + relay open: P = 0');
  t.equal(f38.driver.readings().current, 0, 'and I = 0');
  t.ok(f38.driver.readings().voltage > 200, 'V still reads');
  f38.setRelaysOpen(false);
  await f38.tick();
  t.equal(f38.driver.readings().power, 75, 'relay closed: P reads again');
});

t.test('req 31: energy = Σ ticks·P/1,800,000 Wh in float32; checkpoints at +10 Wh, 6 h, EnergyCntReset and restart', async (t) => {
  const b = bench({ hz: { vHz: 1700, iHz: 100, pHz: 1200 } }); // 1800 W: 0.5 Wh per second
  await b.tick();
  t.equal(b.driver.readings().energyTotalWh, f32(f32(500 * 1800) / 1_800_000));
  t.equal(b.driver.readings().energyTotalWh, 0.5);
  for (let i = 0; i < 18; i++) await b.tick();
  t.equal(b.driver.readings().energyTotalWh, 9.5);
  t.equal(b.saved.length, 0, 'no flash write below +10 Wh');
  t.equal(b.retained.energyTotalWh, 9.5, 'the RAM copy of the flash vars follows every update');
  await b.tick();
  t.equal(b.saved.length, 1, '+10 Wh: checkpoint');
  t.equal(b.saved[0]!.energyTotalWh, 10);
  for (let i = 0; i < 5; i++) await b.tick();
  t.equal(b.saved.length, 1, 'a power cut now would lose 2.5 Wh (only RAM has them)');
  t.equal(b.saved.at(-1)!.energyTotalWh, 10);
  t.equal(b.driver.energyCntReset(''), 'ok');
  t.equal(b.saved.length, 2, 'EnergyCntReset saves');
  t.same([b.saved[1]!.energyTotalWh, b.saved[1]!.energyTodayWh], [0, 0]);
  t.equal(b.driver.energyCntReset('1234.5'), 'ok');
  t.equal(b.driver.readings().energyTotalWh, 1234.5, 'EnergyCntReset value sets the total');
  b.driver.stop();
  t.equal(b.saved.length, 4, 'restart saves');
  // 6 h with a tiny load: saved by time, not by threshold.
  const slow = bench({ hz: { vHz: 1700, iHz: 10, pHz: 0 }, retained: { energyTotalWh: f32(77.7) } });
  t.equal(slow.driver.readings().energyTotalWh, f32(77.7), 'total loaded from the retained (float32) record');
  await slow.tick(6 * 3600 * 1000 - 1000);
  t.equal(slow.saved.length, 0);
  await slow.tick(1000);
  t.equal(slow.saved.length, 1, '6 h since the last save: checkpoint');
  // The stored total is float32.
  const big = bench({ hz: { vHz: 1700, iHz: 10, pHz: 1 }, retained: { energyTotalWh: 16_777_216 } });
  await big.tick();
  t.ok(big.driver.readings().energyTotalWh > 16_777_216, 'RAM total is a double');
  big.driver.stop();
  t.equal(big.saved[0]!.energyTotalWh, 16_777_216, 'the stored float32 loses the fraction');
});

t.test('req 32: a skipped driver tick gives a 2 s window with no SEL toggle', async (t) => {
  let busy = false;
  const b = bench({ hz: { vHz: 1000, iHz: 100, pHz: 100 }, mutexBusy: () => busy });
  await b.tick();
  busy = true;
  await b.tick();
  t.equal(b.fake.writes.length, 2, 'no SEL write in the skipped second');
  busy = false;
  await b.tick();
  t.same(b.driver.raw(), { voltage: 1000, current: 200, power: 200, ticks: 1000 }, 'a 2 s current window');
  t.equal(b.driver.readings().current, norm(200, OBK_BL0937_DEFAULT_CAL.current, 1000), 'normalised by 1000 ticks');
});

t.test('req 23 / §5.2: VoltageSet/CurrentSet/PowerSet check order, X / last raw count exactly, defaults when 0', async (t) => {
  const b = bench({ hz: { vHz: 1735, iHz: 84, pHz: 66 } });
  t.equal(b.driver.calibrate('voltage', ''), 'not-enough-arguments', 'missing argument');
  t.equal(b.driver.calibrate('voltage', '0'), 'bad-argument', '0');
  t.equal(b.driver.calibrate('voltage', 'abc'), 'bad-argument', 'non-numeric reads as 0');
  t.equal(b.driver.calibrate('voltage', '230'), 'error', 'no window yet: zero pulses');
  t.match(b.logs.at(-1), 'Error:EnergyMeter:Calibration incorrect - connect load first.');
  t.equal(b.configChanges(), 0);
  await b.tick();
  t.equal(b.driver.calibrate('current', '0.5'), 'error', 'no current window yet');
  t.equal(b.driver.calibrate('voltage', '230'), 'ok');
  t.equal(b.cfg.cal.voltage, f32(230 / 1735), 'cal = X / raw (float32)');
  t.equal(b.configChanges(), 1, 'config marked for saving');
  t.equal(b.driver.calibrate('power', '100'), 'ok');
  t.equal(b.cfg.cal.power, f32(100 / 66));
  t.equal(b.driver.calibrate('voltage', '0.5'), 'error', '|cal| < 0.001 (0.5/1735 = 0.00029)');
  t.equal(b.cfg.cal.voltage, f32(230 / 1735), 'unchanged after an error');
  t.equal(b.driver.calibrate('voltage', '230.5V'), 'ok', 'atof reads the numeric prefix');
  t.equal(b.cfg.cal.voltage, f32(230.5 / 1735));
  t.equal(b.driver.calibrate('voltage', '230 extra args'), 'ok');
  t.equal(b.driver.calibrate('voltage', '2*115'), 'ok', 'the expression evaluator runs on the argument');
  t.equal(b.cfg.cal.voltage, f32(230 / 1735));
  await b.tick();
  t.equal(b.driver.calibrate('current', '1'), 'ok');
  t.equal(b.cfg.cal.current, f32(1 / 84));
  t.equal(b.cfg.cal.power, f32(100 / 66), 'the three factors are independent');
  // The new factor is used from the next tick: 66 pulses × (100/66) × 500/500 = 100 W (float32).
  await b.tick();
  t.equal(b.driver.readings().power, norm(66, f32(100 / 66), 500));
  t.ok(Math.abs(b.driver.readings().power - 100) < 1e-4);
  // The raw count is not normalised: calibrating on a 1.5 s window stores X / 1.5 s of pulses.
  const w = bench({ hz: { vHz: 1000, iHz: 100, pHz: 100 } });
  await w.tick(1500);
  t.equal(w.driver.calibrate('power', '100'), 'ok');
  t.equal(w.cfg.cal.power, f32(100 / 150), 'X / 150 pulses');
  await w.tick(1000);
  t.ok(Math.abs(w.driver.readings().power - 66.6667) < 1e-3, 'then a 1 s window reads 100 × 1/1.5');
  // -0 is not the 0 bit pattern: it is used as a factor (and reads -0, clamped to 0).
  const z = bench({ hz: { vHz: 1000, iHz: 100, pHz: 100 } });
  z.cfg.cal.voltage = -0;
  await z.tick();
  t.equal(z.driver.readings().voltage, 0, 'a stored -0 factor is used as is');
  z.cfg.cal.voltage = 0;
  await z.tick(2000);
  t.equal(z.driver.readings().voltage, norm(1000, OBK_BL0937_DEFAULT_CAL.voltage, 1000), '0 bit pattern: default factor (the 1000-pulse V count, stale over this 2 s window)');
});

t.test('driven by the physics chip: counts follow the chip frequencies; calibration makes the next windows read the truth', async (t) => {
  const clock = new VirtualClock();
  const input = { volts: 231.4, amps: 0.4348, watts: 100.3 };
  const chip = new Bl0937Chip({ clock, seed: 42, input: () => input });
  const truth = chip.truth();
  const gpio: ObkGpio = {
    write: (pin, high) => { if (pin === PINS.sel) chip.setSel(high); },
    read: () => true,
    takeFallingEdges: (pin) => (pin === PINS.cf ? chip.takeFallingEdges('cf') : pin === PINS.cf1 ? chip.takeFallingEdges('cf1') : 0),
    releaseAll() {},
  };
  const b = bench({ gpio, clock });
  const fV = truth.frequency('voltage', input);
  const fI = truth.frequency('current', input);
  const fP = truth.frequency('power', input);
  const jitter = 0.003;
  for (let k = 0; k < 6; k++) {
    await b.tick();
    const raw = b.driver.raw();
    const isV = k % 2 === 0;
    const got = isV ? raw.voltage : raw.current;
    const want = isV ? fV : fI;
    t.ok(Math.abs(got - want) <= 1 + want * jitter, `window ${k}: ${isV ? 'V' : 'I'} count ${got} ~ ${want.toFixed(2)} Hz`);
    t.ok(Math.abs(raw.power - fP) <= 1 + fP * jitter, `window ${k}: P count ${raw.power} ~ ${fP.toFixed(2)} Hz`);
  }
  const r0 = b.driver.readings();
  t.ok(Math.abs(r0.voltage - fV * OBK_BL0937_DEFAULT_CAL.voltage) <= OBK_BL0937_DEFAULT_CAL.voltage * (1 + fV * jitter), 'uncalibrated V = f·default factor');
  t.equal(b.driver.calibrate('voltage', String(input.volts)), 'ok');
  t.equal(b.driver.calibrate('power', String(input.watts)), 'ok');
  t.equal(b.driver.calibrate('current', String(input.amps)), 'ok');
  await b.tick();
  await b.tick();
  const r = b.driver.readings();
  // After calibration the error is the ±1 pulse of both windows plus jitter.
  t.ok(Math.abs(r.voltage / input.volts - 1) < 2 / fV + 2 * jitter, `V ${r.voltage}`);
  t.ok(Math.abs(r.current / input.amps - 1) < 2 / fI + 2 * jitter, `I ${r.current}`);
  t.ok(Math.abs(r.power / input.watts - 1) < 2 / fP + 2 * jitter, `P ${r.power}`);
});
