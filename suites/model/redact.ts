/** Keys whose values never reach records, reports or logs (Wi-Fi and web passwords, tokens). */
const SECRET_KEY = /pass(word|wd|phrase)?$|secret|psk|token|credential/i;

/** A deep copy with secret-looking keys replaced; byte arrays and errors are left to the caller. */
export function redactSecrets<T>(value: T, depth = 0): T {
  if (depth > 10 || value === null || typeof value !== 'object' || value instanceof Uint8Array) return value;
  if (Array.isArray(value)) return value.map((v) => redactSecrets(v, depth + 1)) as T;
  if (value instanceof Error) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[k] = SECRET_KEY.test(k) ? '[redacted]' : redactSecrets(v, depth + 1);
  return out as T;
}
