import { mkdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/**
 * `mkdir -p` that always settles. Node's recursive mkdir never returns under /proc (the kernel answers
 * ENOENT for a new name there although the parent exists, and Node's loop takes ENOENT as "make the
 * parent first" again and again): each level is made on its own here, so such an ENOENT is the error.
 */
export async function makeDirectory(dir: string): Promise<void> {
  const abs = resolve(dir);
  const made = await mkdirOne(abs);
  if (made === true) return;
  const parent = dirname(abs);
  // The parent is there (or this is the root): the refusal is about this name itself.
  if (parent === abs || (await stat(parent).catch(() => undefined))) throw made;
  await makeDirectory(parent);
  const again = await mkdirOne(abs);
  if (again !== true) throw again;
}

/** true when `dir` is a directory now; the refusal otherwise (an ENOENT left to the caller to judge). */
async function mkdirOne(dir: string): Promise<true | NodeJS.ErrnoException> {
  try {
    await mkdir(dir);
    return true;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'EEXIST') {
      if ((await stat(dir).catch(() => undefined))?.isDirectory()) return true;
      throw err;
    }
    if (err.code === 'ENOENT') return err;
    throw err;
  }
}
