/**
 * Secrets (Wi-Fi and web passwords) never reach logs, reports, records or error messages. Requests
 * are described for humans only through these functions.
 */

/** Commands whose argument is a secret (OpenBeken console: cmd_tasmota.c, new_mqtt.c, http). */
const SECRET_COMMANDS = /^(\s*)(password1|password2|mqttpassword|webpassword|setwebpassword)\b.*$/i;
/** HTTP paths whose whole query string is secret-bearing. */
const SECRET_PATHS = ['/cfg_wifi_set', '/cfg_mqtt_set', '/cfg_webapp_set'];
export const REDACTED = '***';

/** `Password1 hunter2` -> `Password1 ***`, also inside `backlog a; Password1 x; b`. */
export function redactCommand(command: string, secrets: readonly string[] = []): string {
  const parts = command.split(';').map((p) => p.replace(SECRET_COMMANDS, (_m, sp: string, name: string) => `${sp}${name} ${REDACTED}`));
  return scrubText(parts.join(';'), secrets);
}

/** A request path for logs and errors: secret-bearing query strings dropped, /cm commands redacted. */
export function redactPath(path: string, secrets: readonly string[] = []): string {
  const q = path.indexOf('?');
  const base = q < 0 ? path : path.slice(0, q);
  if (q >= 0 && SECRET_PATHS.includes(base)) return `${base}?<redacted>`;
  if (base === '/cm' && q >= 0) {
    const cmnd = new URLSearchParams(path.slice(q + 1)).get('cmnd');
    if (cmnd !== null) return `/cm?cmnd=${JSON.stringify(redactCommand(cmnd, secrets))}`;
  }
  return scrubText(path, secrets);
}

/** Replace every occurrence of a known secret value (and its URL-encoded form). */
export function scrubText(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) {
    if (s.length === 0) continue;
    for (const form of new Set([s, encodeURIComponent(s), new URLSearchParams({ x: s }).toString().slice(2)])) out = out.split(form).join(REDACTED);
  }
  return out;
}

/** Bytes with every occurrence of a secret overwritten by `***` (for bytesSeen in errors). */
export function scrubBytes(bytes: Uint8Array, secrets: readonly string[]): Uint8Array {
  if (secrets.every((s) => s.length === 0)) return bytes;
  const text = Buffer.from(bytes).toString('latin1');
  const utf8Secrets = secrets.map((s) => Buffer.from(s, 'utf8').toString('latin1'));
  return new Uint8Array(Buffer.from(scrubText(text, utf8Secrets), 'latin1'));
}
