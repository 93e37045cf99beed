import t from 'tap';
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { makeSyntheticImage } from '../firmware/synthetic.ts';
import type { BekenChip } from '../firmware/flash-layout.ts';
import { FAILURE_CLASSES } from '../cli/failure.ts';
import { EXIT_UNIT_FAILED, EXIT_WORSE } from '../cli/commands/nightly.ts';
import { runCli } from '../cli/main.ts';
import { onVirtualJigStarted, type InProcessJig } from '../sim/jig/in-process-jig.ts';

/**
 * The bad-input corpus (test/fixtures/bad/cases.json): every case is data — argv, the files it needs,
 * the failure class it must end in and a fragment of the message that names the problem. Each case
 * must give one clear message on stderr (no stack trace, no log line), the class's exit code, a
 * well-formed JSON failure on stdout with --json, nothing left energised on any virtual jig it
 * started, and no file created or changed (no partial record, backup or run directory).
 * Cases run in-process through runCli (cli/main.ts); `"spawn": true` runs bin/plugrig.mjs where the
 * process boundary is the point.
 */
const HERE = dirname(new URL(import.meta.url).pathname);
const BAD = join(HERE, 'fixtures', 'bad');
const ROOT = join(HERE, '..');
const BIN = join(ROOT, 'bin', 'plugrig.mjs');

type FileRecipe =
  | { text: string }
  | { hex: string }
  | { json: unknown }
  | { copy: string }
  | { from: string; set?: Record<string, unknown>; delete?: string[] }
  | { image: { chip?: BekenChip; kind?: 'qio' | 'ua'; keep?: number; append?: number; name?: string } }
  | { random: number }
  | { dir: true }
  | { symlink: string }
  | { mode: number; text: string };

interface BadCase {
  name: string;
  argv: string[];
  files?: Record<string, FileRecipe>;
  /** Failure class name (cli/failure.ts FAILURE_CLASSES). */
  exit: string;
  /** Regular expression (case-insensitive) the message must match. */
  message: string;
  /** Run the CLI in a child process (default: in-process). */
  spawn?: boolean;
  /** Also run with --json appended and parse stdout (default true; false where the command has no --json). */
  json?: boolean;
  /** Environment for the case (spawned cases only; in-process cases must not need one). */
  env?: Record<string, string>;
  /**
   * The command reports a failed check as its result (jig check): with --json, stdout is that result
   * (`passed: false`, the problem in it), not an error object; stderr still has the one message.
   */
  result?: boolean;
  /** With `result`: what the --json result must contain (default `message`). */
  resultMessage?: string;
  /** Output files that must not exist afterwards even though the run may create them in place (none by default). */
  why?: string;
}

const cases = JSON.parse(readFileSync(join(BAD, 'cases.json'), 'utf8')) as BadCase[];
const classes = new Map<string, number>(FAILURE_CLASSES.map((c) => [c.name, c.exitCode]));
const root = mkdtempSync(join(tmpdir(), 'plugrig-corpus-'));

/** Set `value` at a dotted path ("slots.0.pins.mains") in a JSON value; `undefined` deletes. */
function setPath(obj: unknown, path: string, value: unknown): void {
  const keys = path.split('.');
  let at = obj as Record<string, unknown>;
  for (const k of keys.slice(0, -1)) at = at[k] as Record<string, unknown>;
  const last = keys.at(-1)!;
  if (value === undefined) {
    if (Array.isArray(at)) at.splice(Number(last), 1);
    else delete at[last];
  } else at[last] = value;
}

