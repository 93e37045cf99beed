import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The CLI runs from dist/ (tsconfig.build.json), which holds compiled .js only: a module that finds
 * fixtures/ or other files next to itself through import.meta.url works from the sources and breaks
 * from the build. Only rig/core/package-root.ts may do that (it walks up to package.json).
 */
const ROOT = new URL('..', import.meta.url).pathname;
const build = JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
const bin = readFileSync(join(ROOT, 'bin/plugrig.mjs'), 'utf8');

t.test('bin/plugrig.mjs watches exactly the directories the build compiles', async (t) => {
  const m = /const SOURCE_DIRS = \[([^\]]*)\]/.exec(bin);
  t.ok(m, 'SOURCE_DIRS found');
  const dirs = [...(m?.[1] ?? '').matchAll(/'([^']+)'/g)].map((x) => x[1]).sort();
  t.same(dirs, [...build.include].sort());
});

t.test('no compiled module resolves files from its own location except rig/core/package-root.ts', async (t) => {
  const offenders: string[] = [];
  for (const dir of build.include) {
    for (const e of readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })) {
      if (!e.isFile() || !e.name.endsWith('.ts')) continue;
      const path = join(e.parentPath, e.name);
      const rel = path.slice(ROOT.length);
      if (rel === 'rig/core/package-root.ts') continue;
      if (/import\.meta\.(url|dirname|filename)/.test(readFileSync(path, 'utf8'))) offenders.push(rel);
    }
  }
  t.same(offenders, [], 'use PACKAGE_ROOT from rig/core/package-root.ts instead');
});
