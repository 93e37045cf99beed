/**
 * ObkFirmware: the virtual OpenBeken 1.18.299 application on a BK7231N plug (openbeken-http.md §4,
 * reqs 24, 34-37, 39). It runs on a Clock and touches the plug only through the contracts:
 * ObkStorage (config sector + EasyFlash vars), ObkGpio (pins), ObkWifiEnvironment (station network)
 * and, when the template has the BL0937 roles, an ObkEnergyDriver from `createEnergyDriver`.
 *
 *   const fw = new ObkFirmware({ clock, storage, gpio, wifi, mac, createEnergyDriver });
 *   await fw.boot();          // power-on / reset released: runs the boot sequence, resolves when
 *                             // the HTTP server is up (250 ms of firmware time after power-on)
 *   fw.httpAddress();         // { host, port } of the loopback HTTP server (http: false = none;
 *                             // fw.handleHttp(rawRequest) answers without a socket)
 *   await fw.halt();          // power loss: everything stops, NOTHING is saved, pins released
 *   fw.log.lines(), fw.log.onLine(fn)   // Info:MAIN:... lines (the UART2 / TCP 9000 log)
 *
 * Boot sequence (Main_Init): boot count +1 in EasyFlash; safe mode when boot_count - success > 4;
 * config loaded or defaults (names frozen from the MAC) saved at once; outside safe mode: channels at
 * their start values (relay OFF), pins set up, BL0937 autostart (CF+CF1+SEL present, flag 36 clear),
 * commands and /api registered, 25 ms quick tick started; 250 ms delay; Wi-Fi plan (AP after 5 ticks
 * when the SSID is empty or in safe mode, else STA connect after 5 ticks, at once with flag 37);
 * HTTP server; startup command (not in safe mode); the 1 s timer (Main_OnEverySecond: driver tick,
 * boot marked OK once uptime > FullBootTime, AP/connect countdowns, config saved when changed,
 * restart countdown). A reboot (restart N, /api/reboot, /cfg_wifi_set, SafeMode) saves the config
 * and the energy total, leaves Wi-Fi, releases the pins and then calls `onReboot` (the plug hardware
 * decides what boots next); without `onReboot` the firmware boots itself again after
 * `rebootDelayMs`.
 */
import type { Clock } from '../../../rig/core/clock.ts';
import { PlugrigError } from '../../../rig/core/errors.ts';
import { registerCoreCommands, registerEnergyCommands, registerTasmotaCommands } from './builtin-commands.ts';
import { ObkButton } from './button.ts';
import { CHANNEL_MAX, ObkChannels } from './channels.ts';
import { CommandRegistry, type CommandResult, type CommandSource } from './command-registry.ts';
import type {
  ObkConfigData,
  ObkEnergyDriver,
  ObkEnergyDriverOptions,
  ObkGpio,
  ObkRetainedData,
  ObkStorage,
  ObkWifiEnvironment,
} from './contracts.ts';
import { DEFAULT_BUILD, type ObkBuildInfo, type ObkFirmwareHost, type ObkNetworkStatus } from './firmware-host.ts';
import { handleObkHttp } from './http-routes.ts';
import type { ObkHttpFaults } from './http-faults.ts';
import { ObkHttpServer } from './http-server.ts';
import { apMac, formatMacLower, formatMacUpper } from './mac.ts';
import { bootOkSeconds, cloneConfig, defaultConfig, hasFlag, OBK_FLAG } from './obk-config.ts';
import { ObkLog } from './obk-log.ts';
import { IOR, isButtonRole, PLATFORM_GPIO_MAX } from './pin-roles.ts';
import { WifiLedBlinker } from './wifi-led.ts';

export interface ObkHttpOptions {
  host?: string;
  port?: number;
  acceptDelayMs?: number;
  clientDelayMs?: number;
  backlog?: number;
  synRetryMs?: number;
}

