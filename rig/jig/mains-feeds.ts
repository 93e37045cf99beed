import type { JigSpec } from './jig-config.ts';

/** A source impedance as its resistance and reactance at the supply's nominal frequency, Ω. */
export interface FeedImpedance {
  ohms: number;
  xOhms: number;
}

/** IEC 60725's reference impedance for a 230 V phase + neutral: 0.4 Ω + j0.25 Ω at 50 Hz. */
export const IEC_60725_REFERENCE: Readonly<FeedImpedance> = Object.freeze({ ohms: 0.4, xOhms: 0.25 });

/** One mains feed of a jig: the slots whose plugs hang on it and the impedance of its source. */
export interface MainsFeed {
  name: string;
  slots: readonly number[];
  impedance: Readonly<FeedImpedance>;
}

/** The feed every slot hangs on when the jig file names none. */
export const DEFAULT_FEED = 'mains';

/**
 * The jig's mains feeds as its file states them (`mains.feeds`, each with its `impedance` or the
 * jig's `mains.impedance`, else IEC 60725's reference); without `feeds`, every slot on one feed.
 * A load switched on one feed steps the voltage of that feed's other slots only: the physics (the
 * virtual jig's mains networks) and the station's expectations (its supply log) both read this.
 */
export function mainsFeeds(jig: Pick<JigSpec, 'mains' | 'slots'>): MainsFeed[] {
  const base = jig.mains.impedance ?? IEC_60725_REFERENCE;
  const feeds = jig.mains.feeds;
  if (!feeds) return [{ name: DEFAULT_FEED, slots: jig.slots.map((s) => s.id), impedance: base }];
  return Object.entries(feeds).map(([name, f]) => ({ name, slots: [...f.slots], impedance: f.impedance ?? base }));
}
