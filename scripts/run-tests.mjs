#!/usr/bin/env node
// `npm test`: type-check, then run the tap suite and close with "N passed, N failed".
// tap's own summary counts files; this counts leaf assertions (test points that do not
// close a subtest) across every file, which is what a reader of CI wants.
import { spawn } from 'node:child_process';
import { Parser } from 'tap-parser';

function run(cmd, args, onData) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', onData ? 'pipe' : 'inherit', 'inherit'] });
    if (onData) child.stdout.on('data', onData);
    child.on('close', (code) => resolve(code ?? 1));
  });
}

const tscCode = await run('npx', ['tsc', '--noEmit']);
if (tscCode !== 0) {
  console.log('typecheck failed');
  console.log('0 passed, 1 failed');
  process.exit(1);
}

const points = [];
const watch = (p) => {
  p.on('assert', (r) => points.push(r));
  p.on('child', watch);
};
const parser = new Parser({ strict: false });
watch(parser);
let complete;
parser.on('complete', (r) => (complete = r));
const code = await run('npx', ['tap', '--reporter=tap', ...process.argv.slice(2)], (chunk) => {
  process.stdout.write(chunk);
  parser.write(chunk);
});
parser.end();

let passed = 0;
let failed = 0;
let skipped = 0;
for (const r of points) {
  if (r.closingTestPoint) continue;
  if (r.skip || r.todo) skipped++;
  else if (r.ok) passed++;
  else failed++;
}
// A file that crashed before any assertion shows up only as a failed closing point.
if (failed === 0 && complete && !complete.ok) failed = Math.max(1, complete.fail);
process.stdout.write(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
process.exit(code !== 0 || failed > 0 ? 1 : 0);
