/**
 * One command's argv parsed without yargs, for the commands whose start-up is part of a measured
 * time (`plugrig flash`): loading yargs and building its parser costs about a third of that
 * command's start-up CPU. Only the plain forms are taken — `--name value`, `--name=value`,
 * `--flag`, `--no-flag`, one positional — each option once, every value of a type and choice yargs
 * would accept unchanged. Anything else (help, version, an unknown, repeated or short option, a
 * value that looks like an option, `--flag false`, a number yargs might read differently) returns
 * undefined and the caller lets yargs parse it, with its messages. test/cli-plain-argv.test.ts
 * holds the result against yargs' for the same argv.
 */

/** An option as yargs declares it (the fields this parser honours). */
export interface PlainOption {
  /** Absent: a string (yargs' reading of an option with only `choices`). */
  type?: 'string' | 'number' | 'boolean';
  default?: string | number | boolean;
  choices?: readonly string[];
}

export type PlainArgs = Record<string, unknown> & { _: string[]; $0: string };

const camel = (name: string): string => name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** `argv` ([command, ...]) as yargs would hand it to the command's handler, or undefined. */
export function parsePlainArgv(argv: readonly string[], command: string, positional: string, options: Readonly<Record<string, PlainOption>>): PlainArgs | undefined {
  if (argv[0] !== command) return undefined;
  const out: PlainArgs = { _: [command], $0: 'plugrig' };
  const set = (name: string, value: unknown): void => {
    out[name] = value;
    if (name.includes('-')) out[camel(name)] = value;
  };
  let positionalValue: string | undefined;
  for (let i = 1; i < argv.length; i++) {
    const token = argv[i]!;
    if (!token.startsWith('--')) {
      if (token.startsWith('-') || positionalValue !== undefined) return undefined;
      positionalValue = token;
      continue;
    }
    const eq = token.indexOf('=');
    let name = eq < 0 ? token.slice(2) : token.slice(2, eq);
    let opt = options[name];
    let negated = false;
    if (!opt && name.startsWith('no-') && options[name.slice(3)]?.type === 'boolean') {
      name = name.slice(3);
      opt = options[name];
      negated = true;
    }
    if (!opt || Object.hasOwn(out, name)) return undefined;
    if (opt.type === 'boolean') {
      // yargs reads a following "true"/"false" as the flag's value: leave that to it.
      if (eq >= 0 || argv[i + 1] === 'true' || argv[i + 1] === 'false') return undefined;
      set(name, !negated);
      continue;
    }
    if (negated) return undefined;
    const text = eq >= 0 ? token.slice(eq + 1) : argv[++i];
    if (text === undefined || text === '' || text.startsWith('-')) return undefined;
    if (opt.choices && !opt.choices.includes(text)) return undefined;
    if (opt.type === 'number') {
      if (!/^[1-9]\d{0,14}$/.test(text)) return undefined;
      set(name, Number(text));
    } else {
      set(name, text);
    }
  }
  if (positionalValue === undefined) return undefined;
  out[positional] = positionalValue;
  for (const [name, opt] of Object.entries(options)) if (!Object.hasOwn(out, name) && opt.default !== undefined) set(name, opt.default);
  return out;
}
