import { createHash } from 'node:crypto';
import { link, open, rm } from 'node:fs/promises';
import { BK7231N_PARTITIONS } from '../firmware/flash-layout.ts';
import { confinedPath } from '../rig/core/confined-path.ts';
import { ConfigError } from '../rig/core/errors.ts';

/** What the plan's flash entry may ask to keep before the ROM session writes anything. */
export type StockBackupRegion = 'app' | 'full';

export interface StockBackup {
  path: string;
  offset: number;
  bytes: number;
  sha256: string;
}

/** [offset, offset+length) of the region on a chip with `flashSize` bytes. */
export function backupRange(region: StockBackupRegion, flashSize: number): { offset: number; length: number } {
  if (region === 'full') return { offset: 0, length: flashSize };
  const app = BK7231N_PARTITIONS.app;
  return { offset: app.start, length: app.end - app.start };
}

/** `slot-<N>-backup-<mac>.bin`; the MAC without separators (a file name, not a display form). */
export function backupFileName(slot: number, mac: string | null): string {
  return `slot-${slot}-backup-${mac ? mac.replace(/[^0-9a-fA-F]/g, '').toLowerCase() : 'unknown-mac'}.bin`;
}

/**
 * Store the stock dump in `dir` atomically and never over an existing file (it may be the only copy
 * of that unit's stock firmware): written to a temp file and fsync'ed, then hard-linked to its
 * name (link fails on an existing name where rename would replace it), then the directory fsync'ed.
 */
export async function saveStockBackup(dir: string, name: string, offset: number, data: Uint8Array): Promise<StockBackup> {
  const path = confinedPath(dir, name, 'stock backup');
  const tmp = `${path}.part-${process.pid}`;
  try {
    const fh = await open(tmp, 'wx');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await link(tmp, path);
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch (e) {
    const exists = (e as NodeJS.ErrnoException).code === 'EEXIST';
    throw new ConfigError(
      exists ? `backup ${path} already exists; refusing to overwrite a stock dump` : `cannot write backup ${path}: ${(e as Error).message}`,
      { step: 'backup' },
      { cause: e },
    );
  } finally {
    await rm(tmp, { force: true });
  }
  return { path, offset, bytes: data.length, sha256: createHash('sha256').update(data).digest('hex') };
}
