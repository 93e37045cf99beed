import { constants } from 'node:fs';
import { access, mkdir, readdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { ConfigError } from '../rig/core/errors.ts';
import { checkPathText } from '../rig/core/confined-path.ts';

/**
 * Argument checks every command runs before it opens a port or touches a chip: a refused argument
 * must cost nothing (no link, no unprotect, no file created).
 */

/** Transfer rates the BK7231N ROM's SetBaudRate takes and common USB-UARTs (CP2102, CH340, FT232) do. */
export const ROM_BAUD_RATES: readonly number[] = [115200, 230400, 460800, 921600, 1000000, 1500000, 2000000, 3000000];

export function checkBaud(baud: number, option = '--baud'): number {
  if (!ROM_BAUD_RATES.includes(baud)) {
    const given = Number.isNaN(baud) ? 'is not a number' : `${baud} is not a rate the BK7231N ROM and USB-UARTs use`;
    throw new ConfigError(`${option} ${given}; use one of ${ROM_BAUD_RATES.join(', ')}`, { step: 'args' });
  }
  return baud;
}

/** A whole number ≥ min (yargs turns "abc" into NaN for a number option). */
export function checkCount(value: number, option: string, min = 1): number {
  if (!Number.isInteger(value) || value < min) {
    throw new ConfigError(`${option} ${Number.isNaN(value) ? 'is not a number' : `${value} is not a whole number ≥ ${min}`}`, { step: 'args' });
  }
  return value;
}

/**
 * An output file that must not replace an existing one silently (a stock-firmware dump may be the only
 * copy): refused when it exists unless `overwrite`, and when it is the same file as any of `inputs`
 * (e.g. `flash IMG --backup IMG` would replace the image with the chip dump) even with `overwrite`.
 */
export async function checkNewOutputFile(path: string, o: { option: string; overwrite: boolean; inputs?: Array<{ path: string; what: string }> }): Promise<void> {
  checkPathText(path, o.option);
  const target = resolve(path);
  for (const input of o.inputs ?? []) {
    if (await sameFile(target, resolve(input.path))) {
      throw new ConfigError(`${o.option} ${path} is the ${input.what} itself: the chip dump would replace it; name another file`, { step: 'args' });
    }
  }
  const st = await stat(target).catch(() => undefined);
  if (st?.isDirectory()) throw new ConfigError(`${o.option} ${path} is a directory; name a file`, { step: 'args' });
  if (st && !o.overwrite) {
    throw new ConfigError(`${o.option} ${path} already exists (${st.size} bytes); refusing to overwrite it: name a new file or add --overwrite`, { step: 'args' });
  }
  await checkWritableDir(dirname(target), `${o.option} ${path}`);
}

async function sameFile(a: string, b: string): Promise<boolean> {
  if (a === b) return true;
  const [sa, sb] = await Promise.all([stat(a).catch(() => undefined), stat(b).catch(() => undefined)]);
  return sa !== undefined && sb !== undefined && sa.dev === sb.dev && sa.ino === sb.ino;
}

async function checkWritableDir(dir: string, what: string): Promise<void> {
  const st = await stat(dir).catch(() => undefined);
  if (!st) throw new ConfigError(`${what}: directory ${dir} does not exist`, { step: 'args' });
  if (!st.isDirectory()) throw new ConfigError(`${what}: ${dir} is not a directory`, { step: 'args' });
  try {
    await access(dir, constants.W_OK);
  } catch {
    throw new ConfigError(`${what}: directory ${dir} is not writable`, { step: 'args' });
  }
}

/** Pseudo file systems: writes there are not files (/proc/x can block forever or vanish). */
const PSEUDO_FS = ['/proc', '/sys', '/dev'];

/**
 * An output directory to create files in: created if missing (with its parents), refused if it is a file,
 * not writable, under /proc, /sys or /dev, or (with `mustBeEmpty`) already holds files.
 */
export async function prepareOutputDir(path: string, o: { option: string; mustBeEmpty?: string }): Promise<string> {
  checkPathText(path, o.option);
  const dir = resolve(path);
  // Returns `path` as given (relative paths stay relative in reports).
  if (PSEUDO_FS.some((p) => dir === p || dir.startsWith(p + '/'))) {
    throw new ConfigError(`${o.option} ${path} is on the ${dir.split('/')[1]} pseudo file system; name a directory on a disk`, { step: 'args' });
  }
  const st = await stat(dir).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : e));
  if (st instanceof Error) {
    const why = st.code === 'ENOTDIR' ? 'cannot create the directory (a parent is a file)' : st.code === 'EACCES' ? 'permission denied' : st.message;
    throw new ConfigError(`${o.option} ${path}: ${why}`, { step: 'args' });
  }
  if (st && !st.isDirectory()) throw new ConfigError(`${o.option} ${path} is a file, not a directory`, { step: 'args' });
  if (!st) {
    try {
      await mkdir(dir, { recursive: true });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      const why = err.code === 'EACCES' || err.code === 'EROFS' ? 'permission denied' : err.code === 'ENOTDIR' || err.code === 'EEXIST' ? 'a parent is a file' : err.message;
      throw new ConfigError(`${o.option} ${path}: cannot create the directory (${why})`, { step: 'args' });
    }
  }
  try {
    await access(dir, constants.W_OK);
  } catch {
    throw new ConfigError(`${o.option} ${path} is not writable`, { step: 'args' });
  }
  if (o.mustBeEmpty) {
    const entries = await readdir(dir);
    if (entries.length > 0) throw new ConfigError(`${o.option} ${path} already holds ${entries.length} file(s) (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', …' : ''}); ${o.mustBeEmpty}`, { step: 'args' });
  }
  return path;
}
