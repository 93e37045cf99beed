import { Bk7231Flasher, type FlashCopy } from '../rig/bk7231/flasher.ts';
import { ConfigError } from '../rig/core/errors.ts';
import { hostIo } from '../rig/core/clock.ts';
import { confinedPath } from '../rig/core/confined-path.ts';
import { declareMeasurement, stepPolicy, type PlanDefaults } from './plan/declare.ts';
import type { SuiteEntry } from './plan/schema.ts';
import type { SlotHardware } from './slot-hardware.ts';
import { backupFileName, backupRange, saveStockBackup, type StockBackup } from './flash-backup.ts';
import { halfOf, linkStock, type StockLibrary } from './stock-library.ts';
import type { Step, StepContext } from './runner/step.ts';

export type FlashSuiteEntry = Extract<SuiteEntry, { suite: 'flash' }>;

/**
 * Flash the plan's image over the ROM with the UART side connected (mains stays off; the safe-state
 * step isolates the UART again). Limits come from the plan entry.
 */
export function flashSuite(entry: FlashSuiteEntry, hw: SlotHardware, defaults: PlanDefaults): Step[] {
  const image = hw.image;
  if (!image) throw new ConfigError(`plan flashes (suite 'flash') but the run has no image`, { slot: hw.spec.id, step: 'plan' });
  const il = hw.io.interlock;
  const policy = stepPolicy(entry, defaults);
  // Timed by the station's clock; its resolution is far below any flash-time limit, so no budget.
  const flashTime = declareMeasurement({ id: 'flashTime', name: 'flash time', unit: 's' }, entry.limits.flashTime, defaults);
  const outDir = hw.outDir;
  if (entry.backup && !outDir) throw new ConfigError(`plan backs up the stock firmware (flash backup '${entry.backup}') but the run has no output directory`, { slot: hw.spec.id, step: 'plan' });
  // Taken once per run: a retry after a failed write must not dump the half-written flash as 'stock'.
  let backup: StockBackup | undefined;
  // Its bytes: the copy the flasher restores stray writes outside the image from (used only where its CRC equals the chip's).
  let original: FlashCopy | undefined;
  return [
    {
      name: 'connect UART and 3V3 (mains off)',
      critical: true,
      ...policy,
      run: async () => {
        await il.connectUart();
        await il.power3v3(true);
      },
    },
    {
      name: `flash ${image.name}`,
      critical: true,
      ...policy,
      measurements: [flashTime],
      run: async (ctx) => {
        const port = await hw.openUart({ signal: ctx.signal });
        // The jig file's reset for this slot (jig CEN pulse, DTR/RTS, 3V3 power cycle or none).
        // guardOutsideImage: a stray write outside the image (a flipped address bit) fails the unit.
        const flasher = new Bk7231Flasher({ port, reset: hw.io.resetStrategy(), baudRate: hw.baudRate, log: ctx.log, guardOutsideImage: true });
        // The flasher takes no signal: closing its port is what stops it on a timeout or an abort.
        const onAbort = (): void => void port.close().catch(() => undefined);
        ctx.signal.addEventListener('abort', onAbort, { once: true });
        const t0 = ctx.clock.now();
        // The flash time is the flashing's own: the backup's read is left out.
        let backupMs = 0;
        try {
          const info = await flasher.connect();
          ctx.check('chip is a BK7231N', info.chipName === 'BK7231N', { chipId: info.chipId });
          if (info.mac) ctx.unit({ mac: info.mac });
          if (entry.backup && outDir && !backup) {
            // Before unprotect and write: the ROM's CRC-checked read of what the unit came with.
            const r = backupRange(entry.backup, info.flashSize);
            const b0 = ctx.clock.now();
            const kept = await keepStock(ctx, flasher, r, hw.stockLibrary, outDir, backupFileName(hw.spec.id, info.mac));
            backup = kept.backup;
            original = { offset: r.offset, data: kept.data };
            backupMs = ctx.clock.now() - b0;
            ctx.unit({ stockBackup: { region: entry.backup, ...backup } });
            ctx.log.info({ backup: backup.path, bytes: backup.bytes, ...(backup.source ? { source: backup.source } : {}) }, 'stock firmware backed up');
          }
          await flasher.unprotect();
          const w = await flasher.write(image.bytes, image.offset, { diff: entry.diff, ...(original ? { original } : {}) });
          if (hw.romSession) hw.romSession.mac = info.mac ?? undefined;
          // Same ROM session, right after the image (offline provisioning of the OpenBeken config).
          const more: Record<string, unknown> = {};
          for (const hook of hw.romSession?.afterWrite ?? []) Object.assign(more, await hook(flasher, ctx));
          await flasher.reboot();
          ctx.measure('flashTime', (ctx.clock.now() - t0 - backupMs) / 1000);
          ctx.unit({ sectorsWritten: w.sectorsWritten });
          // Stray writes outside the image that were put back (each proved by the chip's CRC).
          if (w.outsideRestored.length) ctx.unit({ outsideRestored: w.outsideRestored.map(({ region, start, length, source, sectors }) => ({ region, start, length, source, sectors })) });
          return { mac: info.mac, flash: info.flashIdHex, written: w.sectorsWritten, unchanged: w.sectorsUnchanged, crc: '0x' + w.crc.toString(16), ...(backup ? { backup } : {}), ...more };
        } finally {
          ctx.signal.removeEventListener('abort', onAbort);
          // After an abort the port may be closing already; a second close is not a new failure.
          await port.close().catch((e: unknown) => {
            if (!ctx.signal.aborted) throw e;
          });
        }
      },
    },
  ];
}

/**
 * The unit's stock dump of range r: without a station library, read over the ROM (CRC-checked) into
 * the run directory. With one, the chip's CheckCRC of the range's two halves first: a stored dump
 * with both CRCs equal (and its SHA-256 re-checked from disk) is the unit's backup, linked into the
 * run directory under the unit's name, and the ~6 s read is skipped; otherwise the chip is read as
 * before and the dump added to the library once. Host file I/O is instantaneous to the model (Clock.io).
 */
async function keepStock(
  ctx: StepContext,
  flasher: Bk7231Flasher,
  r: { offset: number; length: number },
  library: StockLibrary | undefined,
  outDir: string,
  name: string,
): Promise<{ backup: StockBackup; data: Uint8Array }> {
  if (!library) {
    const data = await flasher.read(r.offset, r.length);
    return { backup: await hostIo(ctx.clock, () => saveStockBackup(outDir, name, r.offset, data)), data };
  }
  const h = halfOf(r.length);
  const chip: [number, number] = [await flasher.crc(r.offset, h), await flasher.crc(r.offset + h, r.length - h)];
  const known = await hostIo(ctx.clock, () => library.find(r.offset, r.length, chip));
  const data = known?.data ?? (await flasher.read(r.offset, r.length));
  const stored = known?.stock ?? (await hostIo(ctx.clock, () => library.add(r.offset, data)));
  const path = confinedPath(outDir, name, 'stock backup');
  await hostIo(ctx.clock, () => linkStock(stored.path, path, data));
  const crc = chip.map((c) => '0x' + c.toString(16).padStart(8, '0'));
  return { backup: { path, offset: r.offset, bytes: stored.bytes, sha256: stored.sha256, source: known ? 'crc-match' : 'read', stored: stored.path, chipCrcs: crc }, data };
}
