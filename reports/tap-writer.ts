/**
 * TAP report files for station runs, produced by tap's own `Test` object (toolchain.md §8.4), so the
 * test-point lines, YAML diagnostics and indented subtests are tap's, not ours.
 *
 * - Diagnostics are ours only: every point is emitted with `at: null, stack: ''` so tap adds no
 *   source excerpts or stack traces (those are about this file, not the device under test).
 * - `version: 13` makes the file readable by Perl `prove` (toolchain.md §8.5): the header says 13, and the
 *   YAML has only one-line scalars and no blank lines, because Perl's YAMLish reader knows neither `|-`
 *   block scalars nor folded plain/quoted scalars (the `yaml` library folds at 80 columns). So multi-line or
 *   long diag strings become lists of short lines before tap sees them, and a line filter drops any blank
 *   line that still appears inside a YAML block.
 * - tap writes comments made before the first point ahead of its version line; the line filter moves the
 *   version line back to the top, and drops the ` # time=…ms` tap appends to a subtest's closing point
 *   (host timing, which would make two renderings of the same results differ; step timing is in the YAML).
 * - A step that throws becomes a `not ok` with the error in its YAML; the report keeps going.
 *   `withTapReport` closes the file even if the whole body throws.
 */
import { createWriteStream, mkdirSync, openSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import { Transform, Writable, type TransformCallback } from 'node:stream';
import tapRoot, { Test, type TestOpts } from 'tap';
import { WRITE_NOFOLLOW } from '../rig/core/confined-path.ts';
import { ConfigError, PlugrigError, type ErrorContext } from '../rig/core/errors.ts';
import type { StoreError } from '../rig/store/store-error.ts';
import { hex } from '../rig/core/hex.ts';
import type { MeasurementResult } from '../suites/model/measurement.ts';
import { isAccepted } from '../suites/model/verdict.ts';
import { writeRefused } from './write-refused.ts';

// Importing 'tap' creates its root test, which kills the process after 30 s (TAP_TIMEOUT) and
// prints "not ok - timeout" on stdout. A station run or `plugrig sim` lives far longer; only under
// the tap runner (env TAP set) is that per-file timeout wanted.
if (!process.env.TAP) tapRoot.setTimeout(0);

export type TapVersion = 13 | 14;
export type Diag = Record<string, unknown>;

export interface TapReportOptions {
  title: string;
  /** Written as `# key: value` comments after the title (station, slot, unit, firmware sha, …). */
  meta?: Record<string, unknown>;
  /** 14 (default) or 13 for Perl prove. */
  version?: TapVersion;
  /** Where in the run the report belongs (run id, slot): the context of a refused write. */
  where?: ErrorContext;
}

/** Counts of one report level; `pass` excludes skips. tap-parser's `pass` equals `pass + skip`. */
export interface TapCounts {
  total: number;
  pass: number;
  fail: number;
  skip: number;
}

export interface TapSummary extends TapCounts {
  /** The same counts over every leaf point of every subtest (subtest summary points excluded). */
  leaves: TapCounts;
}

export interface StepResult {
  ok: boolean;
  diag?: Diag;
}

export type StepOutcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** Option names tap reads from an assertion's extra object; user diag keys with these names get a `_` suffix. */
const TAP_OPTION_KEYS = new Set(['skip', 'todo', 'diagnostic', 'at', 'stack', 'source', 'name', 'timeout', 'bail', 'tapCaught']);
const NO_SOURCE = { at: null, stack: '' };
/**
 * tap's filter plugin reads TAP_GREP / TAP_ONLY from the environment for every Test without its own
 * grep: under a test runner started with --grep (or a child process inheriting that env) a report's
 * subtests would be skipped. A report renders everything, always.
 */
const NO_FILTER = { grep: [] as string[], grepInvert: false, runOnly: false };

function emptyCounts(): TapCounts {
  return { total: 0, pass: 0, fail: 0, skip: 0 };
}

/** YAML columns available to a one-line scalar at `depth` (conservative: yaml folds at 80, quotes may be added). */
function columnsAt(depth: number): number {
  return Math.max(20, 72 - 2 * depth);
}

/** Split text into non-blank lines of at most `width` characters, breaking at spaces where possible. */
function shortLines(text: string, width: number): string[] {
  const out: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    let rest = line.trim();
    while (rest.length > width) {
      const cut = rest.lastIndexOf(' ', width);
      const at = cut > 0 ? cut : width;
      out.push(rest.slice(0, at).trimEnd());
      rest = rest.slice(at).trimStart();
    }
    if (rest !== '') out.push(rest);
  }
  return out;
}

