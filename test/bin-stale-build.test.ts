import t from 'tap';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * bin/plugrig.mjs never runs a dist/ older than the checkout: a package tree with the real bin/ and
 * scripts/build-stamp.mjs, and a one-line "CLI" in cli/main.ts whose dist/ twin says "dist". Each
 * case changes the tree and asks which one ran.
 */
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'plugrig-stale-build-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const SOURCE_DIRS = ['cli', 'rig', 'sim', 'station', 'firmware', 'suites', 'reports'];
for (const d of ['bin', 'scripts', 'dist/cli', ...SOURCE_DIRS]) mkdirSync(join(dir, d), { recursive: true });
copyFileSync(join(ROOT, 'bin/plugrig.mjs'), join(dir, 'bin/plugrig.mjs'));
copyFileSync(join(ROOT, 'scripts/build-stamp.mjs'), join(dir, 'scripts/build-stamp.mjs'));
copyFileSync(join(ROOT, 'tsconfig.build.json'), join(dir, 'tsconfig.build.json'));
writeFileSync(join(dir, 'tsconfig.json'), '{}\n');
writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
const source = (word: string): string => `export async function runCli(): Promise<number> { process.stdout.write('source ${word}\\n'); return 0; }\n`;
writeFileSync(join(dir, 'rig/helper.ts'), 'export const x = 1;\n');

function node(args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const e: NodeJS.ProcessEnv = { ...process.env, ...env };
  if (!('PLUGRIG_FROM_SOURCE' in env)) delete e.PLUGRIG_FROM_SOURCE;
  return new Promise((resolve, reject) =>
    execFile(process.execPath, args, { cwd: dir, env: e, encoding: 'utf8' }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout.trim()))),
  );
}
const ran = (): Promise<string> => node(['bin/plugrig.mjs']);

/** What `npm run build` does, with a "compiler" that writes the dist/ twin. */
async function build(word: string): Promise<void> {
  await node(['scripts/build-stamp.mjs', 'before']);
  writeFileSync(join(dir, 'dist/cli/main.js'), `export async function runCli() { process.stdout.write('dist ${word}\\n'); return 0; }\n`);
  await node(['scripts/build-stamp.mjs', 'after']);
}

t.test('no build: the sources run', async (t) => {
  writeFileSync(join(dir, 'cli/main.ts'), source('v1'));
  t.equal(await ran(), 'source v1');
});

t.test('built: dist runs; PLUGRIG_FROM_SOURCE still runs the sources', async (t) => {
  await build('v1');
  t.equal(await ran(), 'dist v1');
  t.equal(await node(['bin/plugrig.mjs'], { PLUGRIG_FROM_SOURCE: '1' }), 'source v1');
});

t.test('a source edited after the build runs the sources, until the next build', async (t) => {
  writeFileSync(join(dir, 'cli/main.ts'), source('v2'));
  t.equal(await ran(), 'source v2');
  await build('v2');
  t.equal(await ran(), 'dist v2');
});

t.test('a source edited but given an older mtime (an extracted archive, touch -d) still runs the sources', async (t) => {
  writeFileSync(join(dir, 'cli/main.ts'), source('v3 longer'));
  const old = new Date(Date.now() - 86_400_000);
  utimesSync(join(dir, 'cli/main.ts'), old, old);
  t.equal(await ran(), 'source v3 longer');
  await build('v3 longer');
  t.equal(await ran(), 'dist v3 longer');
});

t.test('a tsconfig changed: the sources run; a recorded source deleted: the newest-source rule decides', async (t) => {
  unlinkSync(join(dir, 'rig/helper.ts'));
  t.equal(await ran(), 'dist v3 longer', 'deleted input, nothing newer than dist/');
  writeFileSync(join(dir, 'cli/main.ts'), source('v4'));
  t.equal(await ran(), 'source v4', 'deleted input and a newer source');
  await build('v4');
  t.equal(await ran(), 'dist v4');
  writeFileSync(join(dir, 'tsconfig.json'), '{ "compilerOptions": {} }\n');
  t.equal(await ran(), 'source v4', 'tsconfig changed');
  await build('v5');
});

t.test('no stamp, or dist compiled again after it (a bare tsc): dist runs only while it is newer than every source', async (t) => {
  const now = Date.now() / 1000;
  // dist/ rebuilt after the stamp while a source changed: the stamp no longer speaks for dist/.
  writeFileSync(join(dir, 'cli/main.ts'), source('v6'));
  writeFileSync(join(dir, 'dist/cli/main.js'), `export async function runCli() { process.stdout.write('dist v6 by tsc\\n'); return 0; }\n`);
  utimesSync(join(dir, 'dist/cli/main.js'), now + 2, now + 2);
  t.equal(await ran(), 'dist v6 by tsc', 'dist newer than its stamp and than every source');
  writeFileSync(join(dir, 'cli/main.ts'), source('v3 longer'));
  unlinkSync(join(dir, 'dist/build-stamp.json'));
  utimesSync(join(dir, 'dist/cli/main.js'), now, now);
  for (const f of ['cli/main.ts', 'tsconfig.json', 'tsconfig.build.json']) utimesSync(join(dir, f), now - 60, now - 60);
  t.equal(await ran(), 'dist v6 by tsc', 'no stamp: dist newer than the sources');
  writeFileSync(join(dir, 'rig/new.ts'), 'export const y = 2;\n');
  utimesSync(join(dir, 'rig/new.ts'), now + 5, now + 5);
  t.equal(await ran(), 'source v3 longer', 'a source newer than dist');
});
