/**
 * Wi-Fi and web credentials for provisioning. Passwords come from the environment or from a
 * secrets file named in the jig (KEY=VALUE lines, `#` comments), never from the jig file itself,
 * and never appear in logs, reports, unit records or error messages: callers pass `secrets` to
 * every client and redactor.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../core/errors.ts';
import { redactInLogs } from '../core/log.ts';

export const SECRET_KEYS = { wifiSsid: 'PLUGRIG_WIFI_SSID', wifiPass: 'PLUGRIG_WIFI_PASS', webPassword: 'PLUGRIG_WEB_PASS' } as const;

export interface ProvisioningSecrets {
  wifi?: { ssid: string; pass: string };
  webPassword?: string;
  /** Every secret value, for redaction. */
  secrets: string[];
  /** Where each came from, for messages ("environment", "secrets file x") — never the values. */
  sources: string[];
}

/** Parse KEY=VALUE lines; values may be quoted with "..." or '...'. */
export function parseSecretsFile(text: string, path: string): Record<string, string> {
  const out: Record<string, string> = {};
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (/^\s*(#|$)/.test(line)) return;
    const m = /^\s*([A-Z_][A-Z0-9_]*)\s*=(.*)$/.exec(line);
    // The line is not echoed: it may hold a password.
    if (!m) throw new ConfigError(`secrets file ${path} line ${i + 1} is not KEY=VALUE`, { step: 'secrets' });
    let v = m[2]!.trim();
    if (v.length >= 2 && ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'")))) v = v.slice(1, -1);
    out[m[1]!] = v;
  });
  return out;
}

/**
 * Credentials from the environment first, then the secrets file; `wifiSsid` from the jig is the
 * default SSID. Wi-Fi is absent when no password is known (the plug then keeps or opens its AP).
 */
export function loadProvisioningSecrets(o: { env?: NodeJS.ProcessEnv; secretsFile?: string; wifiSsid?: string; requireWifi?: boolean }): ProvisioningSecrets {
  const env = o.env ?? process.env;
  let file: Record<string, string> = {};
  if (o.secretsFile) {
    let text: string;
    try {
      text = readFileSync(o.secretsFile, 'utf8');
    } catch (e) {
      throw new ConfigError(`cannot read secrets file ${o.secretsFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { step: 'secrets' });
    }
    file = parseSecretsFile(text, o.secretsFile);
  }
  const sources: string[] = [];
  const pick = (key: string): string | undefined => {
    if (env[key] !== undefined && env[key] !== '') {
      sources.push(`${key} from the environment`);
      return env[key];
    }
    if (file[key] !== undefined) {
      sources.push(`${key} from ${o.secretsFile}`);
      return file[key];
    }
    return undefined;
  };
  const ssid = pick(SECRET_KEYS.wifiSsid) ?? o.wifiSsid;
  const pass = pick(SECRET_KEYS.wifiPass);
  const webPassword = pick(SECRET_KEYS.webPassword);
  if (o.requireWifi && (ssid === undefined || pass === undefined)) {
    throw new ConfigError(
      `no Wi-Fi credentials for provisioning: set ${SECRET_KEYS.wifiPass} (and ${SECRET_KEYS.wifiSsid} or the jig's provisioning.wifiSsid) in the environment or the jig's secrets file`,
      { step: 'secrets' },
    );
  }
  const secrets = [pass, webPassword].filter((s): s is string => s !== undefined && s.length > 0);
  // Every log line of the process is scrubbed of them, whichever layer logs (the ROM trace carries the config sector).
  redactInLogs(secrets);
  return {
    ...(ssid !== undefined && pass !== undefined ? { wifi: { ssid, pass } } : {}),
    ...(webPassword !== undefined ? { webPassword } : {}),
    secrets,
    sources,
  };
}
