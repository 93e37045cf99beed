import { createHash } from 'node:crypto';
import { BK7231N_PARTITIONS } from '../firmware/flash-layout.ts';
import { writeFileAtomic } from '../rig/core/atomic-file.ts';
import { confinedPath } from '../rig/core/confined-path.ts';
import { ConfigError } from '../rig/core/errors.ts';

/** What the plan's flash entry may ask to keep before the ROM session writes anything. */
export type StockBackupRegion = 'app' | 'full';

export interface StockBackup {
  path: string;
  offset: number;
  bytes: number;
  sha256: string;
  /**
   * With a station stock library only: 'read' (read over the ROM, added to the library) or
   * 'crc-match' (the chip's CRCs of the range's halves equal a stored dump's: that dump, not read
   * again), the library's file, and the chip's two CRCs (of the halves, as the ROM reported them).
   */
  source?: 'read' | 'crc-match';
  stored?: string;
  chipCrcs?: string[];
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
 * of that unit's stock firmware): writeFileAtomic without replace (a hard link, not a rename).
 */
export async function saveStockBackup(dir: string, name: string, offset: number, data: Uint8Array): Promise<StockBackup> {
  const path = confinedPath(dir, name, 'stock backup');
  try {
    await writeFileAtomic(path, data, { replace: false });
  } catch (e) {
    const exists = (e as NodeJS.ErrnoException).code === 'EEXIST';
    throw new ConfigError(
      exists ? `backup ${path} already exists; refusing to overwrite a stock dump` : `cannot write backup ${path}: ${(e as Error).message}`,
      { step: 'backup' },
      { cause: e },
    );
  }
  return { path, offset, bytes: data.length, sha256: createHash('sha256').update(data).digest('hex') };
}