export interface ObkFirmwareOptions {
  clock: Clock;
  storage: ObkStorage;
  gpio: ObkGpio;
  wifi: ObkWifiEnvironment;
  /** The STA MAC the SDK reads from the RF sector (0x1D0024). */
  mac: Uint8Array;
  /** H6's BL0937 driver factory; without it the metering driver cannot start (logged). */
  createEnergyDriver?: (options: ObkEnergyDriverOptions) => ObkEnergyDriver;
  /** The HTTP server on a loopback socket (default 127.0.0.1, port 0), or false for none. */
  http?: ObkHttpOptions | false;
  defects?: { httpStall?: boolean };
  /** Transport faults of the plug's HTTP server (kept by the plug across boots). */
  httpFaults?: ObkHttpFaults;
  build?: ObkBuildInfo;
  log?: ObkLog;
  /** START_MS_DELAY (250 ms on BK7231N). */
  startDelayMs?: number;
  /** Signal strength reported once joined, dBm. */
  rssiDbm?: number;
  /** What the temperature formula gives on this unit, °C. */
  chipTemperatureC?: number;
  /** The firmware rebooted itself; the hardware boots what it finds. */
  onReboot?: () => void;
  rebootDelayMs?: number;
}

const QUICK_TICK_MS = 25;
const SAFE_MODE_FAILURES = 4;
const DEFAULT_BSSID = '30:B5:C2:5D:70:72';
const AP_IP = '192.168.4.1';

type WifiState = 'idle' | 'connecting' | 'connected' | 'disconnected' | 'ap';

export class ObkFirmware implements ObkFirmwareHost {
  readonly clock: Clock;
  readonly log: ObkLog;
  readonly mac: Uint8Array;
  readonly build: ObkBuildInfo;
  readonly channels: ObkChannels;
  readonly commands: CommandRegistry;
  readonly #opt: ObkFirmwareOptions;

  #config: ObkConfigData;
  #retained: ObkRetainedData = { bootCount: 0, bootSuccessCount: 0, energyTotalWh: 0, energyTodayWh: 0 };
  #running = false;
  /** Incremented on every boot and shutdown: async work of an older boot sees it changed and stops. */
  #generation = 0;
  #poweredAt = 0;
  #safeMode = false;
  #bootFailures = 0;
  #pendingChanges = 0;
  #bootMarkedOk = false;
  #resetCountdown = 0;
  #openApCountdown = 0;
  #connectCountdown = 0;
  #wifiState: WifiState = 'idle';
  #ip = '0.0.0.0';
  #bssid = DEFAULT_BSSID;
  #wifiChannel = 12;
  #joinAbort: AbortController | undefined;
  #temperature = 0;
  #driver: ObkEnergyDriver | undefined;
  #buttons = new Map<number, ObkButton>();
  #led = new WifiLedBlinker();
  #http: ObkHttpServer | undefined;
  /** The port the first boot bound (port 0 = any): later boots listen on the same one. */
  #httpPort: number | undefined;
  #ledLevel: boolean | undefined;
  #cancels: Array<() => void> = [];

