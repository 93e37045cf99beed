import type { FlashPhase, FlashProgress } from '../rig/bk7231/flasher.ts';

export type FlashStage = 'start' | 'link' | 'unprotect' | 'backup' | 'write' | 'reboot' | 'done';

const hex = (n: number): string => '0x' + n.toString(16);

/**
 * What a `plugrig flash` has done to the chip so far, to tell the operator what an interruption left
 * behind: unchanged, unprotected, partly erased/written (re-flash), written but unverified.
 */
export class FlashState {
  stage: FlashStage = 'start';
  #phase: FlashPhase | undefined;
  #done = 0;
  #total = 0;
  /** Set once an erase, write or repair started: from then on the region's old content is gone. */
  #touched = false;

  constructor(
    private readonly offset: number,
    private readonly length: number,
    /** A diff flash writes only some sectors: progress bytes are not addresses then. */
    private readonly diff = false,
  ) {}

  progress(p: FlashProgress): void {
    this.#phase = p.phase;
    this.#done = p.done;
    this.#total = p.total;
    if (p.phase === 'erase' || p.phase === 'write' || p.phase === 'repair') this.#touched = true;
  }

  /** One sentence: where the flash stopped and what the chip holds now. */
  describe(): string {
    const region = `${hex(this.offset)}..${hex(this.offset + this.length)}`;
    switch (this.stage) {
      case 'start':
        return 'before anything was sent to the chip: the chip is unchanged';
      case 'link':
        return 'while linking to the ROM bootloader: the flash is unchanged';
      case 'unprotect':
        return 'while clearing the flash block protection: the flash content is unchanged (its status register may be unprotected)';
      case 'backup':
        return 'during the backup read: the flash is unchanged and no backup file was written';
      case 'reboot':
        return `after the image was written and verified (${region}): only the reboot into it may be missing; power-cycle the plug`;
      case 'done':
        return 'after the flash completed';
      case 'write':
        break;
    }
    if (!this.#touched) return `while comparing the region ${region} before writing: the flash is unchanged`;
    if (this.#phase === 'verify') {
      return `while verifying ${region}: every sector was written but the CRC check did not finish; re-flash (or flash again with --diff) before trusting it`;
    }
    // Without --diff the flasher erases and writes the region in address order, so bytes done ≈ address.
    const sequential = !this.diff && (this.#phase === 'erase' || this.#phase === 'write');
    const at = sequential ? ` near ${hex(this.offset + Math.min(this.#done, this.length))}` : '';
    const pct = this.#total > 0 ? ` (${((this.#done / this.#total) * 100).toFixed(0)} % of the ${this.#phase})` : '';
    return `during the ${this.#phase ?? 'write'}${at}${pct}: the region ${region} is incomplete and will not boot; re-flash it (the bootloader and RF sector were not touched)`;
  }
}

const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

/**
 * Replace Node's silent exit on SIGINT/SIGTERM/SIGHUP with `report` (bounded to `flushMs`), then exit with
 * 128 + the signal number. A second signal exits at once. Returns the uninstall function.
 */
export function onInterrupt(report: (signal: string) => Promise<void>, flushMs = 2000): () => void {
  let busy = false;
  const handlers = Object.entries(SIGNAL_EXIT).map(([signal, code]) => {
    const fn = (): void => {
      if (busy) process.exit(code);
      busy = true;
      const timer = new Promise<void>((resolve) => setTimeout(resolve, flushMs).unref());
      void Promise.race([report(signal).catch(() => undefined), timer]).then(() => process.exit(code));
    };
    process.on(signal, fn);
    return [signal, fn] as const;
  });
  return () => {
    for (const [signal, fn] of handlers) process.off(signal, fn);
  };
}
