import type { ObkConfigData } from './contracts.ts';
import { IOR, channelsUsedByRole } from './pin-roles.ts';

/** CHANNEL_MAX: OpenBeken's channel values 0..63. */
export const CHANNEL_MAX = 64;

/** ChType_* values that change what a toggle does. */
const CHTYPE = { Default: 0, Toggle: 5, Dimmer: 6, Dimmer256: 35, Dimmer1000: 36 } as const;

/**
 * The channel values (g_channelValues) and OpenBeken's rules over them: a toggle goes to 0 or to the
 * channel's maximum (1 for relays, 100 for PWM/dimmers), a set stores the integer as is (POWER 2 stores
 * 2, which a relay shows as ON). Listeners hear every change (the firmware drives relay and LED pins).
 */
export class ObkChannels {
  readonly #values = new Array<number>(CHANNEL_MAX).fill(0);
  readonly #config: () => ObkConfigData;
  readonly #listeners = new Set<(ch: number, previous: number, value: number) => void>();
  readonly #onRangeError: (message: string) => void;

  constructor(config: () => ObkConfigData, onRangeError: (message: string) => void = () => {}) {
    this.#config = config;
    this.#onRangeError = onRangeError;
  }

  get(ch: number): number {
    return ch >= 0 && ch < CHANNEL_MAX ? this.#values[ch]! : 0;
  }

  set(ch: number, value: number): void {
    if (ch < 0 || ch >= CHANNEL_MAX) {
      this.#onRangeError(`CHANNEL_Set: Channel index ${ch} is out of range <0,${CHANNEL_MAX})`);
      return;
    }
    const previous = this.#values[ch]!;
    const v = value | 0;
    if (previous === v) return;
    this.#values[ch] = v;
    for (const l of this.#listeners) l(ch, previous, v);
  }

  add(ch: number, delta: number): void {
    this.set(ch, this.get(ch) + delta);
  }

  addClamped(ch: number, delta: number, min: number, max: number, wrap: boolean): void {
    let v = this.get(ch) + delta;
    if (wrap) {
      if (v > max) v = min;
      else if (v < min) v = max;
    } else v = Math.min(max, Math.max(min, v));
    this.set(ch, v);
  }

  toggle(ch: number): void {
    if (ch < 0 || ch >= CHANNEL_MAX) {
      this.#onRangeError(`CHANNEL_Toggle: Channel index ${ch} is out of range <0,${CHANNEL_MAX})`);
      return;
    }
    this.set(ch, this.get(ch) === 0 ? this.maxValue(ch) : 0);
  }

  /** CHANNEL_FindMaxValueForChannel. */
  maxValue(ch: number): number {
    const cfg = this.#config();
    for (let pin = 0; pin < cfg.pinRoles.length; pin++) {
      if (cfg.pinChannels[pin] !== ch) continue;
      const role = cfg.pinRoles[pin];
      if (role === IOR.PWM || role === IOR.PWM_n || role === IOR.PWM_ScriptOnly || role === IOR.PWM_ScriptOnly_n) return 100;
    }
    const type = cfg.channelTypes[ch];
    if (type === CHTYPE.Dimmer) return 100;
    if (type === CHTYPE.Dimmer256) return 256;
    if (type === CHTYPE.Dimmer1000) return 1000;
    return 1;
  }

  /** h_isChannelRelay: some pin on this channel is a relay, LED or bridge output. */
  isRelay(ch: number): boolean {
    const cfg = this.#config();
    for (let pin = 0; pin < cfg.pinRoles.length; pin++) {
      if (cfg.pinChannels[pin] !== ch) continue;
      const role = cfg.pinRoles[pin];
      if (role === IOR.Relay || role === IOR.Relay_n || role === IOR.LED || role === IOR.LED_n) return true;
      if (role === IOR.BridgeForward || role === IOR.BridgeReverse) return true;
    }
    return false;
  }

  /** A relay (or a toggle-type channel): the channels POWER and the Tasmota replies count. */
  isPowerChannel(ch: number): boolean {
    return this.isRelay(ch) || this.#config().channelTypes[ch] === CHTYPE.Toggle;
  }

  /** CHANNEL_HasChannelPinWithRoleOrRole(ch, Rel, Rel_n). */
  hasRelayPin(ch: number): boolean {
    const cfg = this.#config();
    for (let pin = 0; pin < cfg.pinRoles.length; pin++) {
      if (cfg.pinChannels[pin] !== ch) continue;
      if (cfg.pinRoles[pin] === IOR.Relay || cfg.pinRoles[pin] === IOR.Relay_n) return true;
    }
    return false;
  }

  /** CHANNEL_IsInUse: a channel type is set, or a roled pin uses it as channel (or channel2). */
  isInUse(ch: number): boolean {
    const cfg = this.#config();
    if ((cfg.channelTypes[ch] ?? 0) !== CHTYPE.Default) return true;
    for (let pin = 0; pin < cfg.pinRoles.length; pin++) {
      const role = cfg.pinRoles[pin] ?? 0;
      if (role === IOR.None) continue;
      const used = channelsUsedByRole(role);
      if (used >= 1 && cfg.pinChannels[pin] === ch) return true;
      if (used >= 2 && cfg.pinChannels2[pin] === ch) return true;
    }
    return false;
  }

  onChange(listener: (ch: number, previous: number, value: number) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Power-on: every channel at its start value (0 unless SetStartValue; -1 "remember" starts at 0 here). */
  reset(startValues: readonly number[]): void {
    for (let ch = 0; ch < CHANNEL_MAX; ch++) {
      const start = startValues[ch] ?? 0;
      this.#values[ch] = start > 0 ? start : 0;
    }
  }
}