  constructor(options: ObkFirmwareOptions) {
    this.#opt = options;
    this.clock = options.clock;
    this.log = options.log ?? new ObkLog();
    this.mac = Uint8Array.from(options.mac);
    this.build = options.build ?? DEFAULT_BUILD;
    this.#config = defaultConfig(this.mac);
    this.channels = new ObkChannels(
      () => this.#config,
      (m) => this.log.write('Error', 'GEN', m),
    );
    this.channels.onChange((ch) => this.#driveChannelPins(ch));
    this.commands = new CommandRegistry(this.log);
    // Secrets never reach the log (the rig's rule), even where OpenBeken would print them.
    this.log.redact(() => [this.#config.wifiPass, this.#config.pass2, this.#config.webPassword, this.#config.mqttPass]);
  }

  // ---- ObkFirmwareHost ----
  get config(): ObkConfigData {
    return this.#config;
  }
  get safeMode(): boolean {
    return this.#safeMode;
  }
  get running(): boolean {
    return this.#running;
  }
  /** The retained EasyFlash values as the firmware holds them in RAM. */
  get retained(): Readonly<ObkRetainedData> {
    return this.#retained;
  }
  configChanged(): void {
    this.#pendingChanges++;
  }
  uptimeSeconds(): number {
    return this.#running ? Math.floor((this.clock.now() - this.#poweredAt) / 1000) : 0;
  }
  network(): ObkNetworkStatus {
    return {
      ip: this.#wifiState === 'ap' ? AP_IP : this.#wifiState === 'connected' ? this.#ip : '0.0.0.0',
      apMode: this.#wifiState === 'ap',
      connected: this.#wifiState === 'connected',
      bssid: this.#bssid,
      channel: this.#wifiChannel,
      rssiDbm: this.#wifiState === 'connected' ? (this.#opt.rssiDbm ?? -55) : 0,
    };
  }
  /** The open AP while it is up (req 36): SSID = long name, open, channel 1, BSSID = STA MAC ^ 1. */
  accessPoint(): { ssid: string; bssid: string; channel: number; ip: string; open: true } | undefined {
    if (this.#wifiState !== 'ap') return undefined;
    return { ssid: this.#config.longDeviceName, bssid: formatMacUpper(apMac(this.mac)), channel: 1, ip: AP_IP, open: true };
  }
  energyDriver(): ObkEnergyDriver | undefined {
    return this.#driver;
  }
  chipTemperature(): number {
    return this.#temperature;
  }
  powerSave(): boolean {
    return false;
  }
  scheduleRestart(seconds: number): void {
    this.#resetCountdown = seconds > 0 ? seconds : 0;
  }
  forceSafeModeOnNextBoot(): void {
    this.#retained.bootCount += SAFE_MODE_FAILURES + 1;
    this.#opt.storage.saveRetained({ ...this.#retained });
  }
  execute(line: string, source: CommandSource): CommandResult {
    return this.commands.execute(line, source);
  }
  pinsChanged(): void {
    if (!this.#running || this.#safeMode) return;
    this.#setupPins();
  }
  startDriver(name: string): CommandResult {
    const lower = name.toLowerCase();
    if (lower === 'ntp') {
      // Accepted; no NTP server answers on the virtual network, so the time stays unsynced.
      return 'ok';
    }
    if (lower === 'bl0937') {
      if (this.#driver) {
        this.log.write('Info', 'MAIN', 'Driver BL0937 is already running');
        return 'ok';
      }
      this.#startBl0937();
      return 'ok';
    }
    this.log.write('Error', 'MAIN', `Driver ${name} is not known in this build`);
    return 'ok';
  }

  /** Answer one raw HTTP request (what the socket server does after its read); undefined = silent close. */
  handleHttp(raw: string): string | undefined {
    if (!this.#running) return undefined;
    return handleObkHttp(this, raw);
  }

  httpAddress(): { host: string; port: number } | undefined {
    return this.#http?.address();
  }

  /** Power-on (or reset released). Resolves once the HTTP server listens. */
  async boot(): Promise<void> {
    if (this.#running) {
      throw new PlugrigError('E_SIM_STATE', 'ObkFirmware.boot: the firmware is already running (halt() first)', {
        unit: formatMacLower(this.mac),
      });
    }
    const gen = ++this.#generation;
    this.#running = true;
    this.#poweredAt = this.clock.now();
    this.#resetState();
    const storage = this.#opt.storage;
    this.log.write('Info', 'MAIN', 'Main_Init_Before_Delay');
    this.#retained = { ...storage.loadRetained() };
    this.#retained.bootCount++;
    storage.saveRetained({ ...this.#retained });
    this.#bootFailures = this.#retained.bootCount - this.#retained.bootSuccessCount;
    this.#safeMode = this.#bootFailures > SAFE_MODE_FAILURES;
    if (this.#safeMode) this.log.write('Info', 'MAIN', `###### safe mode activated - boot failures ${this.#bootFailures}`);
    const loaded = storage.loadConfig();
    if (loaded) this.#config = cloneConfig(loaded);
    else {
      this.log.write('Info', 'CFG', 'CFG_InitAndLoad: Config crc or ident mismatch. Default config will be loaded.');
      this.#config = defaultConfig(this.mac);
      this.#saveConfigNow();
    }
    this.channels.reset(this.#config.startChannelValues);
    if (!this.#safeMode) this.#initUnsafe();
    this.log.write('Info', 'MAIN', 'Main_Init_Before_Delay done');
    await this.clock.sleep(this.#opt.startDelayMs ?? 250);
    if (gen !== this.#generation) return;
    this.#initAfterDelay();
    if (this.#opt.http !== false) {
      const http = new ObkHttpServer({
        clock: this.clock,
        handle: (raw) => this.handleHttp(raw),
        stalled: () => this.#opt.defects?.httpStall === true,
        ...(this.#opt.httpFaults ? { faults: this.#opt.httpFaults } : {}),
        onHandlerError: (e) => this.log.write('Error', 'HTTP', `handler failed: ${String(e)}`),
        ...this.#opt.http,
        port: this.#httpPort ?? this.#opt.http?.port ?? 0,
      });
      this.#http = http;
      try {
        this.#httpPort = (await http.start()).port;
      } catch (e) {
        await this.#shutdown();
        throw new PlugrigError('E_SIM_HTTP', `virtual OpenBeken: the HTTP server could not listen (${String(e)})`, {
          unit: formatMacLower(this.mac),
        }, { cause: e });
      }
      if (gen !== this.#generation) {
        await http.stop();
        return;
      }
    }
    if (!this.#safeMode && this.#config.initCommandLine !== '') this.#runScript(this.#config.initCommandLine.split(';'));
    this.#every(1000, () => this.#onEverySecond());
    this.log.write('Info', 'MAIN', 'Main_Init_After_Delay done');
  }

  /** Power loss: stop at once. Nothing is saved (unsaved config and energy are lost). */
  async halt(): Promise<void> {
    if (!this.#running) return;
    await this.#shutdown();
  }

  // ---- boot phases ----
  #resetState(): void {
    this.#pendingChanges = 0;
    this.#bootMarkedOk = false;
    this.#resetCountdown = 0;
    this.#openApCountdown = 0;
    this.#connectCountdown = 0;
    this.#wifiState = 'idle';
    this.#ip = '0.0.0.0';
    this.#bssid = DEFAULT_BSSID;
    this.#wifiChannel = 12;
    this.#temperature = 0;
    this.#driver = undefined;
    this.#buttons.clear();
    this.#led = new WifiLedBlinker();
    this.#ledLevel = undefined;
    this.commands.clear();
  }

  /** Main_Init_BeforeDelay_Unsafe. */
  #initUnsafe(): void {
    const c = this.#config;
    const roles = new Set(c.pinRoles.slice(0, PLATFORM_GPIO_MAX));
    const hasSel = roles.has(IOR.BL0937_SEL) || roles.has(IOR.BL0937_SEL_n);
    if (roles.has(IOR.BL0937_CF) && roles.has(IOR.BL0937_CF1) && hasSel && !hasFlag(c, OBK_FLAG.DRV_DISABLE_AUTOSTART)) {
      this.#startBl0937();
    }
    this.#setupPins();
    registerCoreCommands(this.commands, this);
    registerTasmotaCommands(this.commands, this, (lines) => this.#runScript(lines));
    if (this.#driver) registerEnergyCommands(this.commands, this.#driver);
    this.#every(QUICK_TICK_MS, () => this.#quickTick());
  }

  /** Main_Init_After_Delay: the Wi-Fi plan. */
  #initAfterDelay(): void {
    const c = this.#config;
    if (this.#safeMode) this.log.write('Info', 'MAIN', `###### safe mode activated - boot failures ${this.#bootFailures}`);
    if (c.wifiSsid === '' || this.#safeMode) this.#openApCountdown = 5;
    else if (hasFlag(c, OBK_FLAG.WIFI_FAST_CONNECT)) this.#connectNow();
    else this.#connectCountdown = 5;
    this.log.write('Info', 'MAIN', `Using SSID [${c.wifiSsid}]`);
    this.log.write('Info', 'MAIN', `Using Pass [${c.wifiPass}]`); // redacted by the log
  }

  #startBl0937(): void {
    const make = this.#opt.createEnergyDriver;
    if (!make) {
      this.log.write('Error', 'MAIN', 'BL0937 driver is not available in this simulator build');
      return;
    }
    const c = this.#config;
    // PIN_FindPinIndexForRole with the driver's defaults (SEL 24, CF 7, CF1 8) when a role is absent.
    const find = (fallback: number, ...roles: number[]): number => {
      const pin = c.pinRoles.slice(0, PLATFORM_GPIO_MAX).findIndex((r) => roles.includes(r));
      return pin < 0 ? fallback : pin;
    };
    const selN = c.pinRoles.slice(0, PLATFORM_GPIO_MAX).indexOf(IOR.BL0937_SEL_n);
    const sel = selN >= 0 ? selN : find(24, IOR.BL0937_SEL);
    this.#driver = make({
      clock: this.clock,
      gpio: this.#opt.gpio,
      pins: { cf: find(7, IOR.BL0937_CF), cf1: find(8, IOR.BL0937_CF1), sel, selInverted: selN >= 0 },
      config: c,
      configChanged: () => this.configChanged(),
      retained: this.#retained,
      saveRetained: () => {
        if (this.#running) this.#opt.storage.saveRetained({ ...this.#retained });
      },
      relaysOpen: () => {
        for (let ch = 0; ch < CHANNEL_MAX; ch++) if (this.channels.isRelay(ch) && this.channels.get(ch)) return false;
        return true;
      },
      flag: (n) => hasFlag(this.#config, n),
      log: (level, module, message) => this.log.write(level, module, message),
    });
    if (this.commands.has('restart')) registerEnergyCommands(this.commands, this.#driver);
  }

  /** PIN_SetupPins: relays and LEDs follow their channel, buttons sample from now on. */
  #setupPins(): void {
    const c = this.#config;
    const buttons = new Map<number, ObkButton>();
    for (let pin = 0; pin < PLATFORM_GPIO_MAX; pin++) {
      const role = c.pinRoles[pin] ?? 0;
      if (role === IOR.Relay || role === IOR.Relay_n || role === IOR.LED || role === IOR.LED_n) {
        this.#drivePin(pin);
      } else if (isButtonRole(role)) {
        buttons.set(pin, this.#buttons.get(pin) ?? this.#makeButton(pin, role));
      }
    }
    this.#buttons = buttons;
  }

  #drivePin(pin: number): void {
    const role = this.#config.pinRoles[pin];
    const on = this.channels.get(this.#config.pinChannels[pin] ?? 0) !== 0;
    const inverted = role === IOR.Relay_n || role === IOR.LED_n;
    this.#opt.gpio.write(pin, on !== inverted);
  }

  #driveChannelPins(ch: number): void {
    if (!this.#running || this.#safeMode) return;
    const c = this.#config;
    for (let pin = 0; pin < PLATFORM_GPIO_MAX; pin++) {
      const role = c.pinRoles[pin];
      if (c.pinChannels[pin] !== ch) continue;
      if (role === IOR.Relay || role === IOR.Relay_n || role === IOR.LED || role === IOR.LED_n) this.#drivePin(pin);
    }
  }

  #makeButton(pin: number, role: number): ObkButton {
    const c = (): ObkConfigData => this.#config;
    const childLock = (): boolean => {
      if (!hasFlag(c(), OBK_FLAG.BUTTON_DISABLE_ALL)) return false;
      this.log.write('Info', 'GEN', 'Child lock!');
      return true;
    };
    const activeHigh = role === IOR.Button_n || role === IOR.Button_pd_n;
    return new ObkButton(
      {
        onPress: () => {
          this.log.write('Info', 'GEN', `${pin} Button_OnInitialPressDown`);
          if (childLock()) return;
          if (hasFlag(c(), OBK_FLAG.BTN_INSTANTTOUCH)) this.channels.toggle(c().pinChannels[pin] ?? 0);
        },
        onRelease: () => {
          childLock();
        },
        onClick: () => {
          this.log.write('Info', 'GEN', `${pin} key_short_press`);
          if (childLock()) return;
          if (!hasFlag(c(), OBK_FLAG.BTN_INSTANTTOUCH)) this.channels.toggle(c().pinChannels[pin] ?? 0);
        },
        onDoubleClick: () => {
          this.log.write('Info', 'GEN', `${pin} key_double_press`);
          if (childLock()) return;
          this.channels.toggle(c().pinChannels2[pin] ?? 0);
          // app_on_generic_dbl_click: in the first seconds a double click is the Wi-Fi reset gesture.
          if (this.uptimeSeconds() < 5) {
            this.log.write('Info', 'MAIN', 'Double click in first seconds - clearing Wi-Fi (open AP on next boot)');
            c().wifiSsid = '';
            c().wifiPass = '';
            this.configChanged();
          }
        },
        onMultiClick: (n) => this.log.write('Info', 'GEN', `${pin} key_${n}x_press`),
        onHoldStart: () => this.log.write('Info', 'GEN', `${pin} key_long_press_start`),
        onHold: () => this.log.write('Info', 'GEN', `${pin} key_long_press_hold`),
      },
      this.#opt.gpio.read(pin),
      activeHigh,
    );
  }

  // ---- timers ----
  #every(periodMs: number, fn: () => void): void {
    const gen = this.#generation;
    let next = this.clock.now() + periodMs;
    const schedule = (): void => {
      const cancel = this.clock.at(next, () => {
        if (gen !== this.#generation) return;
        next += periodMs;
        schedule();
        fn();
      });
      this.#cancels.push(cancel);
    };
    schedule();
  }

  #quickTick(): void {
    const c = this.#config;
    const times = { shortMs: c.buttonShortTicks * 100, longMs: c.buttonLongTicks * 100, repeatMs: c.buttonRepeatTicks * 100 };
    for (const [pin, button] of this.#buttons) button.sample(this.#opt.gpio.read(pin), QUICK_TICK_MS, times);
    const mode = this.#wifiState === 'ap' ? 'ap' : this.#wifiState === 'connected' ? 'connected' : 'connecting';
    const on = this.#led.tick(mode, QUICK_TICK_MS);
    // The firmware rewrites the level every tick when connected; only changes are visible on a pin.
    if (on === undefined || on === this.#ledLevel) return;
    this.#ledLevel = on;
    for (let pin = 0; pin < PLATFORM_GPIO_MAX; pin++) {
      if (c.pinRoles[pin] === IOR.LED_WIFI) this.#opt.gpio.write(pin, on);
      else if (c.pinRoles[pin] === IOR.LED_WIFI_n) this.#opt.gpio.write(pin, !on);
    }
  }

  /** Main_OnEverySecond. */
  #onEverySecond(): void {
    const gen = this.#generation;
    this.#driver?.onEverySecond();
    if (this.#pendingChanges) this.#saveConfigNow();
    const seconds = this.uptimeSeconds();
    if (!this.#safeMode && this.#bootFailures <= 1) this.#temperature = this.#opt.chipTemperatureC ?? 41.3;
    this.log.write(
      'Info',
      'MAIN',
      `${this.#safeMode ? '[SAFE] ' : ''}Time ${seconds}, idle 0/s, free 79872, bWifi ${this.#wifiState === 'connected' ? 1 : 0}, secondsWithNoPing -1, socks 2/12 `,
    );
    if (!this.#bootMarkedOk) {
      const okAfter = bootOkSeconds(this.#config);
      if (seconds > okAfter) {
        this.log.write('Info', 'MAIN', `Boot complete time reached (${okAfter} seconds)`);
        this.#retained.bootSuccessCount = this.#retained.bootCount;
        this.#opt.storage.saveRetained({ ...this.#retained });
        this.#bootMarkedOk = true;
      }
    }
    if (this.#openApCountdown) {
      if (this.#wifiState === 'connected') this.#leaveWifi();
      this.#openApCountdown--;
      if (this.#openApCountdown === 0) this.#openAccessPoint();
    }
    if (this.#connectCountdown) {
      this.#connectCountdown--;
      if (this.#connectCountdown === 0 && this.#wifiState !== 'connected') this.#connectNow();
    }
    if (this.#resetCountdown) {
      this.#resetCountdown--;
      if (this.#resetCountdown === 0) void this.#reboot(gen);
      else this.log.write('Info', 'MAIN', `Module reboot in ${this.#resetCountdown}...`);
    }
  }

  #saveConfigNow(): void {
    this.#config.changeCounter = (this.#config.changeCounter + 1) & 0xffff;
    this.#opt.storage.saveConfig(cloneConfig(this.#config));
    this.#pendingChanges = 0;
  }

  // ---- Wi-Fi ----
  #openAccessPoint(): void {
    this.#wifiState = 'ap';
    this.log.write('Info', 'MAIN', `Starting open access point ${this.#config.longDeviceName}`);
    this.#opt.wifi.openAccessPoint(this.mac, this.#config.longDeviceName);
  }

  #connectNow(): void {
    const c = this.#config;
    const gen = this.#generation;
    this.log.write('Info', 'MAIN', `Connecting to SSID [${c.wifiSsid}]`);
    this.#wifiState = 'connecting';
    this.#joinAbort?.abort();
    const abort = new AbortController();
    this.#joinAbort = abort;
    this.#opt.wifi.join(this.mac, c.wifiSsid, c.wifiPass, abort.signal).then(
      ({ ip }) => {
        if (gen !== this.#generation || abort.signal.aborted) return;
        this.#wifiState = 'connected';
        this.#ip = ip;
        this.#bssid = DEFAULT_BSSID;
        this.#wifiChannel = 1;
        this.log.write('Info', 'MAIN', 'Main_OnWiFiStatusChange - WIFI_STA_CONNECTED - 4');
      },
      (err: unknown) => {
        if (gen !== this.#generation || abort.signal.aborted) return;
        this.#wifiState = 'disconnected';
        this.#connectCountdown = this.uptimeSeconds() < 30 ? 5 : 15;
        this.log.write('Info', 'MAIN', `Main_OnWiFiStatusChange - WIFI_STA_DISCONNECTED - ${err instanceof Error ? err.message : 'join failed'}`);
      },
    );
  }

  #leaveWifi(): void {
    this.#joinAbort?.abort();
    this.#joinAbort = undefined;
    if (this.#wifiState !== 'idle') this.#opt.wifi.leave(this.mac);
    this.#wifiState = 'idle';
  }

  // ---- scripts (backlog with delays, the startup command) ----
  #runScript(lines: string[]): void {
    const gen = this.#generation;
    void (async () => {
      // The script VM runs its threads from the quick tick, not inside the command that started it.
      await this.clock.sleep(QUICK_TICK_MS);
      for (const raw of lines) {
        if (gen !== this.#generation) return;
        const line = raw.trim();
        const delay = /^(delay_ms|delay_s)\s+(\S+)/i.exec(line);
        if (delay) {
          const n = Number(delay[2]) || 0;
          await this.clock.sleep(delay[1]!.toLowerCase() === 'delay_s' ? n * 1000 : n);
          continue;
        }
        if (/^waitFor\b/i.test(line)) return; // no events to wait for here
        this.execute(line, 'script');
      }
    })();
  }

  // ---- power ----
  async #reboot(gen: number): Promise<void> {
    if (this.#pendingChanges) this.#saveConfigNow();
    this.#driver?.stop();
    this.log.write('Info', 'MAIN', 'Rebooting...');
    await this.#shutdown();
    if (gen + 1 !== this.#generation) return;
    if (this.#opt.onReboot) this.#opt.onReboot();
    else {
      const cancel = this.clock.at(this.clock.now() + (this.#opt.rebootDelayMs ?? 100), () => {
        if (!this.#running) void this.boot();
      });
      this.#cancels.push(cancel);
    }
  }

  async #shutdown(): Promise<void> {
    this.#generation++;
    this.#running = false;
    for (const cancel of this.#cancels) cancel();
    this.#cancels = [];
    this.#leaveWifi();
    this.#driver = undefined;
    this.#buttons.clear();
    this.#opt.gpio.releaseAll();
    const http = this.#http;
    this.#http = undefined;
    await http?.stop();
  }
}
