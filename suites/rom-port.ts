import type { StepContext } from './runner/step.ts';
import type { SlotHardware } from './slot-hardware.ts';

type RomPort = Awaited<ReturnType<SlotHardware['openUart']>>;

/**
 * The slot's UART opened for one ROM session, for `body`. The flasher takes no signal: the step's abort
 * (its timeout, the slot's abort) closes the port, which is what stops it. At the end the port is closed;
 * after an abort it may be closing already, so a second close is not a new failure.
 */
export async function withRomPort<T>(hw: Pick<SlotHardware, 'openUart'>, ctx: Pick<StepContext, 'signal'>, body: (port: RomPort) => Promise<T>): Promise<T> {
  const port = await hw.openUart({ signal: ctx.signal });
  const onAbort = (): void => void port.close().catch(() => undefined);
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  try {
    return await body(port);
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
    await port.close().catch((e: unknown) => {
      if (!ctx.signal.aborted) throw e;
    });
  }
}
