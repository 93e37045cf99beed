import { parseJig, type JigSpec } from '../../rig/jig/jig-config.ts';

/** The reference instrument a bench unit is measured with. */
export type BenchReference = 'wt310e' | 'pzem004t';

/**
 * The bench's load bank: the default metering points (10 W, 60 W, 500 W, 2000 W and an
 * inductive 60 W at PF 0.6). The calibration point is the 2000 W load (the most counts per window).
 */
export const BENCH_LOADS = [
  { name: 'R10', watts: 10, pf: 1 },
  { name: 'R60', watts: 60, pf: 1 },
  { name: 'R500', watts: 500, pf: 1 },
  { name: 'R2000', watts: 2000, pf: 1 },
  { name: 'M60', watts: 60, pf: 0.6 },
] as const;

const LOAD_PINS = [6, 7, 8, 20, 21];

/**
 * A one-slot virtual jig for one bench unit: its own I/O board, its own reference meter whose
 * serial (so its in-class error) is the unit's, and the bench's load bank.
 */
export function benchJig(o: { reference: BenchReference; serial: string }): JigSpec {
  const meter =
    o.reference === 'wt310e'
      ? { kind: 'scpi', model: 'WT310E', address: 'sim:wt0', serial: o.serial, calibrationDate: '2026-06-01' }
      : { kind: 'pzem004t', port: 'sim:pzem0', address: 1, serial: o.serial, calibrationDate: '2026-06-01' };
  return parseJig(
    {
      name: `bench-metrology-${o.reference}`,
      description: 'one metrology-bench unit on the in-process virtual jig',
      ioBoards: { io0: { port: 'sim:io0', baudRate: 57600, heartbeat: 13 } },
      meters: { ref0: meter },
      mains: { volts: 230, hz: 50 },
      interlock: { settleMs: 100 },
      slots: [
        {
          id: 1,
          uart: { port: 'sim:uart1' },
          reset: { method: 'jig-cen', pulseMs: 50 },
          io: 'io0',
          pins: {
            cen: 2,
            power3v3: 3,
            uartIsolation: 4,
            mains: 5,
            loads: BENCH_LOADS.map((l, i) => ({ ...l, pin: LOAD_PINS[i]! })),
            button: 9,
            ledSensor: { analog: 0, threshold: 512 },
            relaySense: 10,
            lid: 11,
            estop: 12,
          },
          meter: { ref: 'ref0', channel: 1 },
        },
      ],
    },
    `bench-metrology (${o.reference})`,
  );
}
