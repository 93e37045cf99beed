/**
 * What the interlock knows of one output (a slot's UART, 3V3, load or mains relay; a mains group's
 * shared relay): what was commanded, what the board confirmed, writes in flight. Every safety check
 * of the interlock and of a mains group reads this one shape, so a group's relay is judged exactly as
 * a slot's own.
 */
export interface OutputTrack {
  commanded: boolean;
  confirmed: boolean | 'unknown';
  inflight: number;
  /** Clock time the last off-write was acknowledged. */
  offAckAt: number;
  settled: Promise<void>;
  /** Written at least once since this interlock was created. */
  driven: boolean;
  /** On-writes not yet acknowledged (the relay may be closing right now). */
  inflightOn: number;
}

/** An output nobody has written yet: state unknown until the first write is confirmed. */
export function newOutputTrack(): OutputTrack {
  return { commanded: false, confirmed: 'unknown', inflight: 0, offAckAt: -Infinity, settled: Promise.resolve(), driven: false, inflightOn: 0 };
}
