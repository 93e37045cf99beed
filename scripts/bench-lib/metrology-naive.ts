import type { LoadSpec } from '../../rig/jig/jig-config.ts';
import { plugWithRelayClosed } from '../../suites/metering-point.ts';
import { commandText, naiveCommandValue } from '../../suites/metrology/calibration.ts';
import type { Step } from '../../suites/runner/step.ts';
import type { SlotHardware } from '../../suites/slot-hardware.ts';

/**
 * The naive baseline: a hand (or Shelly-style one-point) calibration. The load goes on, some
 * seconds later one reference reading is taken, and at another arbitrary moment `PowerSet` is sent
 * with it, so OpenBeken divides it by whichever window it last latched. `applied` is called right
 * after the plug accepted the command (the bench reads the factor it stored there, for scoring).
 */
export function naiveCalibrationStep(hw: SlotHardware, load: LoadSpec, rnd: () => number, applied: (info: { referenceWatts: number; command: string }) => void): Step {
  return {
    name: `bench baseline: naive PowerSet at ${load.name} (one reference reading, arbitrary moment)`,
    critical: true,
    timeoutMs: 30_000,
    run: async (ctx) => {
      const client = await plugWithRelayClosed(ctx, hw);
      const il = hw.io.interlock;
      await il.setLoad(load.name, true);
      try {
        // An operator waits "a few seconds" for the reading to settle, reads, then types the command.
        await ctx.clock.sleep(2000 + 3000 * rnd(), ctx.signal);
        const ref = await hw.meter.read();
        await ctx.clock.sleep(500 + 2500 * rnd(), ctx.signal);
        const command = commandText('power', naiveCommandValue(ref.watts));
        const reply = await client.cmnd(command);
        ctx.check(`${command} accepted`, reply.code === 200, { code: reply.code, msg: reply.msg });
        applied({ referenceWatts: ref.watts, command });
        return { referenceWatts: ref.watts, command };
      } finally {
        await il.setLoad(load.name, false);
      }
    },
  };
}
