import { InterlockError } from '../rig/core/errors.ts';
import type { SlotIo } from '../rig/jig/slot-io.ts';
import type { Step } from './runner/step.ts';

/** First step of every slot: the jig is closed and in its safe state before anything is switched. */
export function jigReadyStep(io: SlotIo, slot: number): Step {
  return {
    name: 'jig ready (lid closed, E-stop released, safe state)',
    critical: true,
    timeoutMs: 30_000,
    run: async (ctx) => {
      const il = io.interlock;
      await il.safeState();
      const st = il.state();
      const lid = io.components.lidClosed();
      const estop = io.components.estopPressed();
      ctx.check('lid closed', lid === true, { lid });
      ctx.check('E-stop released', estop === false, { estop });
      if (lid !== true || estop !== false) throw new InterlockError('close the lid and release the E-stop', { slot, step: 'jig ready' });
      return { interlock: st.fault ? `fault: ${st.fault.reason}` : 'ok' };
    },
  };
}

/** Last step of every slot, after every cleanup, whatever happened: mains off, loads off, UART isolated. */
export function safeStateStep(io: SlotIo): Step {
  return {
    name: 'safe state (mains off, loads off, UART isolated)',
    kind: 'safe-state',
    timeoutMs: 30_000,
    run: async (ctx) => {
      const il = io.interlock;
      await il.safeState();
      const st = il.state();
      ctx.check('mains off', st.mains === 'off', { mains: st.mains });
      ctx.check('loads off', Object.values(st.loads).every((l) => l === 'off'), { loads: st.loads });
      ctx.check('UART isolated and 3V3 off', st.uart === 'off' && st.power3v3 === 'off', { uart: st.uart, power3v3: st.power3v3 });
    },
  };
}