/** Deterministic bytes (xorshift), so a "random" image is the same on every run. */
function randomBytes(n: number, seed = 0x2545f491): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function materialise(dir: string, name: string, recipe: FileRecipe): void {
  const path = join(dir, name);
  mkdirSync(dirname(path), { recursive: true });
  const fill = (s: string): string => s.replaceAll('{dir}', dir);
  if ('text' in recipe && !('mode' in recipe)) writeFileSync(path, fill(recipe.text));
  else if ('hex' in recipe) writeFileSync(path, Buffer.from(recipe.hex, 'hex'));
  else if ('json' in recipe) writeFileSync(path, fill(JSON.stringify(recipe.json, null, 2)));
  else if ('copy' in recipe) writeFileSync(path, fill(readFileSync(join(BAD, recipe.copy), 'utf8')));
  else if ('from' in recipe) {
    const data = JSON.parse(readFileSync(join(ROOT, recipe.from), 'utf8')) as unknown;
    for (const p of recipe.delete ?? []) setPath(data, p, undefined);
    for (const [p, v] of Object.entries(recipe.set ?? {})) setPath(data, p, v);
    writeFileSync(path, fill(JSON.stringify(data, null, 2)));
  } else if ('image' in recipe) {
    const im = makeSyntheticImage({ chip: recipe.image.chip ?? 'BK7231N', kind: recipe.image.kind ?? 'qio', version: '1.18.42', seed: 1 });
    let bytes = im.bytes.subarray(0, recipe.image.keep ?? im.bytes.length);
    if (recipe.image.append) bytes = Buffer.concat([bytes, randomBytes(recipe.image.append)]);
    writeFileSync(path, bytes);
  } else if ('random' in recipe) writeFileSync(path, randomBytes(recipe.random));
  else if ('dir' in recipe) mkdirSync(path, { recursive: true });
  else if ('symlink' in recipe) symlinkSync(fill(recipe.symlink), path);
  else if ('mode' in recipe) {
    writeFileSync(path, recipe.text);
    chmodSync(path, recipe.mode);
  }
}

/** Every path under `dir` with a fingerprint of its content (symlinks by target), to see what a case changed. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const st = lstatSync(p);
      if (st.isSymbolicLink()) out.set(p, 'link');
      else if (st.isDirectory()) {
        out.set(p, 'dir');
        walk(p);
      } else out.set(p, `${st.size}:${createHash('sha256').update(safeRead(p)).digest('hex')}`);
    }
  };
  walk(dir);
  return out;
}

function safeRead(p: string): Buffer {
  try {
    return readFileSync(p);
  } catch {
    return Buffer.alloc(0);
  }
}

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Collects what the CLI wrote. */
function buffer(): { write(s: string): boolean; text(): string } {
  const chunks: string[] = [];
  return { write: (s: string) => chunks.push(String(s)) > 0, text: () => chunks.join('') };
}

