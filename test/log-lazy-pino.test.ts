import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * A process whose logs go nowhere never loads pino (about 50 ms of every CLI start), and a logger
 * created before a destination is chosen still writes to it once it is: a fresh process (the test
 * runner's own may have pino loaded) logs through a logger and its child before and after
 * logToFile(), and reports whether pino was in the module cache at each point.
 */
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'plugrig-log-lazy-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const file = join(dir, 'plugrig.log');

const script = `
import { createRequire } from 'node:module';
const { createLogger, logToFile } = await import(${JSON.stringify(join(ROOT, 'rig/core/log.ts'))});
const cache = createRequire(${JSON.stringify(join(ROOT, 'package.json'))}).cache;
const pinoLoaded = () => Object.keys(cache).some((k) => k.includes('/node_modules/pino/'));
const log = createLogger({ unit: 7 }, 'info');
const child = log.child({ step: 'link' });
log.info('before the choice');
child.warn({ n: 0 }, 'before the choice, child');
const out = { loadedBefore: pinoLoaded(), enabledBefore: child.isLevelEnabled('warn') };
logToFile(${JSON.stringify(file)});
child.warn({ n: 1 }, 'after the choice');
log.debug('below the level');
out.loadedAfter = pinoLoaded();
out.enabledAfter = child.isLevelEnabled('warn');
process.stdout.write(JSON.stringify(out));
`;
const env = { ...process.env };
delete env.TAP;
delete env.PLUGRIG_LOG;
const out = JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, env, encoding: 'utf8' })) as Record<string, boolean>;

t.equal(out.loadedBefore, false, 'no destination: creating loggers and logging did not load pino');
t.equal(out.enabledBefore, false, 'no destination: no level is enabled (a byte trace is not even formatted)');
t.equal(out.loadedAfter, true, 'a destination chosen: pino loaded');
t.equal(out.enabledAfter, true, 'and the level applies again');
const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
t.same(
  lines.map((l) => ({ msg: l.msg, unit: l.unit, step: l.step, n: l.n })),
  [{ msg: 'after the choice', unit: 7, step: 'link', n: 1 }],
  'the child created before the choice writes to the file with its bindings; lines logged before it and below the level do not appear',
);
