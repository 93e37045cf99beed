#!/usr/bin/env node
// `npm run build` = `build-stamp.mjs before && tsc -p tsconfig.build.json && build-stamp.mjs after`.
// `before` records the mtime and size of every input of the build (the .ts files of the directories
// tsconfig.build.json includes, and the two tsconfigs) before tsc reads them; `after` (only once tsc
// succeeded) puts that record into dist/build-stamp.json. bin/plugrig.mjs runs dist/ when every recorded
// file still has exactly that mtime and size: a file edited since (even during the build, or given an
// older mtime) runs the sources instead. It stats the recorded files only: no directory walk at start.
import { mkdirSync, readFileSync, readdirSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const STAMP = 'dist/build-stamp.json';
const PENDING = 'dist/build-stamp.pending.json';
const CONFIGS = ['tsconfig.json', 'tsconfig.build.json'];

/** The build's inputs under `root`, as paths relative to it (forward slashes). */
function buildInputs(root) {
  const { include } = JSON.parse(readFileSync(join(root, 'tsconfig.build.json'), 'utf8'));
  const files = [...CONFIGS];
  for (const dir of include) {
    for (const e of readdirSync(join(root, dir), { recursive: true, withFileTypes: true })) {
      if (e.isFile() && e.name.endsWith('.ts')) files.push(relative(root, join(e.parentPath ?? e.path, e.name)).split('\\').join('/'));
    }
  }
  return files.sort();
}

const [step, rootArg] = process.argv.slice(2);
const root = rootArg ?? '.';
if (step === 'before') {
  const files = buildInputs(root).map((f) => {
    const s = statSync(join(root, f));
    return [f, s.mtimeMs, s.size];
  });
  mkdirSync(join(root, 'dist'), { recursive: true });
  writeFileSync(join(root, PENDING), JSON.stringify({ version: 1, files }) + '\n');
} else if (step === 'after') {
  // Written anew (not only renamed) so that the stamp is newer than everything tsc wrote: a later bare
  // `tsc -p tsconfig.build.json` leaves a dist/ newer than its stamp, which bin/ then does not trust.
  writeFileSync(join(root, `${STAMP}.tmp`), readFileSync(join(root, PENDING)));
  renameSync(join(root, `${STAMP}.tmp`), join(root, STAMP));
  unlinkSync(join(root, PENDING));
} else {
  console.error('usage: build-stamp.mjs before|after [root]');
  process.exit(2);
}
