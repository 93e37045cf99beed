/**
 * `plugrig --help` without yargs. Loading yargs and letting cliui lay the text out (string-width over
 * every cell) was most of the command's start-up; this renders the same text, laid out by the rules of
 * yargs' usage (command column capped at half the width, type hints right-aligned on the last line of
 * a description when they fit) and cliui / wrap-ansi (word wrap with hard breaks of longer words).
 * test/cli-top-help.test.ts compares it with yargs' own text at every width from 40 to 140.
 * Only plain ASCII text in an English locale takes this path; anything else is left to yargs.
 */

export interface HelpCommand {
  readonly command: string;
  readonly describe: string;
}

export interface HelpOption {
  readonly name: string;
  readonly describe: string;
  readonly type: 'boolean' | 'string' | 'number';
}

export interface TopHelp {
  readonly scriptName: string;
  readonly usage: string;
  readonly commands: readonly HelpCommand[];
  readonly options: readonly HelpOption[];
}

/** The narrowest layout checked against yargs (the test's range); narrower terminals get yargs. */
export const TOP_HELP_MIN_WIDTH = 40;

const PLAIN = /^[\x20-\x7e\n]*$/;

/** The locale yargs would guess (its kGuessLocale) is one whose help text is yargs' English. */
export function englishLocale(env: NodeJS.ProcessEnv): boolean {
  const locale = (env.LC_ALL || env.LC_MESSAGES || env.LANG || env.LANGUAGE || 'en_US').replace(/[.:].*/, '');
  return locale === 'C' || locale === 'POSIX' || locale === 'en' || locale.startsWith('en_');
}

/** Word wrap as wrap-ansi(text, columns, { hard: true }) does for plain text. */
function wrap(text: string, columns: number): string[] {
  return text.split('\n').flatMap((line) => wrapLine(line, columns));
}

function wrapLine(line: string, columns: number): string[] {
  if (line.trim() === '') return [''];
  const rows = [''];
  const last = (): string => rows[rows.length - 1]!;
  const words = line.split(' ');
  words.forEach((word, index) => {
    rows[rows.length - 1] = last().trimStart();
    let rowLength = last().length;
    if (index !== 0 && rowLength > 0) {
      rows[rows.length - 1] += ' ';
      rowLength++;
    }
    if (word.length > columns) {
      const remaining = columns - rowLength;
      const breaksThisLine = 1 + Math.floor((word.length - remaining - 1) / columns);
      const breaksNextLine = Math.floor((word.length - 1) / columns);
      if (breaksNextLine < breaksThisLine) rows.push('');
      hardWrap(rows, word, columns);
      return;
    }
    if (rowLength + word.length > columns && rowLength > 0 && word.length > 0) rows.push('');
    rows[rows.length - 1] += word;
  });
  return rows.map(trimSpacesRight);
}

function hardWrap(rows: string[], word: string, columns: number): void {
  let visible = rows[rows.length - 1]!.length;
  for (let i = 0; i < word.length; i++) {
    if (visible + 1 <= columns) rows[rows.length - 1] += word[i];
    else {
      rows.push(word[i]!);
      visible = 0;
    }
    visible++;
    if (visible === columns && i < word.length - 1) {
      rows.push('');
      visible = 0;
    }
  }
  if (!visible && rows[rows.length - 1]!.length > 0 && rows.length > 1) rows[rows.length - 2] += rows.pop();
}

/** wrap-ansi's right trim: trailing empty words go, their spaces are dropped. */
function trimSpacesRight(row: string): string {
  const words = row.split(' ');
  let last = words.length;
  while (last > 0 && words[last - 1]!.length === 0) last--;
  return last === words.length ? row : words.slice(0, last).join(' ') + words.slice(last).join('');
}

interface Line {
  text: string;
  span: boolean;
  hidden: boolean;
}

/**
 * A table of `[label, text, hint?]` rows as yargs lays out its "Commands:" and "Options:" groups: the
 * label column `labelWidth` wide with 2 spaces each side, the text in the rest, the hint right-aligned,
 * on the text's last line when there is room, else on a line of its own.
 */
function table(lines: Line[], rows: ReadonlyArray<readonly [string, string, string?]>, width: number, labelWidth: number): void {
  const textWidth = Math.max(width - labelWidth, 1);
  for (const [label, text, hint] of rows) {
    const left = wrap(label, labelWidth - 4);
    const right = wrap(text, textWidth);
    for (let r = 0; r < Math.max(left.length, right.length); r++) {
      // A raster row holds the label column always and the text column only while it has lines.
      let s = '  ' + (left[r] ?? '').padEnd(labelWidth - 4) + '  ';
      if (r < right.length) s += right[r]!.padEnd(textWidth);
      lines.push({ text: s.replace(/ +$/, ''), span: true, hidden: false });
    }
    if (!hint) continue;
    const hintLines = wrap(hint, width - 2).map((h) => '  ' + h.trim().padStart(width - 2));
    hintLines.forEach((source, r) => {
      const previous = lines[lines.length - 1]!;
      let text = source;
      const leading = /^ */.exec(source)![0].length;
      const target = previous.text.trimEnd();
      if (r === 0 && previous.span && leading >= target.length) {
        previous.hidden = true;
        text = target + ' '.repeat(leading - target.length) + source.trimStart();
      }
      lines.push({ text: text.replace(/ +$/, ''), span: false, hidden: false });
    });
  }
  lines.push({ text: '', span: false, hidden: false });
}

/** yargs' maxWidth: the widest label, at most half the width. */
function labelColumn(labels: readonly string[], width: number): number {
  return Math.min(Math.max(0, ...labels.map((l) => l.length)), Math.floor(width * 0.5)) + 4;
}

/**
 * The top-level help text (without the final newline) at `width` columns, or undefined when a text is
 * not plain ASCII, an option is a one-letter switch or the width is under TOP_HELP_MIN_WIDTH (yargs
 * renders those).
 */
export function renderTopHelp(help: TopHelp, width: number): string | undefined {
  const texts = [help.usage, ...help.commands.flatMap((c) => [c.command, c.describe]), ...help.options.flatMap((o) => [o.name, o.describe])];
  // A one-letter option is a short switch (-n), which yargs indents the long ones for: not done here.
  if (width < TOP_HELP_MIN_WIDTH || !texts.every((t) => PLAIN.test(t)) || help.options.some((o) => o.name.length < 2)) return undefined;
  const lines: Line[] = wrap(help.usage, width).map((text) => ({ text: text.replace(/ +$/, ''), span: false, hidden: false }));
  lines.push({ text: '', span: false, hidden: false });
  lines.push({ text: 'Commands:', span: false, hidden: false });
  const commandLabels = help.commands.map((c) => `${help.scriptName} ${c.command}`);
  table(lines, help.commands.map((c, i) => [commandLabels[i]!, c.describe] as const), width, labelColumn(commandLabels, width));
  lines.push({ text: 'Options:', span: false, hidden: false });
  const switches = help.options.map((o) => `--${o.name}`);
  table(lines, help.options.map((o, i) => [switches[i]!, o.describe, `[${o.type}]`] as const), width, labelColumn(switches, width));
  return lines
    .filter((l) => !l.hidden)
    .map((l) => l.text)
    .join('\n')
    .replace(/\s*$/, '');
}
