#!/usr/bin/env node
// The CLI entry. `npm ci` / `npm run build` compile the TypeScript once into dist/ (tsconfig.build.json),
// which starts in a fraction of the time tsx needs to transpile every run. A source checkout without a
// build, or one whose sources changed after the last build, runs the sources through tsx instead, so the
// CLI never runs code older than the checkout.
import module from 'node:module';
import { readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

module.enableCompileCache?.(); // Node >= 22.1: caches V8 code for the next start

const root = fileURLToPath(new URL('..', import.meta.url));
const compiled = new URL('../dist/cli/main.js', import.meta.url);
// Must match tsconfig.build.json "include".
const SOURCE_DIRS = ['cli', 'rig', 'sim', 'station', 'firmware', 'suites', 'reports'];

/** Newest mtime (ms) of the .ts sources, or Infinity if a directory cannot be read. */
function newestSource() {
  let newest = 0;
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

const built = builtAt();
let cli;
if (built >= 0 && built >= newestSource() && !process.env.PLUGRIG_FROM_SOURCE) {
  cli = await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import('../cli/main.ts');
}
process.exitCode = await cli.runCli(process.argv.slice(2));
