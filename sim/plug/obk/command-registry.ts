import type { ObkCommandResult } from './contracts.ts';
import type { ObkLog } from './obk-log.ts';
import { isWhiteSpace } from './tokenizer.ts';

/**
 * The command table and CMD_ExecuteCommand: the first word names the command (case-insensitive);
 * when no command has that name, the word up to its first digit is tried, so `POWER1` runs `power`
 * with cmd = "POWER1". The arguments are the rest of the line after the whitespace, untrimmed at
 * the end (`POST /api/cmnd` passes `POWER ON\n` through as `ON\n`).
 */
export type CommandResult = ObkCommandResult | 'empty';
export type CommandSource = 'http' | 'console' | 'script';

export interface CommandCall {
  /** The command word as typed (e.g. "POWER1"). */
  cmd: string;
  args: string;
  source: CommandSource;
}
export type CommandHandler = (call: CommandCall) => CommandResult;

/** CMD_GetResultString: the msg of POST /api/cmnd replies. */
export const RESULT_MESSAGE: Readonly<Record<CommandResult, string>> = Object.freeze({
  ok: 'OK',
  empty: 'No command entered',
  error: 'Command found but returned error',
  'not-enough-arguments': 'Not enough arguments for this command',
  unknown: 'Unknown command',
  'bad-argument': 'Bad argument',
});

export class CommandRegistry {
  readonly #commands = new Map<string, { name: string; handler: CommandHandler }>();
  readonly #log: ObkLog | undefined;

  constructor(log?: ObkLog) {
    this.#log = log;
  }

  register(name: string, handler: CommandHandler): void {
    this.#commands.set(name.toLowerCase(), { name, handler });
  }

  has(name: string): boolean {
    return this.#commands.has(name.toLowerCase());
  }

  clear(): void {
    this.#commands.clear();
  }

  execute(line: string, source: CommandSource): CommandResult {
    let i = 0;
    while (i < line.length && isWhiteSpace(line[i])) i++;
    if (i >= line.length) return 'empty';
    let end = i;
    while (end < line.length && !isWhiteSpace(line[end]) && line[end] !== '\0') end++;
    const cmd = line.slice(i, Math.min(end, i + 127));
    let a = end;
    while (a < line.length && isWhiteSpace(line[a])) a++;
    const args = line.slice(a);
    let entry = this.#commands.get(cmd.toLowerCase());
    if (!entry) {
      const digit = cmd.search(/[0-9]/);
      const stem = (digit < 0 ? cmd : cmd.slice(0, digit)).slice(0, 31);
      entry = this.#commands.get(stem.toLowerCase());
    }
    if (!entry) {
      this.#log?.write('Error', 'CMD', `cmd ${cmd} NOT found (args ${args})`);
      return 'unknown';
    }
    return entry.handler({ cmd, args, source });
  }
}
