import { createRequire } from 'node:module';
import { join } from 'node:path';
import type cliProgressModule from 'cli-progress';
import type { FlashProgress } from '../rig/bk7231/flasher.ts';
import { PACKAGE_ROOT } from '../rig/core/package-root.ts';
import { cliStderr } from './io.ts';

/** cli-progress is loaded only when a bar is drawn (a terminal): piped and scripted runs never pay for it. */
let cliProgress: typeof cliProgressModule | undefined;
function loadCliProgress(): typeof cliProgressModule {
  cliProgress ??= createRequire(join(PACKAGE_ROOT, 'package.json'))('cli-progress') as typeof cliProgressModule;
  return cliProgress;
}

/**
 * Progress bar on stderr (stdout stays clean for --json): one bar per phase with bytes/s and ETA.
 * Silent when stderr is not a terminal unless forced, so logs and CI output stay readable.
 */
export class PhaseProgress {
  #bar: cliProgressModule.SingleBar | undefined;
  #phase = '';
  #startedAt = 0;
  readonly #enabled: boolean;

  constructor(enabled = Boolean(cliStderr().isTTY)) {
    this.#enabled = enabled;
  }

  update = (p: FlashProgress): void => {
    if (!this.#enabled || p.total <= 0) return;
    if (p.phase !== this.#phase) {
      this.stop();
      this.#phase = p.phase;
      this.#startedAt = performance.now();
      const bars = loadCliProgress();
      this.#bar = new bars.SingleBar(
        {
          stream: process.stderr, // only when the CLI stderr is a terminal, which is the process's
          format: `${p.phase.padEnd(8)} [{bar}] {percentage}% {doneK}/{totalK} KiB {rate} KiB/s ETA {eta_formatted}`,
          hideCursor: true,
          etaBuffer: 20,
        },
        bars.Presets.shades_classic,
      );
      this.#bar.start(p.total, 0, { doneK: 0, totalK: (p.total / 1024).toFixed(0), rate: '-' });
    }
    const secs = (performance.now() - this.#startedAt) / 1000;
    this.#bar?.update(p.done, {
      doneK: (p.done / 1024).toFixed(0),
      totalK: (p.total / 1024).toFixed(0),
      rate: secs > 0.05 ? (p.done / 1024 / secs).toFixed(1) : '-',
    });
  };

  stop(): void {
    this.#bar?.stop();
    this.#bar = undefined;
  }
}
