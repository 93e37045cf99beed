#!/usr/bin/env node
// The CLI entry. `npm ci` / `npm run build` compile the TypeScript once into dist/ (tsconfig.build.json),
// which starts in a fraction of the time tsx needs to transpile every run. A source checkout without a
// build, or one whose sources changed after the last build, runs the sources through tsx instead, so the
// CLI never runs code older than the checkout.
import module from 'node:module';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

module.enableCompileCache?.(); // Node >= 22.1: caches V8 code for the next start

const root = fileURLToPath(new URL('..', import.meta.url));
const compiled = new URL('../dist/cli/main.js', import.meta.url);
// Must match tsconfig.build.json "include".
const SOURCE_DIRS = ['cli', 'rig', 'sim', 'station', 'firmware', 'suites', 'reports'];
const CONFIGS = ['tsconfig.json', 'tsconfig.build.json'];

/**
 * The build stamp (scripts/build-stamp.mjs, written by `npm run build` after tsc) lists every input of
 * the build with the mtime and size it had when the build read it: 'current' when each still has
 * exactly those (a few hundred stats of known paths, no directory walk), 'stale' when one differs,
 * 'none' when there is no stamp, dist/ was compiled again after it (a bare tsc) or an input is gone.
 */
function stampState(built) {
  const path = `${root}dist/build-stamp.json`;
  const at = statSync(path, { throwIfNoEntry: false })?.mtimeMs;
  if (at === undefined || at < built) return 'none';
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return 'none';
  }
  if (stamp?.version !== 1 || !Array.isArray(stamp.files)) return 'none';
  for (const [file, mtimeMs, size] of stamp.files) {
    const s = statSync(root + file, { throwIfNoEntry: false });
    // A deleted input alone changes nothing dist/ runs (whatever imported it changed too): the
    // newest-source rule decides, as scripts/dist-current.mjs (npm test, prepare) does.
    if (!s) return 'none';
    if (s.mtimeMs !== mtimeMs || s.size !== size) return 'stale';
  }
  return 'current';
}

/** Newest mtime (ms) of the build's inputs (the .ts sources and the tsconfigs). */
function newestSource() {
  let newest = 0;
  for (const file of CONFIGS) newest = Math.max(newest, statSync(root + file, { throwIfNoEntry: false })?.mtimeMs ?? 0);
  for (const dir of SOURCE_DIRS) {
    let entries;
    try {
      entries = readdirSync(root + dir, { recursive: true, withFileTypes: true });
    } catch {
      continue; // an installed package may ship without some directory
    }
    for (const e of entries) {
      if (!e.isFile() || !e.name.endsWith('.ts')) continue;
      newest = Math.max(newest, statSync(`${e.parentPath ?? e.path}/${e.name}`).mtimeMs);
    }
  }
  return newest;
}

function builtAt() {
  try {
    return statSync(compiled).mtimeMs;
  } catch {
    return -1;
  }
}

/** dist/ holds the current code: by its stamp, or without one (a bare `tsc -p tsconfig.build.json`) when newer than every input. */
function distCurrent() {
  const built = builtAt();
  if (built < 0) return false;
  const stamp = stampState(built);
  return stamp === 'current' || (stamp === 'none' && built >= newestSource());
}

let cli;
if (!process.env.PLUGRIG_FROM_SOURCE && distCurrent()) {
  cli = await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import('../cli/main.ts');
}
process.exitCode = await cli.runCli(process.argv.slice(2));
