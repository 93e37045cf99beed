import { ObkFirmware, type ObkHttpOptions } from './obk/firmware.ts';
import { DEFAULT_BUILD } from './obk/firmware-host.ts';
import type { ObkFirmwareFactory, RunningObkFirmware } from './obk-plug.ts';

/** OpenBeken's safe-mode rule (boot_count - success > 4, after this boot's increment), openbeken-http.md §4. */
const SAFE_MODE_FAILURES = 4;

export interface ObkFirmwareFactoryOptions {
  /** Server timing overrides (accept/client delays, backlog); host and port come from the network. */
  http?: Omit<ObkHttpOptions, 'host' | 'port'>;
  /** Every boot's firmware (tests reach the command layer and the log through it). */
  onStart?: (fw: ObkFirmware) => void;
  /** Boot failed (e.g. the port was taken): reported, the plug then serves nothing. */
  onError?: (error: unknown) => void;
}

/**
 * Runs the virtual OpenBeken firmware core (sim/plug/obk/) on a plug: a new ObkFirmware per boot
 * (RAM does not survive a reset; flash does), its HTTP server on the loopback address where the
 * station network reaches this plug: the lease address when the stored config names a network and
 * the boot is not a safe-mode boot, its own AP address otherwise.
 */
export function obkFirmwareFactory(o: ObkFirmwareFactoryOptions = {}): ObkFirmwareFactory {
  return (env): RunningObkFirmware => {
    let http: ObkHttpOptions | false = false;
    if (env.httpAddress) {
      const cfg = env.storage.loadConfig();
      const r = env.storage.loadRetained();
      const safe = r.bootCount + 1 - r.bootSuccessCount > SAFE_MODE_FAILURES;
      http = { ...o.http, ...env.httpAddress(!cfg?.wifiSsid || safe ? 'ap' : 'sta') };
    }
    const fw = new ObkFirmware({
      clock: env.clock,
      storage: env.storage,
      gpio: env.gpio,
      wifi: env.wifi,
      mac: env.mac,
      ...(env.createEnergyDriver ? { createEnergyDriver: env.createEnergyDriver } : {}),
      http,
      defects: {
        get httpStall() {
          return env.httpStalled();
        },
      },
      ...(env.httpFaults ? { httpFaults: env.httpFaults } : {}),
      build: { ...DEFAULT_BUILD, version: env.image.version },
      onReboot: () => env.reboot(),
    });
    o.onStart?.(fw);
    fw.boot().then(
      () => {
        const a = fw.httpAddress();
        if (a) env.httpListening?.(a.port);
      },
      (e: unknown) => {
        // Never silent: a boot that could not listen leaves a plug that refuses every connection.
        fw.log.write('Error', 'HTTP', `boot failed: ${e instanceof Error ? e.message : String(e)}`);
        o.onError?.(e);
      },
    );
    return {
      get safeMode() {
        return fw.safeMode;
      },
      firmware: fw,
      stop: () => fw.halt(),
    };
  };
}
