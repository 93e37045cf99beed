import { createHash } from 'node:crypto';
import { link, mkdir, open, readdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../rig/core/atomic-file.ts';
import { confinedPath } from '../rig/core/confined-path.ts';
import { ConfigError } from '../rig/core/errors.ts';
import type { Logger } from '../rig/core/log.ts';
import { crc32Raw } from '../rig/bk7231/protocol/crc32.ts';

/** A stock dump the station holds: its file, flash range, SHA-256 and the chip's CheckCRC of each half. */
export interface StoredStock {
  path: string;
  offset: number;
  bytes: number;
  sha256: string;
  /** The ROM's CheckCRC value (raw CRC-32) of [offset, offset + bytes/2) and of the rest. */
  halfCrcs: [number, number];
}

/** `stock-<offset hex>-<length hex>-<sha256>.bin`: a content name, so one image is kept once. */
const NAME = /^stock-([0-9a-f]{8})-([0-9a-f]{8})-([0-9a-f]{64})\.bin$/;

export function stockFileName(offset: number, length: number, sha256: string): string {
  return `stock-${offset.toString(16).padStart(8, '0')}-${length.toString(16).padStart(8, '0')}-${sha256}.bin`;
}

/** Where a range is split for its two CRCs (the ROM's CheckCRC costs the same per byte either way). */
export function halfOf(length: number): number {
  return Math.floor(length / 2 / 4096) * 4096 || Math.floor(length / 2);
}

export function halfCrcs(data: Uint8Array): [number, number] {
  const h = halfOf(data.length);
  return [crc32Raw(data.subarray(0, h)), crc32Raw(data.subarray(h))];
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/**
 * The station's stock-firmware dumps, content-addressed in one directory (beside its store), so a
 * batch of units that arrive with the same stock app costs one ROM read of it, not one per unit.
 * A unit's content is matched by the chip's own CheckCRC of the range's two halves against the
 * stored dumps' (two independent CRC-32s: same chip time as one over the whole range); a match names
 * the stored file by its SHA-256, re-hashed from disk before it is believed. Why a CRC match may
 * stand in for the read, what a false one costs and when the station reads anyway: README "Stock
 * backups". One instance per station run, shared by its slots (adds by different slots of the same
 * image land on one file).
 */
export class StockLibrary {
  readonly dir: string;
  readonly #log: Logger | undefined;
  #index: Promise<StoredStock[]> | undefined;

  constructor(dir: string, o: { log?: Logger } = {}) {
    this.dir = dir;
    this.#log = o.log;
  }

  /** The stored dump of [offset, offset+length) whose half CRCs equal the chip's, with its bytes (re-hashed), if any. */
  async find(offset: number, length: number, chip: [number, number]): Promise<{ stock: StoredStock; data: Uint8Array } | undefined> {
    for (const s of await this.#entries()) {
      if (s.offset !== offset || s.bytes !== length || s.halfCrcs[0] !== chip[0] || s.halfCrcs[1] !== chip[1]) continue;
      const data = await readFile(s.path).catch(() => undefined);
      // Changed or gone since it was indexed: not evidence of anything; the caller reads the chip.
      if (!data || data.length !== length || sha256(data) !== s.sha256) {
        this.#log?.warn({ path: s.path }, 'stored stock dump no longer matches its name; not used');
        continue;
      }
      return { stock: s, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
    }
    return undefined;
  }

  /** Keep `data` (read from the chip at `offset`) once: written atomically under its content name, or found there already. */
  async add(offset: number, data: Uint8Array): Promise<StoredStock> {
    const hash = sha256(data);
    const path = confinedPath(this.dir, stockFileName(offset, data.length, hash), 'stock library');
    const entry: StoredStock = { path, offset, bytes: data.length, sha256: hash, halfCrcs: halfCrcs(data) };
    const list = await this.#entries();
    if (list.some((s) => s.path === path)) return entry;
    try {
      await mkdir(this.dir, { recursive: true });
      await writeFileAtomic(path, data, { replace: false });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new ConfigError(`cannot keep stock dump ${path}: ${(e as Error).message}`, { step: 'backup' }, { cause: e });
      // Another slot kept the same image a moment ago (same name = same SHA-256): one copy, as meant.
      // A file there whose bytes do not hash to its name holds nobody's dump: put the bytes it names
      // back (a rename: earlier runs' links keep the inode they had).
      const existing = await readFile(path).catch(() => undefined);
      if (!existing || sha256(existing) !== hash) {
        this.#log?.warn({ path }, 'stored stock dump did not hash to its name; rewritten from the chip just read');
        await writeFileAtomic(path, data).catch((w: unknown) => {
          throw new ConfigError(`cannot keep stock dump ${path}: ${(w as Error).message}`, { step: 'backup' }, { cause: w });
        });
      }
    }
    if (!list.some((s) => s.path === path)) list.push(entry);
    return entry;
  }

  /** The stored dumps, read and hashed once per instance (a file whose bytes do not hash to its name is left out). */
  #entries(): Promise<StoredStock[]> {
    this.#index ??= (async () => {
      const names = await readdir(this.dir).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return [] as string[];
        throw e;
      });
      const out: StoredStock[] = [];
      for (const name of names.sort()) {
        const m = NAME.exec(name);
        if (!m) continue;
        const path = confinedPath(this.dir, name, 'stock library');
        const data = await readFile(path);
        if (data.length !== parseInt(m[2]!, 16) || sha256(data) !== m[3]) {
          this.#log?.warn({ path }, 'stored stock dump does not hash to its name; left out');
          continue;
        }
        out.push({ path, offset: parseInt(m[1]!, 16), bytes: data.length, sha256: m[3]!, halfCrcs: halfCrcs(data) });
      }
      return out;
    })();
    return this.#index;
  }
}

/**
 * Give the stored dump `from` a second name `path` in the run directory (a hard link: the bytes are
 * kept once), never over an existing file; written from `data` where a link cannot be made (another
 * file system).
 */
export async function linkStock(from: string, path: string, data: Uint8Array): Promise<void> {
  try {
    try {
      await link(from, path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EXDEV' && code !== 'EPERM') throw e;
      await writeFileAtomic(path, data, { replace: false });
      return;
    }
    // The new name must survive a power cut as a written file's does (writeFileAtomic).
    const dir = await open(dirname(path), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch (e) {
    const exists = (e as NodeJS.ErrnoException).code === 'EEXIST';
    throw new ConfigError(exists ? `backup ${path} already exists; refusing to overwrite a stock dump` : `cannot write backup ${path}: ${(e as Error).message}`, { step: 'backup' }, { cause: e });
  }
}
