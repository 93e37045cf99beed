#!/usr/bin/env node
// `npm test`: make dist/ current (the CLI tests that spawn bin/plugrig.mjs run dist/ when it is current),
// run the tap suite while the type-check runs beside it, and close with "N passed, N failed".
// tap's own summary counts files; this counts leaf assertions (test points that do not
// close a subtest) across every file, which is what a reader of CI wants.
import { spawn } from 'node:child_process';
import { Parser } from 'tap-parser';
import { distCurrent } from './dist-current.mjs';

function run(cmd, args, onData) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', onData ? 'pipe' : 'inherit', 'inherit'] });
    if (onData) child.stdout.on('data', onData);
    child.on('close', (code) => resolve(code ?? 1));
  });
}

/** The command's exit code and what it printed (stdout and stderr), for printing later. */
function runQuiet(cmd, args) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (code) => resolve({ code: code ?? 1, out }));
  });
}

// `--no-typecheck` (first argument) skips the type-check and the build when re-running tests on an unchanged tree.
const skipTypecheck = process.argv[2] === '--no-typecheck';
const tapArgs = process.argv.slice(skipTypecheck ? 3 : 2);
if (!skipTypecheck && !distCurrent()) {
  // npm run build, not a bare tsc: it also writes the build stamp bin/plugrig.mjs trusts dist/ by.
  const buildCode = await run('npm', ['run', 'build']);
  if (buildCode !== 0) {
    console.log('build (npm run build) failed');
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
}
// tap builds its Test class for the plugins package.json "tap"."plugin" names; a fresh install holds the
// default build, which includes @tapjs/typescript. tap rebuilds on its first run, but the runner has by
// then taken the node arguments of the old build, so every test process of that run (all of CI's: each
// `npm ci` is followed by one run) imports @tapjs/typescript's ts-node beside tsx: 6-7 s of CPU for an
// empty test file instead of 1.4 s. Building first gives the first run the configured plugins too.
if (await tapNeedsBuild()) {
  const buildCode = await run('npx', ['tap', 'build']);
  if (buildCode !== 0) console.log('warning: `tap build` failed; the tests run with the installed build of tap');
}

/** The installed tap's Test class was built for other plugins than the configuration names. */
async function tapNeedsBuild() {
  try {
    const [{ TapConfig }, { signature }] = await Promise.all([import('@tapjs/config'), import('@tapjs/test')]);
    const config = await TapConfig.load();
    return config.pluginSignature !== signature;
  } catch {
    return false; // not the tap this was written for: let it do what it does
  }
}

// The type-check (tests and scripts too) needs nothing the tests make and the tests nothing it makes:
// it runs beside them (one core of the two for ~30 s) instead of before them. Its output comes at the end.
const typecheck = skipTypecheck ? Promise.resolve({ code: 0, out: '' }) : runQuiet('npx', ['tsc', '--noEmit']);

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
const tsc = await typecheck;
if (tsc.out) process.stdout.write(tsc.out.endsWith('\n') ? tsc.out : `${tsc.out}\n`);
if (tsc.code !== 0) process.stdout.write('typecheck (tsc --noEmit) failed\n');

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
// A failed type-check is a failure of the run, whatever the tests did.
if (tsc.code !== 0) failed++;
process.stdout.write(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
process.exit(code !== 0 || failed > 0 ? 1 : 0);
