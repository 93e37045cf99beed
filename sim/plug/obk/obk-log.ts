/**
 * The firmware's log (what OpenBeken prints on UART2 and streams on TCP :9000): lines
 * `<Level>:<FEATURE>:<text>`, e.g. `Info:MAIN:Boot complete time reached (5 seconds)` or
 * `Error:EnergyMeter:Calibration incorrect - connect load first.` (openbeken-http.md req 39).
 * Lines above the log level (default 3 = Info) are dropped, as `loglevel` does. The last `capacity`
 * lines are kept for tests and for a virtual log port; listeners see every line as it is written.
 * Where OpenBeken would print a secret (`Using Pass [...]`, a `Password1 ...` command echoed in a
 * result line), the registered secrets are replaced by `****`: secrets never reach a log here.
 */
export type ObkLogLevel = 'Error' | 'Warn' | 'Info' | 'Debug' | 'ExtraDebug';

const LEVEL_NUMBER: Record<ObkLogLevel, number> = { Error: 1, Warn: 2, Info: 3, Debug: 4, ExtraDebug: 5 };

export class ObkLog {
  level = 3;
  readonly #capacity: number;
  readonly #lines: string[] = [];
  readonly #listeners = new Set<(line: string) => void>();
  #secrets: () => readonly string[] = () => [];

  constructor(capacity = 2000) {
    this.#capacity = capacity;
  }

  write(level: ObkLogLevel, feature: string, message: string): void {
    if (LEVEL_NUMBER[level] > this.level) return;
    let line = `${level}:${feature}:${message}`;
    for (const secret of this.#secrets()) if (secret !== '') line = line.split(secret).join('****');
    this.#lines.push(line);
    if (this.#lines.length > this.#capacity) this.#lines.splice(0, this.#lines.length - this.#capacity);
    for (const listener of this.#listeners) listener(line);
  }

  /** The current secrets (read at every write, so a password set a moment ago is covered). */
  redact(secrets: () => readonly string[]): void {
    this.#secrets = secrets;
  }

  lines(): readonly string[] {
    return this.#lines;
  }

  onLine(listener: (line: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
