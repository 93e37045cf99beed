import { secretForms } from './secret-forms.ts';

/** How many byte streams (port × direction) keep a tail; the oldest is dropped past this. */
const MAX_STREAMS = 64;

/**
 * Finds secrets in a byte stream that arrives in chunks (a serial port's received bytes, traced one
 * chunk a log line), where a per-line scrubber sees only the pieces of a secret split across two lines.
 * Each stream keeps the tail of what it saw (one byte less than the longest form), so a secret that
 * ends in this chunk is found whole and this chunk's part of it masked; and a chunk that ENDS in what
 * could be the start of a secret has that end masked at once, because its line is written before the
 * next chunk can tell (a trace may lose a few bytes at a chunk end; no line carries part of a secret).
 * Forms: every encoding secretForms lists, as bytes (the wire carries the secret itself, or URL/JSON/
 * base64 forms of it in HTTP).
 */
export class SecretStreamScrubber {
  readonly #tails = new Map<string, Uint8Array>();
  #patterns: Uint8Array[] = [];
  #secrets: readonly string[] = [];

  /** Which bytes of `chunk` (the next one of `stream`) belong to a secret or may begin one. */
  mask(stream: string, chunk: Uint8Array, secrets: readonly string[]): boolean[] {
    this.#use(secrets);
    const tail = this.#tails.get(stream) ?? new Uint8Array(0);
    const all = new Uint8Array(tail.length + chunk.length);
    all.set(tail, 0);
    all.set(chunk, tail.length);
    const off = tail.length;
    const masked: boolean[] = new Array<boolean>(chunk.length).fill(false);
    const cover = (from: number, to: number): void => {
      for (let i = Math.max(from, off); i < to; i++) masked[i - off] = true;
    };
    for (const p of this.#patterns) {
      // Whole occurrences that end in this chunk (those ending in the tail were masked with it).
      for (let i = 0; i + p.length <= all.length; i++) if (i + p.length > off && startsAt(all, i, p, p.length)) cover(i, i + p.length);
      // The chunk's end could be the start of the secret: mask the longest such start.
      for (let k = Math.min(p.length - 1, all.length); k > 0; k--) {
        if (startsAt(all, all.length - k, p, k)) {
          cover(all.length - k, all.length);
          break;
        }
      }
    }
    const keep = Math.max(0, ...this.#patterns.map((p) => p.length - 1));
    this.#tails.delete(stream);
    this.#tails.set(stream, all.slice(Math.max(0, all.length - keep)));
    if (this.#tails.size > MAX_STREAMS) this.#tails.delete(this.#tails.keys().next().value!);
    return masked;
  }

  #use(secrets: readonly string[]): void {
    if (secrets.length === this.#secrets.length && secrets.every((s, i) => s === this.#secrets[i])) return;
    this.#secrets = [...secrets];
    const seen = new Set<string>();
    this.#patterns = secrets.flatMap((s) => secretForms(s)).filter((f) => !seen.has(f) && (seen.add(f), true)).map((f) => Buffer.from(f, 'utf8'));
  }
}

function startsAt(hay: Uint8Array, at: number, needle: Uint8Array, n: number): boolean {
  for (let j = 0; j < n; j++) if (hay[at + j] !== needle[j]) return false;
  return true;
}
