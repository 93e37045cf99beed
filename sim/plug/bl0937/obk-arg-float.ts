/**
 * OpenBeken's command arguments as its tokenizer splits them (on spaces) and reads a float from one:
 * C `atof` semantics, a leading numeric prefix or 0 for text that is not a number. OpenBeken also
 * runs its expression evaluator (`2*115`) when expansion is allowed; that is not modelled here.
 */
export function obkArgs(args: string): string[] {
  return args.split(/\s+/).filter((a) => a.length > 0);
}

export function obkAtof(text: string): number {
  const m = /^\s*([+-]?)(?:(inf(?:inity)?)|(nan)|((?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?))/i.exec(text);
  if (!m) return 0;
  const sign = m[1] === '-' ? -1 : 1;
  if (m[2]) return sign * Infinity;
  if (m[3]) return Number.NaN;
  return sign * Number(m[4]);
}
