import { TransportError } from '../rig/core/errors.ts';
import { formatPtyJigTable, startVirtualJigOnPtys, type PtyJig } from '../sim/jig/pty-jig.ts';
import { cliStdout } from './io.ts';

/**
 * Resolves on SIGINT/SIGTERM. The listeners stay installed until dispose(): execa's signal-exit
 * re-raises a signal that finds no other listener, which would kill us in the middle of close().
 */
function untilSignal(): { promise: Promise<NodeJS.Signals>; dispose(): void } {
  let onSignal: (s: NodeJS.Signals) => void = () => undefined;
  const promise = new Promise<NodeJS.Signals>((res) => {
    onSignal = res;
  });
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    promise,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** `plugrig sim --jig <file> --pty --link-dir <dir>`: start, print the table, run until SIGINT/SIGTERM. */
export async function runVirtualJigOnPtys(o: { jigPath: string; linkDir: string; seed: number }): Promise<void> {
  // Listen before starting so a signal during startup still closes every bridge.
  const signal = untilSignal();
  let pj: PtyJig | undefined;
  try {
    pj = await startVirtualJigOnPtys(o);
    const jig = pj.generated;
    cliStdout().write(
      `virtual jig ${jig.name} (${jig.slots.length} slot(s), seed ${o.seed}) on ptys:\n` +
        formatPtyJigTable(pj.devices) +
        `generated jig file: ${pj.jigFile}\n` +
        `station network "${pj.network.ssid}": plugs serve HTTP on port ${pj.network.httpPort} at their lease address in ${pj.network.leasesFile}\n` +
        'running until SIGINT/SIGTERM (Ctrl-C)\n',
    );
    const outcome = await Promise.race([signal.promise, pj.failed]);
    if (outcome instanceof TransportError) throw outcome;
  } finally {
    await pj?.close();
    signal.dispose();
  }
}
