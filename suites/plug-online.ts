import type { ObkHttpClient, ObkInfo } from '../rig/dut/obk-http-client.ts';
import { ConfigError } from '../rig/core/errors.ts';
import type { StepContext } from './runner/step.ts';
import type { SlotHardware } from './slot-hardware.ts';

/** The plug on the station network, answering /api/info with an address (joined, leased). */
export interface OnlinePlug {
  client: ObkHttpClient;
  info: ObkInfo;
}

/**
 * Find the slot's plug and wait until /api/info answers with a station address, all within
 * timeoutMs; `until` adds a condition on the reply (e.g. "up for more than 5 s").
 */
export async function plugOnline(hw: SlotHardware, ctx: StepContext, timeoutMs: number, until?: (info: ObkInfo) => true | string): Promise<OnlinePlug> {
  if (!hw.plug) throw new ConfigError(`slot ${hw.spec.id}: the suite talks to the plug over HTTP, but the station has no way to find it (jig "plug" section)`, { slot: hw.spec.id, step: 'plan' });
  const t0 = ctx.clock.now();
  const client = await hw.plug.connect(hw.romSession?.mac, ctx.signal, { timeoutMs });
  const left = Math.max(1000, timeoutMs - (ctx.clock.now() - t0));
  const info = await client.waitOnline({
    timeoutMs: left,
    what: 'online on the station network',
    until: (i) => (i.ip === '' || i.ip === '0.0.0.0' ? 'no address yet' : until ? until(i) : true),
  });
  return { client, info };
}
