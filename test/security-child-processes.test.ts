import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import t from 'tap';

/**
 * Audit of every child process the shipped code (and its scripts) starts: through execa with the
 * program and an argument array, never a shell and never a command line assembled from strings
 * (a jig file, port name or image path must not be able to become shell syntax). Scripts may use
 * child_process's argument-array forms (spawn, fork, execFile), never exec/execSync.
 */
const ROOT = new URL('..', import.meta.url).pathname;
const DIRS = ['bin', 'cli', 'rig', 'sim', 'station', 'suites', 'reports', 'firmware', 'scripts'];

function sources(): string[] {
  const out: string[] = [];
  for (const d of DIRS) {
    let entries;
    try {
      entries = readdirSync(join(ROOT, d), { recursive: true, withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      if (e.isFile() && /\.(ts|mjs|js|cjs)$/.test(e.name)) out.push(join(e.parentPath, e.name));
    }
  }
  return out;
}

t.test('child processes: execa with an argument array, no shell, no command strings', async (t) => {
  const files = sources();
  t.ok(files.length > 50, `${files.length} source files audited`);
  const problems: string[] = [];
  let calls = 0;
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    const rel = relative(ROOT, file);
    // child_process only in its argument-array forms (spawn, fork, execFile); exec/execSync run a shell.
    for (const m of text.matchAll(/import\s*\{([^}]*)\}\s*from\s*['"](?:node:)?child_process['"]/g)) {
      const shelled = m[1]!.split(',').map((x) => x.trim().split(/\s+as\s+/)[0]).filter((x) => x === 'exec' || x === 'execSync');
      if (shelled.length) problems.push(`${rel}: imports ${shelled.join(', ')} from child_process (runs a shell)`);
    }
    for (const m of text.matchAll(/\b(spawn|spawnSync|fork|execFile|execFileSync)\(\s*([^,()]+(?:\([^()]*\))?)\s*,\s*(\S)/g)) {
      calls++;
      if (m[3] !== '[' && !/^[A-Za-z_]/.test(m[3]!)) problems.push(`${rel}: ${m[1]}(${m[2]}, …) without an argument array`);
    }
    if (/\bshell\s*:\s*(true|['"`])/.test(text)) problems.push(`${rel}: a shell option`);
    if (/\bexeca(Command|CommandSync|Node)?\s*`|(?:^|[\s=(,;])\$\s*`|\bexecaCommand/m.test(text)) problems.push(`${rel}: a command line as one string (execaCommand / template tag)`);
    for (const m of text.matchAll(/\bexeca(Sync)?\(\s*([^,()]+(?:\([^()]*\))?)\s*,\s*(\S)/g)) {
      calls++;
      const [, , program, second] = m;
      if (/^`.*\s.*`$|^['"].*\s.*['"]$/.test(program!.trim())) problems.push(`${rel}: execa program ${program} holds spaces (a command line, not a program)`);
      if (second !== '[' && !/^[A-Za-z_]/.test(second!)) problems.push(`${rel}: execa(${program}, …) without an argument array`);
    }
  }
  t.ok(calls >= 3, `${calls} child-process calls checked`);
  t.same(problems, [], 'every child process gets a program and an argument array, no shell');
});
