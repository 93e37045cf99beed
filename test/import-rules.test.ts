import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/**
 * The layer rules of the project guide, read from every relative import (static, `import type`,
 * re-exports and dynamic `import()`) of the source trees:
 *   rig/, suites/, station/ never import sim/ (cli/ is the composition root that wires the sim in);
 *   sim/ never imports suites/ or station/; suites/ never imports reports/;
 *   nothing but cli/ imports cli/ (the composition root sits on top: rig/store finding its
 *   migrations through cli/package-root.ts was such an inversion).
 */
const ROOT = resolve(new URL('..', import.meta.url).pathname);
const TREES = ['rig', 'suites', 'station', 'sim', 'reports', 'firmware', 'cli'] as const;
const FORBIDDEN: Record<string, readonly string[]> = {
  rig: ['sim', 'cli'],
  suites: ['sim', 'reports', 'cli'],
  station: ['sim', 'cli'],
  sim: ['suites', 'station', 'cli'],
  reports: ['cli'],
  firmware: ['cli'],
};

/** Relative specifiers of every import, export-from and import() in a TypeScript source. */
function importSpecifiers(src: string): string[] {
  const out: string[] = [];
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])(\.{1,2}\/[^'"]+)\1/g;
  for (const m of src.matchAll(re)) out.push(m[2]!);
  return out;
}

/** `from` (a repo-relative file) importing `spec`: the top-level tree the target lies in. */
function targetTree(from: string, spec: string): string {
  return relative(ROOT, resolve(ROOT, dirname(from), spec)).split('/')[0]!;
}

function violations(files: ReadonlyArray<{ path: string; src: string }>): string[] {
  const bad: string[] = [];
  for (const { path, src } of files) {
    const tree = path.split('/')[0]!;
    for (const spec of importSpecifiers(src)) {
      const to = targetTree(path, spec);
      if (FORBIDDEN[tree]?.includes(to)) bad.push(`${path} imports ${spec} (${tree}/ -> ${to}/)`);
    }
  }
  return bad;
}

function sources(): Array<{ path: string; src: string }> {
  const files: Array<{ path: string; src: string }> = [];
  for (const dir of TREES) {
    for (const e of readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })) {
      if (!e.isFile() || !e.name.endsWith('.ts')) continue;
      const abs = join(e.parentPath, e.name);
      files.push({ path: relative(ROOT, abs), src: readFileSync(abs, 'utf8') });
    }
  }
  return files;
}

t.test('every import of the source trees keeps the layer rules', async (t) => {
  const files = sources();
  t.ok(files.length > 100, `read ${files.length} source files`);
  t.ok(files.some((f) => f.path === 'rig/store/migrations.ts'), 'the store is among them');
  t.same(violations(files), []);
});

t.test('the scan sees each kind of import a rule could be broken by', async (t) => {
  // The same checker on sources that break the rules, one import form each.
  const cases: Array<[string, string, string]> = [
    ['rig/store/migrations.ts', "import { PACKAGE_ROOT } from '../../cli/package-root.ts';", 'rig/ -> cli/'],
    ['rig/serial/open-link.ts', "import type { VirtualSerialBus } from '../../sim/serial/virtual-binding.ts';", 'rig/ -> sim/'],
    ['station/station.ts', "const { startVirtualJig } = await import('../sim/jig/in-process-jig.ts');", 'station/ -> sim/'],
    ['suites/step-runner.ts', "export { writeTap } from '../reports/tap-writer.ts';", 'suites/ -> reports/'],
    ['sim/jig/virtual-jig.ts', "import '../../station/station.ts';", 'sim/ -> station/'],
  ];
  for (const [path, line, rule] of cases) {
    const found = violations([{ path, src: `// fixture\n${line}\n` }]);
    t.equal(found.length, 1, `${rule}: ${line}`);
    t.match(found[0] ?? '', rule);
  }
  t.same(violations([{ path: 'cli/target.ts', src: "import { VirtualBk7231 } from '../sim/bk7231/virtual-bk7231.ts';" }]), [], 'cli/ may wire the sim in');
  t.same(violations([{ path: 'rig/store/migrations.ts', src: "import { PACKAGE_ROOT } from '../core/package-root.ts';" }]), [], 'rig/ -> rig/ is fine');
});
