/**
 * OpenBeken release file names, e.g. `OpenBK7231N_QIO_1.18.42.bin`, `OpenBK7231T_UA_1.17.551.bin`,
 * `OpenBK7231N_1.18.42.rbl`, `OpenBK7231N_UG_1.18.42.bin`, and other platforms' builds
 * (`OpenBK7238_…`, `OpenBL602_…`, `OpenW800_…`), which are recognised but foreign to this rig.
 * Feature variants append `_<variant>` after the version and ALT builds insert `_ALT` after the platform
 * (openbeken-bl0937.md §8.1).
 */
import { basename } from 'node:path';
import { BEKEN_CHIPS, type BekenChip } from './flash-layout.ts';

/**
 * qio: full-flash image (bootloader + app); ua: app partition only; ug: OTA package in .bin form;
 * rbl: OTA package; unknown: an OpenBeken name without a packaging tag.
 */
export type ImagePackaging = 'qio' | 'ua' | 'ug' | 'rbl' | 'unknown';

export interface ParsedImageName {
  /** Platform as spelled in the name, upper-cased: 'BK7231N', 'BK7238', 'BL602', 'W800', … */
  platform: string;
  /** The platform if this rig can flash it over the Beken UART protocol. */
  chip?: BekenChip;
  /** True for other platforms' builds: never flash them on a BK7231. */
  foreign: boolean;
  packaging: ImagePackaging;
  /** Version without a leading "v", e.g. '1.18.42' or '1.18.42-rc1'. */
  version: string;
  /** Feature variant after the version (`berry`, `tuyaMCU`, …); undefined for the default build. */
  variant?: string;
  /** `OpenBK7231N_ALT_…`: built from the alternative Beken SDK tree. */
  alt: boolean;
}

/** Variants built with `#undef ENABLE_DRIVER_BL0937` (OpenBeken `src/obk_config.h`): no metering on a BL0937 plug. */
export const VARIANTS_WITHOUT_BL0937: readonly string[] = ['tuyamcu', 'irremoteesp', 'sensors', 'battery', 'hlw8112'];

const PATTERN =
  /^Open([A-Za-z0-9]+?)(_ALT)?(?:_(QIO|UA|UG))?_v?(\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?)(?:_([A-Za-z0-9]+))?\.(bin|rbl|img)$/i;

/** Parse a (path or) file name; undefined if it is not an OpenBeken release name. */
export function parseImageName(fileName: string): ParsedImageName | undefined {
  const m = PATTERN.exec(basename(fileName));
  if (!m) return undefined;
  const [, rawPlatform, alt, tag, version, variant, ext] = m;
  const platform = rawPlatform.toUpperCase();
  const chip = (BEKEN_CHIPS as readonly string[]).includes(platform) ? (platform as BekenChip) : undefined;
  const packaging: ImagePackaging =
    ext.toLowerCase() === 'rbl' ? 'rbl' : tag ? (tag.toLowerCase() as 'qio' | 'ua' | 'ug') : 'unknown';
  return { platform, chip, foreign: chip === undefined, packaging, version, variant, alt: alt !== undefined };
}
