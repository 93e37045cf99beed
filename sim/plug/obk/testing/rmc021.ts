/**
 * The RMC021 template (openbeken-bl0937.md intro) applied to a config, and a firmware wired to the
 * in-memory fakes: the starting point of the firmware's own tests and a quick plug for other tests.
 */
import type { Clock } from '../../../../rig/core/clock.ts';
import type { ObkConfigData } from '../contracts.ts';
import { ObkFirmware, type ObkFirmwareOptions } from '../firmware.ts';
import { defaultConfig } from '../obk-config.ts';
import { IOR } from '../pin-roles.ts';
import { FakeEnergyDriver, FakeGpio, FakeWifi, MemoryStorage } from './fakes.ts';

export const TEST_MAC = Uint8Array.from([0xc8, 0x47, 0x8c, 0x1a, 0x2b, 0x3c]);

/** P6 CF1, P7 CF, P8 WifiLED_n, P10 Btn;1, P24 SEL, P26 Rel;1, flags 1024, startDriver NTP. */
export function rmc021Config(mac: Uint8Array = TEST_MAC, wifi?: { ssid: string; pass: string }): ObkConfigData {
  const c = defaultConfig(mac);
  const pins: Array<[number, number, number]> = [
    [6, IOR.BL0937_CF1, 0],
    [7, IOR.BL0937_CF, 0],
    [8, IOR.LED_WIFI_n, 0],
    [10, IOR.Button, 1],
    [24, IOR.BL0937_SEL, 0],
    [26, IOR.Relay, 1],
  ];
  for (const [pin, role, ch] of pins) {
    c.pinRoles[pin] = role;
    c.pinChannels[pin] = ch;
  }
  c.genericFlags = 1024;
  c.initCommandLine = 'startDriver NTP';
  if (wifi) {
    c.wifiSsid = wifi.ssid;
    c.wifiPass = wifi.pass;
  }
  return c;
}

export interface TestPlug {
  fw: ObkFirmware;
  storage: MemoryStorage;
  gpio: FakeGpio;
  wifi: FakeWifi;
  drivers: FakeEnergyDriver[];
}

export function createTestPlug(
  clock: Clock,
  options: { config?: ObkConfigData | null; firmware?: Partial<ObkFirmwareOptions> } = {},
): TestPlug {
  const config = options.config === null ? undefined : (options.config ?? rmc021Config(TEST_MAC, { ssid: 'rig-net', pass: 'rig-pass' }));
  const storage = new MemoryStorage(clock, config);
  const gpio = new FakeGpio(clock);
  const wifi = new FakeWifi(clock);
  const drivers: FakeEnergyDriver[] = [];
  const fw = new ObkFirmware({
    clock,
    storage,
    gpio,
    wifi,
    mac: TEST_MAC,
    http: false,
    createEnergyDriver: (o) => {
      const d = new FakeEnergyDriver(o);
      drivers.push(d);
      return d;
    },
    ...options.firmware,
  });
  return { fw, storage, gpio, wifi, drivers };
}
