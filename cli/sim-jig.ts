import { ConfigError } from '../rig/core/errors.ts';

export async function runVirtualJigOnPtys(o: { jigPath: string; linkDir: string; seed: number }): Promise<void> {
  throw new ConfigError(`virtual jig on ptys is not available yet (${o.jigPath})`, { step: 'sim' });
}