async function runCase(c: BadCase, argv: string[], dir: string): Promise<Outcome> {
  if (c.spawn) {
    const r = await execa(process.execPath, [BIN, ...argv], {
      reject: false,
      cwd: dir,
      timeout: 60_000,
      env: { PLUGRIG_LOG: 'info', TAP: '', NODE_OPTIONS: '', ...c.env },
    });
    return { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
  }
  const stdout = buffer();
  const stderr = buffer();
  const code = await runCli(argv, { stdout, stderr });
  return { code, stdout: stdout.text(), stderr: stderr.text() };
}

// Log lines at the level a user gets: if they reached stderr they would show.
process.env.PLUGRIG_LOG = 'info';

t.test('the corpus is big enough and names only real classes', async (t) => {
  t.ok(cases.length >= 60, `${cases.length} cases`);
  const names = new Set<string>();
  for (const c of cases) {
    t.ok(classes.has(c.exit), `${c.name}: class ${c.exit} exists`);
    t.notOk(names.has(c.name), `${c.name}: unique`);
    names.add(c.name);
  }
  const used = new Set(cases.map((c) => c.exit));
  for (const cls of ['config', 'image', 'transport', 'link']) t.ok(used.has(cls), `a case ends in class ${cls}`);
});

t.test("the README's exit-code table is FAILURE_CLASSES", async (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const rows = [...readme.matchAll(/^\| (\d+) \| `(\w+)` \|/gm)].map((m) => [Number(m[1]), m[2]]);
  t.same(rows, FAILURE_CLASSES.map((c) => [c.exitCode, c.name]), 'one README row per class, same code, same order');
  const codes = FAILURE_CLASSES.map((c) => c.exitCode);
  t.equal(new Set(codes).size, codes.length, 'one exit code per class');
  // Outcomes that are not errors have their own class: none of them may exit as a bug in plugrig.
  const internal = FAILURE_CLASSES.find((c) => c.name === 'internal')!.exitCode;
  t.equal(EXIT_WORSE, FAILURE_CLASSES.find((c) => c.name === 'worse')?.exitCode, 'nightly: worse than last night exits with the `worse` class');
  t.not(EXIT_WORSE, internal, 'nightly: worse is not internal');
  t.equal(EXIT_UNIT_FAILED, FAILURE_CLASSES.find((c) => c.name === 'unit')?.exitCode, 'nightly: a failed unit exits with the `unit` class');
});

for (const c of cases) {
  t.test(c.name, async (t) => {
    const dir = join(root, c.name.replace(/[^\w.-]+/g, '_'));
    mkdirSync(dir, { recursive: true });
    for (const [name, recipe] of Object.entries(c.files ?? {})) materialise(dir, name, recipe);
    const argv = c.argv.map((a) => a.replaceAll('{dir}', dir).replaceAll('{root}', ROOT));
    const before = snapshot(dir);
    const jigs: InProcessJig[] = [];
    const stop = onVirtualJigStarted((j) => jigs.push(j));
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const variants: Array<{ json: boolean; argv: string[] }> = [{ json: false, argv }];
      if (c.json !== false) variants.push({ json: true, argv: [...argv, '--json'] });
      for (const v of variants) {
        const r = await runCase(c, v.argv, dir);
        const tag = v.json ? ' (--json)' : '';
        const expected = classes.get(c.exit)!;
        t.equal(r.code, expected, `exit ${expected} (${c.exit})${tag}; stderr: ${r.stderr.slice(0, 400)}`);
        t.match(r.stderr, new RegExp(c.message, 'i'), `message names the problem${tag}`);
        t.match(r.stderr, /^plugrig: /, `stderr starts with the one message${tag}`);
        t.notMatch(r.stderr, /^\s+at .+:\d+:\d+\)?$/m, `no stack trace${tag}`);
        t.notMatch(r.stderr, /^\{"level"/m, `no log line on stderr${tag}`);
        t.notMatch(r.stderr, /internal error/, `not an internal error${tag}`);
        if (v.json) {
          let parsed: { error?: { exitCode?: number; exitClass?: string; message?: string } } | undefined;
          try {
            parsed = JSON.parse(r.stdout) as typeof parsed;
          } catch (e) {
            t.fail(`--json stdout is one well-formed JSON value: ${(e as Error).message}: ${r.stdout.slice(0, 200)}`);
          }
          if (parsed && c.result) {
            t.equal((parsed as { passed?: boolean }).passed, false, '--json result: passed false');
            t.match(r.stdout, new RegExp(c.resultMessage ?? c.message, 'i'), '--json result names the problem');
          } else if (parsed) {
            t.equal(parsed.error?.exitCode, expected, '--json error.exitCode');
            t.equal(parsed.error?.exitClass, c.exit, '--json error.exitClass');
            t.match(parsed.error?.message ?? '', new RegExp(c.message, 'i'), '--json error.message names the problem');
          }
        }
      }
    } finally {
      process.chdir(cwd);
      stop();
    }
    for (const j of jigs) {
      for (const [id, slot] of j.vj.slots) t.notOk(slot.physical().mainsEnergised, `virtual slot ${id} not left energised`);
    }
    const after = snapshot(dir);
    const changed = [...after].filter(([p, f]) => before.get(p) !== f).map(([p]) => p.slice(dir.length + 1));
    const removed = [...before.keys()].filter((p) => !after.has(p)).map((p) => p.slice(dir.length + 1));
    t.same(changed, [], 'no file created or changed (no partial record, backup or directory)');
    t.same(removed, [], 'no file removed');
  });
}
