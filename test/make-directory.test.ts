import t from 'tap';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeDirectory } from '../rig/core/make-directory.ts';

/** mkdir -p that settles: parents made, an existing directory fine, a file in the way and /proc refused. */
const dir = mkdtempSync(join(tmpdir(), 'plugrig-mkdir-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('makes the missing parents; an existing directory is fine', async (t) => {
  const deep = join(dir, 'a', 'b', 'c');
  await makeDirectory(deep);
  t.ok(statSync(deep).isDirectory());
  await t.resolves(makeDirectory(deep), 'the same directory again: no error');
  await t.resolves(makeDirectory(join(dir, 'a')), 'an existing parent: no error');
});

t.test('a file in the way is refused', async (t) => {
  writeFileSync(join(dir, 'f'), 'x');
  await t.rejects(makeDirectory(join(dir, 'f')), { code: 'EEXIST' });
  await t.rejects(makeDirectory(join(dir, 'f', 'sub')), { code: 'ENOTDIR' });
});

t.test('under /proc: ENOENT, settled (fs.mkdir recursive loops there for ever)', { timeout: 10_000 }, async (t) => {
  await t.rejects(makeDirectory('/proc/plugrig-no-such'), { code: 'ENOENT' });
  await t.rejects(makeDirectory('/proc/plugrig-no-such/deeper/still'), { code: 'ENOENT' });
});
