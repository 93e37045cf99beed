/**
 * "Getting the bus": spam LinkCheck (one in flight, short read timeout) while the reset strategy
 * runs, so the loop is already polling when the chip leaves reset and opens its short download
 * window. Only replies to LinkChecks sent after reset release count (a reply from before the
 * release would be lost by the reset itself).
 */
import { LinkError, TimeoutError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { CommandChannel } from './command-channel.ts';
import { linkCheck } from './protocol/frame.ts';
import { RESET_METHODS_HINT, type ResetStrategy } from './reset.ts';

export interface LinkOptions {
  reset: ResetStrategy;
  /** How many times to reset before giving up. Default 3. */
  resetAttempts?: number;
  /** How long to keep polling after reset release, per attempt (ms). Default 1000. */
  windowMs?: number;
  /** Read timeout per LinkCheck (ms); also the polling period when the chip is silent. Default 4. */
  pollTimeoutMs?: number;
  /** Overall limit (ms). Default 15000. */
  timeoutMs?: number;
  log?: Logger;
}

export interface LinkResult {
  resetAttempts: number;
  linkChecks: number;
  elapsedMs: number;
  /** Bytes of stale replies drained after linking. */
  drainedBytes: number;
}

/** Quiet time that ends the post-link drain. */
const DRAIN_QUIET_MS = 10;
/** A chip already in its ROM answers the first LinkChecks; only then is a manual reset worth asking for. */
const PROMPT_AFTER_MS = 300;
const DRAIN_MAX_MS = 200;

export async function getBus(channel: CommandChannel, opts: LinkOptions): Promise<LinkResult> {
  const clock = channel.port.clock;
  const attempts = opts.resetAttempts ?? 3;
  const windowMs = opts.windowMs ?? 1000;
  const pollMs = opts.pollTimeoutMs ?? 4;
  const timeoutMs = opts.timeoutMs ?? 15000;
  const started = clock.now();
  const req = linkCheck();
  let checks = 0;
  /** LinkChecks whose reply arrived (a late one is taken by the next wait: the codes are the same). */
  let answered = 0;
  let resets = 0;
  let manual = false;
  const ctx = { clock, setModemLines: (l: { dtr: boolean; rts: boolean }) => channel.port.setModemLines(l) };

  for (let attempt = 1; attempt <= attempts; attempt++) {
    resets = attempt;
    await channel.discard();
    let released = false;
    let prompt: (() => void) | undefined;
    let resetFailure: unknown;
    const resetRun = opts.reset.reset(ctx).then(
      (outcome) => {
        manual = outcome?.manual === true;
        prompt = outcome?.prompt;
        released = true;
      },
      (e: unknown) => {
        resetFailure = e;
        released = true;
      },
    );
    let windowEnd = Infinity;
    let linked = false;
    while (!linked) {
      if (resetFailure) throw resetFailure;
      // Nobody drove a reset: keep polling while the operator or the jig resets the chip.
      if (released && windowEnd === Infinity) windowEnd = manual ? started + timeoutMs : clock.now() + windowMs;
      if (clock.now() >= windowEnd || clock.now() - started >= timeoutMs) break;
      if (prompt && clock.now() - started >= PROMPT_AFTER_MS) {
        prompt();
        prompt = undefined;
      }
      const countsForLink = released;
      await channel.send(req);
      checks++;
      try {
        await channel.awaitReply(req, pollMs, { phase: 'link' });
        answered++;
        linked = countsForLink;
      } catch (e) {
        if (!(e instanceof TimeoutError)) throw e;
      }
    }
    await resetRun;
    if (resetFailure) throw resetFailure;
    if (linked) {
      // The ROM answers every LinkCheck it receives, so a stale reply can only still be on its way
      // while fewer replies came than LinkChecks went out (those of a poll that timed out, or sent
      // into the reset). When every one is answered and nothing else came, there is nothing to drain.
      const drained = checks === answered && channel.inputEmpty ? new Uint8Array(0) : await channel.drain(DRAIN_QUIET_MS, DRAIN_MAX_MS);
      const result = { resetAttempts: attempt, linkChecks: checks, elapsedMs: clock.now() - started, drainedBytes: drained.length };
      opts.log?.info({ ...result, reset: opts.reset.name }, 'linked with bootloader');
      return result;
    }
    if (manual || clock.now() - started >= timeoutMs) break;
    opts.log?.warn({ attempt, linkChecks: checks, reset: opts.reset.name }, 'no LinkCheck reply, resetting again');
  }
  const elapsed = clock.now() - started;
  const message = manual
    ? `no reply to LinkCheck within ${(elapsed / 1000).toFixed(1)} s (${checks} tries) and this port cannot reset the chip: ${RESET_METHODS_HINT}`
    : `no reply to LinkCheck after ${checks} tries and ${resets} reset(s) (${opts.reset.name})`;
  throw new LinkError(message, {
    phase: 'link',
    attempts: resets,
    linkChecks: checks,
    reset: opts.reset.name,
    elapsedMs: elapsed,
    bytesSeen: channel.recentBytes,
    expected: '04 0E 05 01 E0 FC 01 00',
  });
}
