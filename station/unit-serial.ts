import { ConfigError } from '../rig/core/errors.ts';

/** The plan's serial rule, anchored: the whole scan must match. */
export function serialMatcher(pattern: string): (serial: string) => boolean {
  const re = new RegExp(`^(?:${pattern})$`);
  return (s) => re.test(s);
}

/** `--serial 1=ABC,2=DEF` (one or several options): serials by slot, each checked against the plan's pattern. */
export function parseSerialOption(values: readonly string[], o: { slots: readonly number[]; pattern?: string }): Map<number, string> {
  const ok = o.pattern !== undefined ? serialMatcher(o.pattern) : (): boolean => true;
  const out = new Map<number, string>();
  for (const item of values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '')) {
    const m = /^(\d+)=(.+)$/.exec(item);
    if (!m) throw new ConfigError(`--serial ${item}: write SLOT=SERIAL, e.g. --serial 1=ABC123,2=ABC124`, { step: 'args' });
    const slot = Number(m[1]);
    const serial = m[2]!.trim();
    if (!o.slots.includes(slot)) throw new ConfigError(`--serial ${item}: slot ${slot} is not in this run (slots ${o.slots.join(', ')})`, { step: 'args', slot });
    if (out.has(slot)) throw new ConfigError(`--serial: slot ${slot} given twice`, { step: 'args', slot });
    if (!ok(serial)) throw new ConfigError(`--serial ${item}: '${serial}' does not match the plan's serial pattern ${o.pattern}`, { step: 'args', slot });
    out.set(slot, serial);
  }
  const seen = new Map<string, number>();
  for (const [slot, serial] of out) {
    const other = seen.get(serial);
    if (other !== undefined) throw new ConfigError(`--serial: '${serial}' given for slots ${other} and ${slot}`, { step: 'args', slot });
    seen.set(serial, slot);
  }
  return out;
}

/**
 * Ask for the serials still missing, one scan per line (a keyboard-wedge scanner types the code
 * and Enter). A scan that does not match the pattern, or repeats another slot's, is refused and
 * asked again, up to `tries` times per slot; running out of lines is an error naming the slot.
 */
export async function scanSerials(
  missing: readonly number[],
  o: { pattern: string; lines: AsyncIterator<string>; prompt: (text: string) => void; tries?: number; have?: ReadonlyMap<number, string> },
): Promise<Map<number, string>> {
  const ok = serialMatcher(o.pattern);
  const out = new Map<number, string>();
  const taken = new Set(o.have?.values() ?? []);
  for (const slot of missing) {
    for (let attempt = 1; ; attempt++) {
      o.prompt(`scan the serial of the unit in slot ${slot}: `);
      const next = await o.lines.next();
      if (next.done) throw new ConfigError(`no serial for slot ${slot}: the input ended (the plan asks for a serial matching ${o.pattern}; give --serial ${slot}=...)`, { step: 'serial', slot });
      const serial = next.value.trim();
      const why = !ok(serial) ? `does not match ${o.pattern}` : taken.has(serial) ? 'is already scanned for another slot' : undefined;
      if (!why) {
        out.set(slot, serial);
        taken.add(serial);
        break;
      }
      o.prompt(`'${serial}' ${why}\n`);
      if (attempt >= (o.tries ?? 3)) throw new ConfigError(`slot ${slot}: no valid serial after ${attempt} scans (last '${serial}' ${why})`, { step: 'serial', slot });
    }
  }
  return out;
}
