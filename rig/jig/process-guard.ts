import { RealClock, type Clock } from '../core/clock.ts';
import type { Logger } from '../core/log.ts';
import type { TripReason } from './mains-interlock.ts';

/** Anything that can be tripped to its safe state (a MainsInterlock). */
export interface Trippable {
  emergencyOff(reason: TripReason, detail?: string): Promise<void>;
}

/** The part of `process` the guard uses (a fake in tests). */
export interface GuardedProcess {
  on(event: string, fn: (arg: unknown) => void): unknown;
  off(event: string, fn: (arg: unknown) => void): unknown;
  exit(code?: number): void;
}

export interface ProcessGuardOptions {
  proc?: GuardedProcess;
  clock?: Clock;
  /** How long a signal/exception waits for the boards to confirm the safe state before exiting. */
  flushMs?: number;
  log?: Logger;
}

const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

/**
 * Drive every interlock to the safe state on SIGINT/SIGTERM/SIGHUP, an uncaught exception or
 * rejection, and process exit. Signals and exceptions wait up to flushMs for the boards' acks, then
 * exit (installing the listeners replaces Node's default exit). On 'exit' only the synchronous issue
 * happens: a serial write queued there may not leave the process, so the signal path is the one to
 * rely on, with the hardware lid/E-stop chain behind it. Returns an uninstall function.
 */
export function installProcessGuard(targets: () => Iterable<Trippable>, options: ProcessGuardOptions = {}): () => void {
  // Node's overloaded `process.on` signatures do not unify with the narrow interface; it is one.
  const proc = options.proc ?? (process as unknown as GuardedProcess);
  const clock = options.clock ?? new RealClock();
  const flushMs = options.flushMs ?? 500;
  let exiting = false;

  const tripAll = (reason: TripReason, detail: string): Promise<void> => {
    const acks: Promise<void>[] = [];
    for (const t of targets()) acks.push(t.emergencyOff(reason, detail));
    return Promise.race([Promise.allSettled(acks).then(() => undefined), clock.sleep(flushMs)]);
  };
  const exitAfter = (reason: TripReason, detail: string, code: number): void => {
    const flushed = tripAll(reason, detail);
    if (exiting) return;
    exiting = true;
    void flushed.then(() => proc.exit(code));
  };

  const onSignal = (signal: string) => (): void => exitAfter('signal', signal, SIGNAL_EXIT[signal] ?? 1);
  const signals = Object.keys(SIGNAL_EXIT).map((s) => [s, onSignal(s)] as const);
  const onException = (e: unknown): void => {
    options.log?.fatal({ err: e }, 'uncaught error: driving the jig to its safe state');
    if (!options.log) console.error(e);
    exitAfter('uncaught-exception', e instanceof Error ? e.message : String(e), 1);
  };
  const onExit = (): void => void tripAll('process-exit', 'exit');

  for (const [s, fn] of signals) proc.on(s, fn);
  proc.on('uncaughtException', onException);
  proc.on('unhandledRejection', onException);
  proc.on('exit', onExit);
  return () => {
    for (const [s, fn] of signals) proc.off(s, fn);
    proc.off('uncaughtException', onException);
    proc.off('unhandledRejection', onException);
    proc.off('exit', onExit);
  };
}
