import { link, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { WRITE_NOFOLLOW } from './confined-path.ts';

/**
 * Write a file whole or not at all, and durably: the bytes go to a temporary file beside it, which is
 * fsync'ed and then renamed over `path` (or, with `replace: false`, hard-linked to it: link fails on an
 * existing name where rename would replace it), then the directory is fsync'ed so the new name survives
 * a power cut. A reader sees the old file or the new one, never a part; on any error the temporary is
 * removed and the error (EEXIST for an existing file under `replace: false`) is thrown as it came.
 * The temporary is opened without following a symbolic link (a link planted at its name is refused,
 * not written through). `path` should come from confinedPath.
 * One writer per path at a time (the temporary's name is per path and process).
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, o: { replace?: boolean } = {}): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  const replace = o.replace ?? true;
  let created = false;
  let renamed = false;
  try {
    const fh = await open(tmp, WRITE_NOFOLLOW);
    created = true;
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (replace) {
      await rename(tmp, path);
      renamed = true;
    } else await link(tmp, path);
    const dir = await open(dirname(path), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } finally {
    // Linked: the temporary is a second name to drop; renamed: it is gone already. Not opened (a link
    // planted at its name: ELOOP): not ours to remove.
    if (created && !renamed) await rm(tmp, { force: true });
  }
}
