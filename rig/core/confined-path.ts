import { constants, lstatSync, realpathSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { ConfigError } from './errors.ts';

/**
 * Every file the rig writes into a run directory (unit records, TAP and run reports, stock backups,
 * station-state.json, the log) gets its path here: a name from a jig, a plan, a unit or a chip can
 * never make the rig write outside that directory — not with `../`, not as an absolute path, not
 * through a symbolic link inside the directory that points out, not with a NUL or a newline.
 */

/** open(2) flags for writing a file we own: create or truncate, but never follow a symbolic link (ELOOP). */
export const WRITE_NOFOLLOW = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW;

/** C0 controls and DEL: a NUL truncates the path at the system call, a newline forges log and report lines. */
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Refuse a path with a control character (one clear message instead of Node's TypeError or a forged line). */
export function checkPathText(path: string, what: string): void {
  const m = CONTROL.exec(path);
  if (m) {
    const ch = m[0] === '\u0000' ? 'a NUL byte' : m[0] === '\n' ? 'a newline' : m[0] === '\r' ? 'a carriage return' : `control character 0x${m[0].charCodeAt(0).toString(16).padStart(2, '0')}`;
    throw new ConfigError(`${what} ${JSON.stringify(path)} contains ${ch}; a file name must not`, { step: 'path' });
  }
}

/** Is `p` (resolved) `root` itself or below it? */
function inside(root: string, p: string): boolean {
  const rel = relative(root, p);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/**
 * The absolute path of `name` inside the directory `root`, or a ConfigError naming the problem:
 * a control character, an absolute name, `..` that climbs out, or a symbolic link on the way (a
 * directory under `root` that resolves outside it, or the file itself — we replace files, never
 * write through a link). `root` itself may be anything the operator named (a symlinked disk).
 */
export function confinedPath(root: string, name: string, what: string): string {
  checkPathText(name, what);
  if (name === '' || isAbsolute(name)) throw new ConfigError(`${what} ${JSON.stringify(name)} is ${name === '' ? 'empty' : 'an absolute path'}; it must name a file inside the run directory ${root}`, { step: 'path' });
  const base = resolve(root);
  const target = resolve(base, name);
  if (!inside(base, target) || target === base) throw new ConfigError(`${what} ${JSON.stringify(name)} leaves the run directory ${root}`, { step: 'path' });
  let realRoot: string;
  try {
    realRoot = realpathSync(base);
  } catch {
    return target; // the directory does not exist yet: nothing in it can be a link
  }
  // Walk from the directory down to the file: no component may be a link out, the file no link at all.
  const parts = relative(base, target).split(sep);
  let at = base;
  for (let i = 0; i < parts.length; i++) {
    at = join(at, parts[i]!);
    let st;
    try {
      st = lstatSync(at);
    } catch {
      return target; // the rest does not exist yet
    }
    if (!st.isSymbolicLink()) continue;
    let to: string;
    try {
      to = realpathSync(at);
    } catch {
      to = '(a dangling or looping link)';
    }
    if (i === parts.length - 1) throw new ConfigError(`${what} ${at} is a symbolic link to ${to}; refusing to write through it`, { step: 'path' });
    if (!inside(realRoot, to)) throw new ConfigError(`${what} ${at}: ${parts.slice(0, i + 1).join('/')} is a symbolic link to ${to}, outside the run directory ${root}`, { step: 'path' });
  }
  return target;
}
