import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { distCurrent } from '../scripts/dist-current.mjs';

// `npm test` skips the build and `prepare` (run twice by npm ci: for the package and for its own
// file:. link) skips the second build when dist/ is current; a stale dist/ must never be kept.
const ROOT = new URL('..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'plugrig-dist-current-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const at = (rel: string, secondsAgo: number, text = ''): void => {
  const p = join(dir, rel);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, text);
  const when = Date.now() / 1000 - secondsAgo;
  utimesSync(p, when, when);
};
/** A tree whose build is 100 s old and every input 200 s old. */
const tree = (): void => {
  rmSync(dir, { recursive: true, force: true });
  at('tsconfig.json', 200, '{}');
  at('tsconfig.build.json', 200, JSON.stringify({ include: ['cli', 'rig'] }));
  at('cli/main.ts', 200);
  at('rig/core/deep/x.ts', 200);
  at('rig/notes.md', 10); // not a source
  at('dist/cli/main.js', 100);
};

t.test('current only when the build is newer than every source and tsconfig', async (t) => {
  tree();
  t.equal(distCurrent(dir), true, 'every input older than the build');
  at('rig/core/deep/x.ts', 50);
  t.equal(distCurrent(dir), false, 'a nested source newer than the build');
  tree();
  at('cli/main.ts', 50);
  t.equal(distCurrent(dir), false, 'a top-level source newer');
  tree();
  at('tsconfig.build.json', 50, JSON.stringify({ include: ['cli', 'rig'] }));
  t.equal(distCurrent(dir), false, 'tsconfig.build.json newer (other options, same sources)');
  tree();
  at('tsconfig.json', 50, '{}');
  t.equal(distCurrent(dir), false, 'tsconfig.json newer');
  tree();
  rmSync(join(dir, 'dist'), { recursive: true });
  t.equal(distCurrent(dir), false, 'no build at all');
});

t.test('prepare builds through `npm run build` unless dist/ is current, and passes its exit code on', async (t) => {
  // A stand-in npm on PATH records what prepare asked of it.
  const bin = join(dir, '..', `${dir.split('/').pop()}-bin`);
  mkdirSync(bin, { recursive: true });
  t.teardown(() => rmSync(bin, { recursive: true, force: true }));
  const calls = join(bin, 'calls');
  writeFileSync(join(bin, 'npm'), `#!/bin/sh\necho "$@" >> ${calls}\nexit 3\n`);
  chmodSync(join(bin, 'npm'), 0o755);
  const prepare = (): { status: number | null; out: string; calls: string } => {
    rmSync(calls, { force: true });
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts/prepare.mjs')], { cwd: dir, env: { ...process.env, PATH: `${bin}:${process.env.PATH}` }, encoding: 'utf8' });
    let c = '';
    try {
      c = readFileSync(calls, 'utf8');
    } catch {
      // npm never called
    }
    return { status: r.status, out: r.stdout + r.stderr, calls: c };
  };
  tree();
  const current = prepare();
  t.equal(current.status, 0);
  t.equal(current.calls, '', 'a current build is not rebuilt');
  t.match(current.out, /dist\/ is current/);
  at('cli/main.ts', 50);
  const stale = prepare();
  t.equal(stale.calls, 'run build\n', 'a stale build is rebuilt with the package\'s build script');
  t.equal(stale.status, 3, "the build's exit code is prepare's");
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  t.equal(pkg.scripts.prepare, 'node scripts/prepare.mjs', 'package.json prepare runs it');
});
