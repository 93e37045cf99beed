import { ConfigError } from '../../rig/core/errors.ts';
import { BL0937_DEFECT_NAMES, bl0937Defects } from './bl0937/defects.ts';
import type { ObkPlugDefects } from './obk-plug.ts';

/**
 * Defect names as a virtual jig file spells them (`"sim": {"defects": [...]}` per slot) and what
 * each does to the unit. 'image-does-not-boot' is the chip's (VirtualBk7231 appDoesNotBoot).
 */
export const PLUG_DEFECT_NAMES = [
  'relay-stuck-open',
  'relay-stuck-closed',
  'button-open',
  'led-dead',
  ...BL0937_DEFECT_NAMES,
  'image-does-not-boot',
  'wifi-never-joins',
  'boot-loop',
  'http-stalls',
] as const;
export type PlugDefectName = (typeof PLUG_DEFECT_NAMES)[number];

export interface ParsedPlugDefects {
  plug: ObkPlugDefects;
  appDoesNotBoot: boolean;
}

export function parsePlugDefects(names: readonly string[], where = 'defects'): ParsedPlugDefects {
  const unknown = names.filter((n) => !(PLUG_DEFECT_NAMES as readonly string[]).includes(n));
  if (unknown.length > 0) {
    throw new ConfigError(`${where}: unknown defect ${unknown.map((u) => `"${u}"`).join(', ')} (known: ${PLUG_DEFECT_NAMES.join(', ')})`, {
      step: 'virtual-plug',
      known: [...PLUG_DEFECT_NAMES],
    });
  }
  const has = (n: PlugDefectName): boolean => names.includes(n);
  if (has('relay-stuck-open') && has('relay-stuck-closed')) throw new ConfigError(`${where}: the relay cannot be stuck open and closed`, { step: 'virtual-plug' });
  if (has('sel-stuck-high') && has('sel-stuck-low')) throw new ConfigError(`${where}: SEL cannot be stuck high and low`, { step: 'virtual-plug' });
  const bl = bl0937Defects(names.filter((n) => (BL0937_DEFECT_NAMES as readonly string[]).includes(n)));
  const plug: ObkPlugDefects = {
    ...(has('relay-stuck-open') ? { relay: 'stuck-open' as const } : has('relay-stuck-closed') ? { relay: 'stuck-closed' as const } : {}),
    ...(has('button-open') ? { buttonOpen: true } : {}),
    ...(has('led-dead') ? { ledDead: true } : {}),
    ...(Object.keys(bl).length > 0 ? { bl0937: bl } : {}),
    ...(has('boot-loop') ? { bootLoop: true } : {}),
    ...(has('http-stalls') ? { httpStalls: true } : {}),
    ...(has('wifi-never-joins') ? { wifiNeverJoins: true } : {}),
  };
  return { plug, appDoesNotBoot: has('image-does-not-boot') };
}
