import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { execa, type ResultPromise } from 'execa';
import { LOCK_FILE } from '../sim/jig/pty-jig.ts';

/**
 * `plugrig sim --jig … --pty --link-dir D` as separate processes: a second sim on a directory in use
 * refuses (and leaves the first one's links alone); `kill -9` of the sim leaves no socat behind (the
 * kernel's parent-death signal); the lock of a sim that is gone is stale and taken over.
 */
const ROOT = new URL('..', import.meta.url).pathname;
const BIN = join(ROOT, 'bin/plugrig.mjs');
const JIG = join(ROOT, 'fixtures/jigs/virtual-1slot.json');
const dir = mkdtempSync(join(tmpdir(), 'plugrig-sim-lock-'));
const linkDir = join(dir, 'links');
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const ENV = { PLUGRIG_LOG: 'silent', TAP: '', NODE_OPTIONS: '' };
const sim = (): ResultPromise<{ reject: false; env: typeof ENV; all: true }> =>
  execa(process.execPath, [BIN, 'sim', '--jig', JIG, '--pty', '--link-dir', linkDir], { reject: false, env: ENV, all: true });

async function waitFor(what: string, ok: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function untilRunning(p: ResultPromise, label: string): Promise<void> {
  let out = '';
  p.all?.on('data', (d: Buffer) => (out += d.toString()));
  let ended = false;
  void p.then(() => (ended = true));
  await waitFor(`${label} to come up`, () => out.includes('running until') || ended, 60_000);
  if (!out.includes('running until')) throw new Error(`${label} did not start: ${out}`);
}

/** Pids of socat processes whose parent is `ppid` (from /proc/<pid>/stat). */
function socatChildren(ppid: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (comm === 'socat' && Number(fields[1]) === ppid) out.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    // A zombie still answers kill 0; its state in /proc says Z.
    process.kill(pid, 0);
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

const links = (): Record<string, string> =>
  Object.fromEntries(
    readdirSync(linkDir)
      .filter((f) => lstatSync(join(linkDir, f)).isSymbolicLink())
      .map((f) => [f, readlinkSync(join(linkDir, f))]),
  );

t.test('a second sim on a link directory in use refuses; kill -9 leaves no socat; the stale lock is taken over', async (t) => {
  const first = sim();
  await untilRunning(first, 'the first sim');
  const before = links();
  t.ok(Object.keys(before).length >= 3, `links of the first sim: ${Object.keys(before).join(', ')}`);
  t.equal(readFileSync(join(linkDir, LOCK_FILE), 'utf8').trim(), String(first.pid), 'the lock holds the first sim’s pid');

  const second = await sim();
  t.equal(second.exitCode, 2, `the second sim is refused as a configuration error: ${second.all}`);
  t.match(second.all, new RegExp(`link directory .*links is in use by plugrig sim pid ${first.pid}`));
  t.same(links(), before, 'the first sim’s links are untouched (not taken over, not deleted)');
  t.ok(existsSync(join(linkDir, 'jig.json')), 'its generated jig file is still there');

  const socats = socatChildren(first.pid!);
  t.ok(socats.length >= 3, `the first sim runs ${socats.length} socat bridges`);
  process.kill(first.pid!, 'SIGKILL');
  await first;
  await waitFor('the socat bridges to end after kill -9', () => socats.every((p) => !alive(p)), 5000).catch(() => undefined);
  t.same(socats.filter(alive), [], 'no socat outlives the killed sim');

  t.equal(readFileSync(join(linkDir, LOCK_FILE), 'utf8').trim(), String(first.pid), 'kill -9 left its lock behind');
  const third = sim();
  await untilRunning(third, 'a sim after the killed one');
  t.equal(readFileSync(join(linkDir, LOCK_FILE), 'utf8').trim(), String(third.pid), 'the stale lock was taken over');
  process.kill(third.pid!, 'SIGTERM');
  const r = await third;
  t.equal(r.exitCode, 0, `SIGTERM ends the sim cleanly: ${r.all}`);
  t.notOk(existsSync(join(linkDir, LOCK_FILE)), 'a clean stop removes the lock');
  t.same(socatChildren(third.pid!), [], 'and its socats');
});
