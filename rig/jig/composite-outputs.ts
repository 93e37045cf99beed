import { TransportError } from '../core/errors.ts';
import type { InterlockOutput, InterlockOutputs } from './mains-interlock.ts';

/**
 * InterlockOutputs that sends each output to the backend wired to it (I/O-board pins, a dcttech
 * relay channel, a hub port). Every backend confirms its own writes, in order, so the composite
 * keeps both guarantees per output: FIFO and "resolved = confirmed at the new level".
 * An output with no route rejects, which the interlock treats as a failed write.
 */
export class CompositeInterlockOutputs implements InterlockOutputs {
  readonly #routes: ReadonlyMap<InterlockOutput, InterlockOutputs>;
  readonly #fallback: InterlockOutputs | undefined;

  /** `routes` wins over `fallback`: the fallback (the I/O board) takes every output not routed elsewhere. */
  constructor(routes: ReadonlyMap<InterlockOutput, InterlockOutputs>, fallback?: InterlockOutputs) {
    this.#routes = routes;
    this.#fallback = fallback;
  }

  /** The backend that switches `output`, if any. */
  backendOf(output: InterlockOutput): InterlockOutputs | undefined {
    return this.#routes.get(output) ?? this.#fallback;
  }

  write(output: InterlockOutput, on: boolean): Promise<void> {
    const backend = this.backendOf(output);
    if (!backend) return Promise.reject(new TransportError(`no backend switches ${output}`, { step: 'interlock-write', output }));
    // The pin backend issues its write synchronously: a trip's "all off" reaches the board at once.
    return backend.write(output, on);
  }
}
