#!/usr/bin/env node
// npm's `prepare` (after npm ci / npm install): build dist/ unless it is current. npm ci runs prepare
// twice here, once for the package's own "plugrig": "file:." link and once for the package; the
// second build was ~30 s of CPU spent compiling the same sources again.
import { spawnSync } from 'node:child_process';
import { distCurrent } from './dist-current.mjs';

if (distCurrent()) {
  console.log('dist/ is current (newer than every source and tsconfig): not rebuilt');
} else {
  const r = spawnSync('npm', ['run', 'build'], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
