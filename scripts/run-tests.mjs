#!/usr/bin/env node
// `npm test`: type-check and build dist/ (the CLI tests spawn bin/plugrig.mjs, which runs dist/ when it is
// current), then run the tap suite and close with "N passed, N failed".
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

// `--no-typecheck` (first argument) skips both steps when re-running tests on an unchanged tree.
const skipTypecheck = process.argv[2] === '--no-typecheck';
const tapArgs = process.argv.slice(skipTypecheck ? 3 : 2);
// Both in parallel: the type-check covers tests and scripts, the build only what ships.
const [tscCode, buildCode] = skipTypecheck
  ? [0, 0]
  : await Promise.all([run('npx', ['tsc', '--noEmit']), run('npx', ['tsc', '-p', 'tsconfig.build.json'])]);
if (tscCode !== 0 || buildCode !== 0) {
  console.log(tscCode !== 0 ? 'typecheck failed' : 'build (tsc -p tsconfig.build.json) failed');
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
const code = await run('npx', ['tap', '--reporter=tap', ...tapArgs], (chunk) => {
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
// No test at all (a pattern that matched no file, an empty include) is a failure, not "0 passed, 0 failed".
if (passed + failed + skipped === 0) {
  const asked = tapArgs.join(' ');
  process.stdout.write(`no test ran: ${asked ? `no test file matched "${asked}"` : 'tap found no test file'}\n`);
  failed = 1;
}
process.stdout.write(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
process.exit(code !== 0 || failed > 0 ? 1 : 0);
