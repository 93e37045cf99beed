/**
 * Tells the runner that a slot's step is waiting for something that is not the step being slow (its
 * mains group's partners, at the shared relay's barrier): the step's timeout stands still meanwhile.
 * What waits keeps a bound of its own (the barrier's); begin/end nest.
 */
export class StepPause {
  #depth = 0;
  readonly #listeners = new Set<(paused: boolean) => void>();

  get paused(): boolean {
    return this.#depth > 0;
  }

  begin(): void {
    if (this.#depth++ === 0) for (const l of [...this.#listeners]) l(true);
  }

  end(): void {
    if (this.#depth === 0) return;
    if (--this.#depth === 0) for (const l of [...this.#listeners]) l(false);
  }

  /** Be told when the pause begins (true) and ends (false); returns the unsubscribe. */
  subscribe(listener: (paused: boolean) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
