// Is dist/ current? dist/cli/main.js is at least as new as every .ts in the directories the build
// compiles (tsconfig.build.json "include") and as the TypeScript configurations: the test
// bin/plugrig.mjs makes before running dist/ (it watches the sources only). Shared by `npm test`
// (no rebuild of a current build) and `prepare` (npm ci runs prepare twice, for the package and for
// its own "plugrig": "file:." link; the second finds the first's build current).
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const CONFIGS = ['tsconfig.json', 'tsconfig.build.json'];

/** True when the build in ROOT/dist is newer than every input of it; false when there is none. */
export function distCurrent(root = '.') {
  let built;
  try {
    built = statSync(join(root, 'dist/cli/main.js')).mtimeMs;
  } catch {
    return false;
  }
  const newer = (path) => statSync(path).mtimeMs > built;
  if (CONFIGS.some((c) => newer(join(root, c)))) return false;
  const { include } = JSON.parse(readFileSync(join(root, 'tsconfig.build.json'), 'utf8'));
  for (const dir of include) {
    for (const e of readdirSync(join(root, dir), { recursive: true, withFileTypes: true })) {
      if (e.isFile() && e.name.endsWith('.ts') && newer(join(e.parentPath ?? e.path, e.name))) return false;
    }
  }
  return true;
}
