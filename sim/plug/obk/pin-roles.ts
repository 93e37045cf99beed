/**
 * OpenBeken pin roles: the IOR_* numbers and the short names /api/pins lists as "rolenames" and that
 * SetPinRole and templates use. openbeken-http.md §1.3 only gives the first and the last names and the
 * count (99); the full table below is the htmlPinRoleNames list of OpenBeken 1.18.299 (the commit the
 * reference was checked against), in IOR order, kept as data so a later release can replace it.
 */
export const PIN_ROLE_NAMES: readonly string[] = Object.freeze([
  ' ', 'Rel', 'Rel_n', 'Btn', 'Btn_n', 'LED', 'LED_n', 'PWM', 'WifiLED', 'WifiLED_n',
  'Btn_Tgl_All', 'Btn_Tgl_All_n', 'dInput', 'dInput_n', 'TglChanOnTgl', 'dInput_NoPullUp', 'dInput_NoPullUp_n',
  'BL0937SEL', 'BL0937CF', 'BL0937CF1', 'ADC', 'SM2135DAT', 'SM2135CLK', 'BP5758D_DAT', 'BP5758D_CLK',
  'BP1658CJ_DAT', 'BP1658CJ_CLK', 'PWM_n', 'IRRecv', 'IRSend', 'Btn_NextColor', 'Btn_NextColor_n',
  'Btn_NextDimmer', 'Btn_NextDimmer_n', 'AlwaysHigh', 'AlwaysLow', 'UCS1912_DIN', 'SM16703P_DIN',
  'Btn_NextTemperature', 'Btn_NextTemperature_n', 'Btn_ScriptOnly', 'Btn_ScriptOnly_n', 'DHT11', 'DHT12',
  'DHT21', 'DHT22', 'CHT83XX_SDA', 'CHT83XX_SCK', 'SHT3X_SDA', 'SHT3X_SCK', 'SoftSDA', 'SoftSCL',
  'SM2235DAT', 'SM2235CLK', 'BridgeFWD', 'BridgeREV', 'Btn_SmartLED', 'Btn_SmartLED_n', 'DoorSnsrWSleep',
  'DoorSnsrWSleep_nPup', 'BAT_ADC', 'BAT_Relay', 'TM1637_DIO', 'TM1637_CLK', 'BL0937SEL_n',
  'DoorSnsrWSleep_pd', 'SGP_CLK', 'SGP_DAT', 'ADC_Button', 'GN6932_CLK', 'GN6932_DAT', 'GN6932_STB',
  'TM1638_CLK', 'TM1638_DAT', 'TM1638_STB', 'BAT_Relay_n', 'KP18058_CLK', 'KP18058_DAT', 'DS1820_IO',
  'PWM_ScriptOnly', 'PWM_ScriptOnly_n', 'Counter_f', 'Counter_r', 'IRRecv_nPup', 'StripState', 'StripState_n',
  'HLW_8112_SCSN', 'RCRecv', 'RCRecv_nPup', 'Btn_pd', 'Btn_pd_n', 'TglChanOnTgl_pd', 'ShutterA', 'ShutterB',
  'BtnShutterUp', 'BtnShutterDown', 'BL0939_SCLK', 'BL0939_MOSI', 'BL0939_MISO',
]);

/** The IOR_* numbers the virtual plug acts on (index into PIN_ROLE_NAMES). */
export const IOR = Object.freeze({
  None: 0,
  Relay: 1,
  Relay_n: 2,
  Button: 3,
  Button_n: 4,
  LED: 5,
  LED_n: 6,
  PWM: 7,
  LED_WIFI: 8,
  LED_WIFI_n: 9,
  BL0937_SEL: 17,
  BL0937_CF: 18,
  BL0937_CF1: 19,
  PWM_n: 27,
  BridgeForward: 54,
  BridgeReverse: 55,
  BL0937_SEL_n: 64,
  PWM_ScriptOnly: 79,
  PWM_ScriptOnly_n: 80,
  Button_pd: 89,
  Button_pd_n: 90,
});

/** IOR_Total_Options: the number of roles (SetPinRole rejects anything else). */
export const IOR_TOTAL_OPTIONS = PIN_ROLE_NAMES.length;

/** PLATFORM_GPIO_MAX on BK7231N: /api/pins arrays have this many entries. */
export const PLATFORM_GPIO_MAX = 29;

/** Role by name as SetPinRole parses it: case-insensitive, `None` accepted; undefined when unknown. */
export function parsePinRoleName(name: string): number | undefined {
  if (name.toLowerCase() === 'none') return IOR.None;
  const lower = name.toLowerCase();
  const index = PIN_ROLE_NAMES.findIndex((n) => n.toLowerCase() === lower);
  return index < 0 ? undefined : index;
}

/** Roles that use no channel (PIN_IOR_NofChan = 0), by name so the table stays readable. */
const NO_CHANNEL_ROLES = new Set(
  [
    'SGP_CLK', 'SHT3X_SCK', 'CHT83XX_SCK', 'Btn_Tgl_All', 'Btn_Tgl_All_n', 'BL0937CF', 'BL0937CF1', 'BL0937SEL',
    'WifiLED', 'WifiLED_n', 'BL0937SEL_n', 'RCRecv', 'RCRecv_nPup', 'IRRecv_nPup', 'BL0939_SCLK', 'BL0939_MOSI',
    'BL0939_MISO', 'HLW_8112_SCSN',
    // the ranges IRRecv..DHT11 and SM2135DAT..BP1658CJ_CLK
    ...PIN_ROLE_NAMES.slice(28, 43),
    ...PIN_ROLE_NAMES.slice(21, 27),
  ].map((n) => PIN_ROLE_NAMES.indexOf(n)),
);
/** Roles that use channel and channel2 (buttons: channel2 is toggled on a double click; sensors). */
const TWO_CHANNEL_ROLES = new Set(
  ['Btn', 'Btn_n', 'Btn_pd', 'Btn_pd_n', 'DHT11', 'DHT12', 'DHT21', 'DHT22', 'SHT3X_SDA', 'CHT83XX_SDA', 'SGP_DAT'].map(
    (n) => PIN_ROLE_NAMES.indexOf(n),
  ),
);

/** PIN_IOR_NofChan: how many channels a role uses (decides which channels are "in use"). */
export function channelsUsedByRole(role: number): 0 | 1 | 2 {
  if (TWO_CHANNEL_ROLES.has(role)) return 2;
  if (NO_CHANNEL_ROLES.has(role)) return 0;
  return 1;
}

export function isButtonRole(role: number): boolean {
  return role === IOR.Button || role === IOR.Button_n || role === IOR.Button_pd || role === IOR.Button_pd_n;
}
