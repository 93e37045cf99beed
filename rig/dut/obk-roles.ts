/**
 * OpenBeken pin roles: the short names of `htmlPinRoleNames` (what templates and `SetPinRole` use)
 * by their IOR_* number. Written twice on purpose: the simulator keeps its own table, so a mistake
 * here cannot hide behind the same mistake there.
 * Indices 0..78 as in OpenBK7231T_App's new_http.c; the later roles of 1.18.299 (up to 98,
 * BL0939_MISO) are not listed, so a template naming one is refused as an unknown role.
 */
export const OBK_ROLE_NAMES: readonly string[] = [
  ' ', 'Rel', 'Rel_n', 'Btn', 'Btn_n', 'LED', 'LED_n', 'PWM', 'WifiLED', 'WifiLED_n',
  'Btn_Tgl_All', 'Btn_Tgl_All_n', 'dInput', 'dInput_n', 'TglChanOnTgl', 'dInput_NoPullUp', 'dInput_NoPullUp_n', 'BL0937SEL', 'BL0937CF', 'BL0937CF1',
  'ADC', 'SM2135DAT', 'SM2135CLK', 'BP5758D_DAT', 'BP5758D_CLK', 'BP1658CJ_DAT', 'BP1658CJ_CLK', 'PWM_n', 'IRRecv', 'IRSend',
  'Btn_NextColor', 'Btn_NextColor_n', 'Btn_NextDimmer', 'Btn_NextDimmer_n', 'AlwaysHigh', 'AlwaysLow', 'UCS1912_DIN', 'SM16703P_DIN', 'Btn_NextTemperature', 'Btn_NextTemperature_n',
  'Btn_ScriptOnly', 'Btn_ScriptOnly_n', 'DHT11', 'DHT12', 'DHT21', 'DHT22', 'CHT83XX_SDA', 'CHT83XX_SCK', 'SHT3X_SDA', 'SHT3X_SCK',
  'SoftSDA', 'SoftSCL', 'SM2235DAT', 'SM2235CLK', 'BridgeFWD', 'BridgeREV', 'Btn_SmartLED', 'Btn_SmartLED_n', 'DoorSnsrWSleep', 'DoorSnsrWSleep_nPup',
  'BAT_ADC', 'BAT_Relay', 'TM1637_DIO', 'TM1637_CLK', 'BL0937SEL_n', 'DoorSnsrWSleep_pd', 'SGP_CLK', 'SGP_DAT', 'ADC_Button', 'GN6932_CLK',
  'GN6932_DAT', 'GN6932_STB', 'TM1638_CLK', 'TM1638_DAT', 'TM1638_STB', 'BAT_Relay_n', 'KP18058_CLK', 'KP18058_DAT', 'DS1820_IO',
];

/** The web app's importer also maps these legacy names (templateParser.js). */
const LEGACY_ALIASES: Record<string, string> = { button: 'Btn', button_n: 'Btn_n', relay: 'Rel', relay_n: 'Rel_n' };

export const IOR = {
  None: 0,
  Relay: 1,
  Button: 3,
  LedWifiInverted: 9,
  Bl0937Sel: 17,
  Bl0937Cf: 18,
  Bl0937Cf1: 19,
  Bl0937SelInverted: 64,
} as const;

/** Role name -> IOR number, case-insensitive as `PIN_ParsePinRoleName`; `None` is 0. Undefined when unknown. */
export function roleIndex(name: string): number | undefined {
  const key = name.trim().toLowerCase();
  if (key === 'none') return 0;
  const canonical = (LEGACY_ALIASES[key] ?? name.trim()).toLowerCase();
  const i = OBK_ROLE_NAMES.findIndex((n) => n.toLowerCase() === canonical);
  return i > 0 ? i : undefined;
}

export function roleName(index: number): string {
  return index === 0 ? 'None' : (OBK_ROLE_NAMES[index] ?? `role#${index}`);
}
