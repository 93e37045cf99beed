import t from 'tap';
import type { Measurement } from '../rig/meter/reference-meter.ts';
import { VirtualClock } from '../rig/core/clock.ts';
import {
  compileMnemonic,
  formatNr3,
  matchChoice,
  matchMnemonic,
  parseProgramUnit,
  splitProgramMessage,
} from '../sim/scpi/scpi-parser.ts';
import { VirtualWt310e } from '../sim/scpi/virtual-wt310e.ts';

const M: Measurement = { volts: 230.1, amps: 0.4348, watts: 95.0, pf: 0.95, hz: 50.01, wh: 1000 };

function wt(source: () => Measurement = () => M) {
  const dev = new VirtualWt310e({ source, serial: 'C2QD12345', ideal: true });
  const ask = (msg: string): string | undefined => {
    const r = dev.handleMessage(msg);
    return r && new TextDecoder('latin1').decode(r);
  };
  return { dev, ask };
}

t.test('parser: mnemonics, units, parameters', async (t) => {
  t.same(compileMnemonic('NUMeric'), { long: 'NUMERIC', short: 'NUM', suffix: false });
  const item = compileMnemonic('ITEM#');
  t.equal(matchMnemonic(item, 'item12'), 12);
  t.equal(matchMnemonic(item, 'ITEM'), 1, 'omitted suffix is 1');
  const num = compileMnemonic('NUMeric');
  for (const ok of ['NUM', 'num', 'NuMeRiC', 'NUMERIC']) t.equal(matchMnemonic(num, ok), 1, ok);
  for (const bad of ['NUME', 'NU', 'NUMERICS', 'NUM1']) t.equal(matchMnemonic(num, bad), undefined, bad);
  t.equal(matchChoice('lamb', ['U', 'LAMBda']), 'LAMBDA');
  t.equal(matchChoice('lam', ['U', 'LAMBda']), undefined);
  t.same(splitProgramMessage(':A 1;B "x;y";;*CLS'), [':A 1', 'B "x;y"', '*CLS']);
  t.same(parseProgramUnit(':NUM:NORM:ITEM1 U, 1'), { common: false, absolute: true, nodes: ['NUM', 'NORM', 'ITEM1'], query: false, params: ['U', '1'] });
  t.same(parseProgramUnit('*idn?'), { common: true, absolute: true, nodes: ['IDN'], query: true, params: [] });
  t.same(parseProgramUnit('ITEM2?'), { common: false, absolute: false, nodes: ['ITEM2'], query: true, params: [] });
  t.throws(() => parseProgramUnit(':A::B'), { name: 'ScpiError', code: -102 });
  t.throws(() => parseProgramUnit(':A 1,,2'), { name: 'ScpiError', code: -102 });
  t.equal(formatNr3(225.7), '2.2570E+02');
  t.equal(formatNr3(0.004348), '4.3480E-03');
  t.equal(formatNr3(0), '0.0000E+00');
});

t.test('identity, common commands, numeric items and values', async (t) => {
  const { ask } = wt();
  t.equal(ask('*IDN?'), 'YOKOGAWA,WT310E,C2QD12345,F1.03');
  t.equal(ask('*OPC?'), '1');
  t.equal(ask(':NUMeric:FORMat ASCii;:NUMeric:NORMal:NUMber 3'), undefined, 'commands have no response');
  // Relative headers after ';' continue from the previous command's path.
  t.equal(ask(':NUM:NORM:ITEM1 U,1;ITEM2 I,1;ITEM3 LAMBda,1'), undefined);
  t.equal(ask(':num:norm:item3?'), 'LAMBDA,1');
  t.equal(ask(':NUMERIC:NORMAL:VALUE?'), '2.3010E+02,4.3480E-01,9.5000E-01');
  t.equal(ask(':NUM:NORM:VAL? 2'), '4.3480E-01', 'single item');
  t.equal(ask('*IDN?;:NUM:NORM:NUM?'), 'YOKOGAWA,WT310E,C2QD12345,F1.03;3', 'several queries join with ;');
  t.equal(ask(':SYST:ERR?'), '0,"No error"');
});

t.test('error queue: -113 undefined header and friends, FIFO, *CLS clears', async (t) => {
  const { ask, dev } = wt();
  t.equal(ask(':NUMeric:BOGus 1'), undefined);
  t.equal(ask(':NUMe:FORM ASC'), undefined, 'NUME is neither short nor long form');
  t.equal(ask(':NUM:FORM HEX'), undefined);
  t.equal(ask(':NUM:NORM:NUM'), undefined);
  t.equal(ask('ITEM1 U,1'), undefined, 'relative header at message start resolves from the root: undefined');
  t.equal(dev.scpi.errorCount(), 5);
  t.equal(ask(':SYSTem:ERRor?'), '-113,"Undefined header"');
  t.equal(ask(':SYST:ERR?'), '-113,"Undefined header"');
  t.equal(ask(':SYST:ERR?'), '-224,"Illegal parameter value"');
  t.equal(ask(':SYST:ERR?'), '-109,"Missing parameter"');
  t.equal(ask(':SYST:ERR?'), '-113,"Undefined header"');
  t.equal(ask(':SYST:ERR?'), '0,"No error"');
  for (let i = 0; i < 12; i++) ask(':NOPE');
  t.equal(dev.scpi.errorCount(), 10, 'queue is bounded');
  ask('*CLS');
  t.equal(ask(':SYST:ERR?'), '0,"No error"');
  // A bad unit does not stop the rest of the message.
  t.equal(ask(':NOPE;*OPC?'), '1');
});