/**
 * Make a value YAML-friendly: bytes as hex, errors as their JSON. For v13 (`compact`) a string that would
 * not stay on one line beside its key (`keyLength`) becomes a list of short lines.
 */
function plain(value: unknown, compact: boolean, depth = 0, keyLength = 0): unknown {
  if (depth > 8) return '[nested too deep]';
  if (typeof value === 'string' && compact) {
    const oneLine = !value.includes('\n') && keyLength + 2 + value.length <= columnsAt(depth);
    return oneLine ? value : shortLines(value, columnsAt(depth + 1));
  }
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Uint8Array) return hex(value);
  if (value instanceof PlugrigError) return plain(value.toJSON(), compact, depth + 1);
  if (value instanceof Error) return plain({ name: value.name, message: value.message }, compact, depth + 1);
  if (Array.isArray(value)) {
    // A long string inside a list becomes several items of that list: Perl YAMLish rejects `- - x`.
    return value.flatMap((v) => {
      const out = plain(v, compact, depth + 1);
      return typeof v === 'string' && Array.isArray(out) ? out : [out];
    });
  }
  if (value && typeof value === 'object') {
    const out: Diag = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = plain(v, compact, depth + 1, k.length);
    return out;
  }
  return value;
}

function errorDiag(error: unknown): Diag {
  return { error };
}

/**
 * Line filter between tap and the file: puts the version line first (holding back earlier comments) and,
 * for v13, writes `TAP version 13` and drops blank/whitespace-only lines inside YAML blocks (between an
 * indented `---` and its `...`), which Perl's YAMLish reader rejects.
 */
class TapLineFilter extends Transform {
  private pending = '';
  private beforeHeader: string[] = [];
  private headerDone = false;
  private inYaml = false;

  constructor(private readonly version: TapVersion) {
    super();
  }

  override _transform(chunk: Buffer | string, _enc: BufferEncoding, done: TransformCallback): void {
    const text = this.pending + chunk.toString();
    const lines = text.split('\n');
    this.pending = lines.pop() ?? '';
    this.push(this.filterLines(lines));
    done();
  }

  override _flush(done: TransformCallback): void {
    let out = this.pending ? this.filterLines([this.pending]).replace(/\n$/, '') : '';
    if (!this.headerDone) out = this.beforeHeader.join('') + out;
    this.push(out);
    done();
  }

