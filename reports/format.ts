import type { MeasurementResult } from '../suites/model/measurement.ts';

/** A number for people: up to 6 significant digits, no exponent noise from float arithmetic. */
export function num(v: number | undefined | null, digits = 6): string {
  if (v === undefined || v === null) return '-';
  if (!Number.isFinite(v)) return String(v);
  return Number(v.toPrecision(digits)).toString();
}

/** Seconds with millisecond resolution, as JUnit's time attributes want them. */
export function seconds(ms: number): string {
  return (Math.max(0, ms) / 1000).toFixed(3);
}

/** "power error vs reference = 0.21 ± 0.18 % [-1 .. 1] pass (accept)". */
export function measurementLine(m: MeasurementResult): string {
  const value = m.taken ? `${num(m.value)}${m.U > 0 ? ` ± ${num(m.U, 2)}` : ''}${m.unit ? ` ${m.unit}` : ''}` : 'not taken';
  const limits = m.limits ? ` [${num(m.limits.low)} .. ${num(m.limits.high)}]` : '';
  return `${m.name} = ${value}${limits} ${m.verdict} (${m.decision}${m.verdict === 'pass' ? '' : `: ${m.reason}`})`;
}