t.test('header on prefixes responses; ranges and auto range', async (t) => {
  const { ask } = wt();
  ask(':COMM:HEAD ON');
  t.equal(ask(':INP:VOLT:RANG?'), ':INPUT:VOLTAGE:RANGE 3.0000E+02', 'auto range for 230 V is 300 V');
  ask(':COMMunicate:HEADer OFF');
  t.equal(ask(':INP:CURR:RANG?'), '5.0000E-01', 'auto range for 0.43 A is 0.5 A');
  ask(':INPut:CURRent:RANGe 5A;:INP:VOLT:RANG 150V');
  t.equal(ask(':INP:CURR:RANG?;:INP:CURR:AUTO?'), '5.0000E+00;0');
  t.equal(ask(':INP:VOLT:RANG?'), '1.5000E+02');
  ask(':INP:VOLT:RANG 100V');
  t.equal(ask(':SYST:ERR?'), '-224,"Illegal parameter value"', '100 V is not a range');
});

t.test('integration (WP) and FLOat format as a definite-length block', async (t) => {
  let m = { ...M };
  const { ask } = wt(() => m);
  ask(':NUM:NORM:NUM 2;:NUM:NORM:ITEM1 WP,1;ITEM2 P,1');
  t.equal(ask(':INTEG:STAT?'), 'RES');
  ask(':INTEGrate:STARt');
  m = { ...m, wh: 1012.5 };
  t.equal(ask(':NUM:NORM:VAL?'), '1.2500E+01,9.5000E+01');
  ask(':INTEG:STOP');
  m = { ...m, wh: 1100 };
  t.equal(ask(':NUM:NORM:VAL? 1'), '1.2500E+01', 'stopped integrator holds');
  ask(':INTEG:STAR;:INTEG:RES');
  t.equal(ask(':SYST:ERR?'), '-221,"Settings conflict"', 'reset while running refused');
  ask(':NUM:FORM FLO');
  const raw = dev(ask(':NUM:NORM:VAL?')!);
  t.equal(new TextDecoder().decode(raw.subarray(0, 6)), '#40008');
  const view = new DataView(raw.buffer, raw.byteOffset + 6);
  t.equal(view.getFloat32(0), Math.fround(12.5));
  t.equal(view.getFloat32(4), Math.fround(95));
  function dev(s: string): Uint8Array {
    return Uint8Array.from(s, (c) => c.charCodeAt(0));
  }
});

t.test('as a VirtualUartDevice: LF-terminated messages, one byte at a time', async (t) => {
  const clock = new VirtualClock();
  const dev = new VirtualWt310e({ source: () => M, ideal: true });
  const out: number[] = [];
  dev.connect({ send: (b) => out.push(...b) }, clock);
  for (const b of new TextEncoder().encode('*CLS;*IDN?\r\n:BAD\n*OPC?\n')) dev.receive(Uint8Array.of(b));
  await clock.sleep(50);
  t.equal(new TextDecoder().decode(Uint8Array.from(out)), 'YOKOGAWA,WT310E,C2QD00001,F1.03\n1\n');
  t.equal(dev.handleMessage(':SYST:ERR?') && new TextDecoder().decode(dev.handleMessage(':SYST:ERR?')), '0,"No error"');
});

t.test('imperfect reference: per-instrument error within ±(0.1 % rdg + 0.05 % rng) from its serial, noise, 250 ms updates', async (t) => {
  const clock = new VirtualClock();
  const truth: Measurement = { volts: 229.4, amps: 8.71, watts: 1998, pf: 1, hz: 50, wh: 0 };
  const values = (dev: VirtualWt310e): number[] => new TextDecoder().decode(dev.handleMessage(':NUM:NORM:VAL?')!).split(',').slice(0, 3).map(Number);
  const gains = new Set<number>();
  for (let i = 0; i < 40; i++) {
    const dev = new VirtualWt310e({ source: () => truth, serial: `C2QD${1000 + i}`, clock });
    const tr = dev.truth();
    gains.add(tr.errors.watts!.gain);
    t.ok(Math.abs(tr.errors.watts!.gain) <= 0.001 && Math.abs(tr.errors.watts!.rangeFraction) <= 0.0005, `C2QD${1000 + i} within class`, { diagnostic: false });
    for (let k = 0; k < 4; k++) {
      await clock.sleep(250);
      const [u, a, p] = values(dev);
      // Ranges for these values: 300 V, 10 A, so P on 3000 W.
      t.ok(Math.abs(u! - truth.volts) <= 0.001 * truth.volts + 0.0005 * 300 + 1e-3, `U ${u}`, { diagnostic: false });
      t.ok(Math.abs(a! - truth.amps) <= 0.001 * truth.amps + 0.0005 * 10 + 1e-5, `I ${a}`, { diagnostic: false });
      t.ok(Math.abs(p! - truth.watts) <= 0.001 * truth.watts + 0.0005 * 3000 + 1e-2, `P ${p}`, { diagnostic: false });
    }
  }
  t.equal(gains.size, 40, 'every instrument has its own error');
  const a = new VirtualWt310e({ source: () => truth, serial: 'C2QD1', clock });
  const b = new VirtualWt310e({ source: () => truth, serial: 'C2QD1', clock });
  t.same(a.truth().errors, b.truth().errors, 'same serial, same error');
  t.not(values(new VirtualWt310e({ source: () => truth, serial: 'C2QD2', clock }))[2], values(a)[2], 'another serial reads differently');
  // Held for one update interval, then a new noisy update.
  const { phaseMs } = a.truth();
  await clock.sleep(phaseMs + 250 * Math.ceil((clock.now() - phaseMs) / 250) + 10 - clock.now());
  const first = values(a)[2];
  await clock.sleep(200);
  t.equal(values(a)[2], first, 'same update: same value');
  await clock.sleep(100);
  t.not(values(a)[2], first, 'next update: new noise');
  t.equal(a.truth().updateIntervalMs, 250);
});