  private filterLines(lines: string[]): string {
    let out = '';
    for (const line of lines) {
      if (!this.headerDone) {
        if (/^TAP version \d+$/.test(line)) {
          this.headerDone = true;
          out += `TAP version ${this.version}\n` + this.beforeHeader.join('');
          this.beforeHeader = [];
        } else {
          this.beforeHeader.push(line + '\n');
        }
        continue;
      }
      if (/^\s+---$/.test(line)) this.inYaml = true;
      else if (/^\s+\.\.\.$/.test(line)) this.inYaml = false;
      else if (this.inYaml && this.version === 13 && line.trim() === '') continue;
      // tap escapes '#' in names, so an unescaped ' # time=' on a point line is tap's own.
      out += (this.inYaml ? line : line.replace(/^(\s*(?:not )?ok \d+.*) # time=[0-9.]+ms$/, '$1')) + '\n';
    }
    return out;
  }
}

export class TapReport {
  private readonly counts = emptyCounts();

  /** Use `openTapReport`; subtests get their own instance over tap's child Test. */
  constructor(
    private readonly t: Test,
    private readonly version: TapVersion,
    private readonly leaves: TapCounts,
  ) {}

  private diag(extra: Diag | undefined): Diag {
    const out: Diag = {};
    const cleaned = plain(extra ?? {}, this.version === 13) as Diag;
    for (const [k, v] of Object.entries(cleaned)) out[TAP_OPTION_KEYS.has(k) ? `${k}_` : k] = v;
    return out;
  }

  private count(kind: 'pass' | 'fail' | 'skip', leaf: boolean): void {
    for (const c of leaf ? [this.counts, this.leaves] : [this.counts]) {
      c.total++;
      c[kind]++;
    }
  }

  /** A passing point; `diag` is shown as YAML. */
  ok(name: string, diag?: Diag): true {
    this.count('pass', true);
    this.t.pass(name, { ...this.diag(diag), ...NO_SOURCE, diagnostic: diag !== undefined });
    return true;
  }

  /** A failing point with its diagnostics (expected, bytes seen, …). */
  fail(name: string, diag?: Diag): false {
    this.count('fail', true);
    this.t.fail(name, { ...this.diag(diag), ...NO_SOURCE, diagnostic: true });
    return false;
  }

  /** A skipped point (`ok N - name # SKIP reason`). */
  skip(name: string, reason: string): void {
    this.count('skip', true);
    this.t.pass(name, { ...NO_SOURCE, skip: reason });
  }

  comment(text: string): void {
    this.t.comment(text);
  }

  /**
   * Record a step. With a function: passes with its value, or fails with the thrown error in the YAML
   * (never rethrows; the outcome says what happened). With a result: records it as given.
   */
  step<T>(name: string, fn: () => T | Promise<T>): Promise<StepOutcome<T>>;
  step(name: string, result: boolean | StepResult): boolean;
  step<T>(name: string, action: (() => T | Promise<T>) | boolean | StepResult): Promise<StepOutcome<T>> | boolean {
    if (typeof action === 'function') return this.runStep(name, action);
    const result = typeof action === 'boolean' ? { ok: action } : action;
    return result.ok ? this.ok(name, result.diag) : this.fail(name, result.diag);
  }

  private async runStep<T>(name: string, fn: () => T | Promise<T>): Promise<StepOutcome<T>> {
    try {
      const value = await fn();
      this.ok(name);
      return { ok: true, value };
    } catch (error) {
      this.fail(name, errorDiag(error));
      return { ok: false, error };
    }
  }

  /**
   * A measurement as the model judged it: ok unless its decision rejects the unit. The YAML carries
   * value, U (k), the limits it was judged against, the verdict and why; nothing is judged here.
   */
  measurement(m: MeasurementResult): boolean {
    const diag: Diag = {
      value: m.taken ? m.value : null,
      unit: m.unit,
      ...(m.taken ? { U: m.U, k: m.k } : {}),
      ...(m.limits ? { limits: m.limits } : {}),
      verdict: m.verdict,
      decision: m.decision,
      reason: m.reason,
      ...(m.attempt > 1 ? { attempt: m.attempt } : {}),
      ...(m.at ? { takenAt: m.at } : {}),
    };
    return isAccepted(m.decision) ? this.ok(m.name, diag) : this.fail(m.name, diag);
  }

  /** A nested group; a throw inside becomes a failing point of the group. Resolves to whether it passed. */
  async subtest(name: string, fn: (report: TapReport) => void | Promise<void>): Promise<boolean> {
    let child: TapReport | undefined;
    await this.t.test(name, { ...NO_SOURCE, ...NO_FILTER }, async (st: Test) => {
      child = new TapReport(st, this.version, this.leaves);
      try {
        await fn(child);
      } catch (error) {
        child.fail(`${name}: uncaught error`, errorDiag(error));
      }
      if (child.counts.total === 0) child.comment('no checks recorded');
    });
    const passed = child !== undefined && child.counts.fail === 0;
    this.count(passed ? 'pass' : 'fail', false);
    return passed;
  }

  /** Counts so far at this level and over all leaves. */
  summary(): TapSummary {
    return { ...this.counts, leaves: { ...this.leaves } };
  }
}

/** The top-level report, bound to its file. */
export class TapReportFile extends TapReport {
  private closing: Promise<TapSummary> | undefined;
  #failure: StoreError | undefined;
  #closed = false;

  constructor(
    private readonly root: Test,
    private readonly file: WriteStream,
    version: TapVersion,
    readonly path: string,
    where: ErrorContext = {},
  ) {
    super(root, version, emptyCounts());
    // A write the file system refuses (disk full, I/O error) arrives here, later than the point that
    // caused it; kept typed for the next step and close(), never an unhandled 'error' event.
    file.on('error', (e) => {
      this.#failure ??= writeRefused('TAP report', path, e, { ...where, step: 'report' });
    });
    file.once('close', () => {
      this.#closed = true;
    });
  }

  /** The first write the file system refused (the report on disk stops before it). */
  get failure(): StoreError | undefined {
    return this.#failure;
  }

  /**
   * End the TAP stream (plan line) and wait until the file is fully written and closed. Idempotent.
   * Rejects with the typed refusal when a write failed (the file then lacks its end).
   */
  close(): Promise<TapSummary> {
    this.closing ??= new Promise<TapSummary>((resolve, reject) => {
      const settle = (): void => (this.#failure ? reject(this.#failure) : resolve(this.summary()));
      // A refused write destroyed the stream already: its 'close' has been (or is being) emitted.
      if (this.#closed) return settle();
      this.file.once('close', settle);
      this.root.end();
    });
    return this.closing;
  }
}

function writeHeader(report: TapReport, options: TapReportOptions): void {
  report.comment(options.title);
  for (const [key, value] of Object.entries(options.meta ?? {})) {
    report.comment(`${key}: ${typeof value === 'string' ? value : JSON.stringify(plain(value, true))}`);
  }
}

export function openTapReport(path: string, options: TapReportOptions): TapReportFile {
  const version = options.version ?? 14;
  const where = { ...options.where, step: 'report' };
  // Never through a symbolic link planted under the report's name (a ConfigError: the path, not the disk).
  let fd: number;
  try {
    mkdirSync(dirname(path), { recursive: true });
    fd = openSync(path, WRITE_NOFOLLOW);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOOP') throw new ConfigError(`cannot write TAP report ${path}: it is a symbolic link; refusing to write through it`, { ...where, path });
    throw writeRefused('TAP report', path, e, where);
  }
  const file = createWriteStream(path, { fd });
  const rootOptions: TestOpts = { name: options.title, ...NO_FILTER };
  const root: Test = new Test(rootOptions);
  root.pipe(new TapLineFilter(version)).pipe(file);
  const report = new TapReportFile(root, file, version, path, where);
  writeHeader(report, options);
  return report;
}

/** Render a whole report into a string (for reports rendered from stored results, written atomically by the caller). */
export async function renderTapReport(options: TapReportOptions, body: (report: TapReport) => Promise<void>): Promise<string> {
  const version = options.version ?? 14;
  const rootOptions: TestOpts = { name: options.title, ...NO_FILTER };
  const root: Test = new Test(rootOptions);
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer | string, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  const finished = new Promise<void>((resolve, reject) => {
    sink.once('finish', resolve);
    sink.once('error', reject);
  });
  root.pipe(new TapLineFilter(version)).pipe(sink);
  const report = new TapReport(root, version, emptyCounts());
  writeHeader(report, options);
  try {
    await body(report);
  } finally {
    root.end();
  }
  await finished;
  return chunks.join('');
}

/** Open a report, run `body`, and always close the file; a throw is recorded as a failing point, then rethrown. */
export async function withTapReport<T>(
  path: string,
  options: TapReportOptions,
  body: (report: TapReportFile) => Promise<T>,
): Promise<{ value: T; summary: TapSummary }> {
  const report = openTapReport(path, options);
  try {
    const value = await body(report);
    return { value, summary: await report.close() };
  } catch (error) {
    report.fail('report aborted by an uncaught error', errorDiag(error));
    await report.close();
    throw error;
  }
}
