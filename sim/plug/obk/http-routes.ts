import type { ObkFirmwareHost } from './firmware-host.ts';
import { htmlPage, RETURN_TO_MAIN } from './html-page.ts';
import {
  getArg,
  getRawArg,
  MIME,
  parseObkRequest,
  REDIRECT_TO_INDEX,
  replyHead,
  UNAUTHORIZED_REPLY,
  type ObkHttpRequest,
} from './http-wire.ts';
import { restGet, restPost } from './rest-api.ts';
import { tasmotaReply } from './tasmota-reply.ts';
import { skipToNextWord } from './tokenizer.ts';

/**
 * HTTP_ProcessPacket after the bytes are in: registered callbacks first (/api/ GET and POST, only
 * outside safe mode, with auth), then Basic auth for everything else, then the fixed pages by exact
 * name up to `?`. Unknown paths get a 200 HTML "Not found." page, never a 404 (reqs 4-10, 25, 37).
 * Returns the reply text, or undefined when OpenBeken sends nothing and closes.
 */
export function handleObkHttp(host: ObkFirmwareHost, raw: string): string | undefined {
  const parsed = parseObkRequest(raw);
  if (parsed.kind === 'drop') {
    host.log.write('Error', 'HTTP', parsed.reason);
    return undefined;
  }
  const req = parsed.request;
  if (req.method === 'OPTIONS') return replyHead(200, MIME.html);
  if (!host.safeMode && req.url.startsWith('api/') && (req.method === 'GET' || req.method === 'POST')) {
    if (!authorised(host, req)) return UNAUTHORIZED_REPLY;
    return req.method === 'GET' ? restGet(host, req) : restPost(host, req);
  }
  if (!authorised(host, req)) {
    host.log.write('Error', 'HTTP', 'HTTP packet with auth fail');
    return UNAUTHORIZED_REPLY;
  }
  const page = pageName(req.url);
  switch (page) {
    case '':
      return REDIRECT_TO_INDEX;
    case 'index':
      return replyHead(200, MIME.html) + htmlPage(host, 'Main page', indexContent(host));
    case 'cm':
      return replyHead(200, MIME.json) + cm(host, req);
    case 'cfg_wifi_set':
      return replyHead(200, MIME.html) + htmlPage(host, 'Saving Wifi', cfgWifiSet(host, req.url));
    default:
      return replyHead(200, MIME.html) + htmlPage(host, 'Not found', `Not found.<br/>${RETURN_TO_MAIN}`);
  }
}

/** http_checkUrlBase compares the path up to `?` or a space. */
function pageName(url: string): string {
  const q = url.search(/[? ]/);
  return q < 0 ? url : url.slice(0, q);
}

/** http_basic_auth_eval: only with a web password; user `admin`; the password compared over 32 chars. */
function authorised(host: ObkFirmwareHost, req: ObkHttpRequest): boolean {
  const password = host.config.webPassword;
  if (password === '') return true;
  const header = req.headers.find((h) => h.slice(0, 21).toLowerCase() === 'authorization: basic ');
  if (!header) return false;
  const decoded = Buffer.from(header.slice(21), 'base64').toString('latin1');
  if (decoded.length > 255 || decoded.slice(0, 6).toLowerCase() !== 'admin:') return false;
  return decoded.slice(6).slice(0, 32) === password.slice(0, 32);
}

/** /cm?cmnd=...: always 200; an empty cmnd gives headers only; >123 chars runs the command twice. */
function cm(host: ObkFirmwareHost, req: ObkHttpRequest): string {
  let command: string | undefined;
  if (req.method === 'GET') command = getArg(req.url, 'cmnd');
  else if (req.method === 'POST' || req.method === 'PUT') command = getRawArg(req.body, 'cmnd');
  if (!command) return '';
  // The 128-byte buffer is re-read into a bigger one, executed, then executed again with the reply.
  if (command.length > 123) host.execute(command, 'http');
  host.execute(command, 'http');
  // The "echo" hack prints the echoed text instead of a JSON reply.
  if (command.startsWith('echo')) return skipToNextWord(command);
  return tasmotaReply(host, command);
}

function indexContent(host: ObkFirmwareHost): string {
  const relay = host.channels.get(1) ? 'ON' : 'OFF';
  return `<div id="state"><div class="${relay === 'ON' ? 'on' : 'off'}">${relay}</div></div>`;
}

/** /cfg_wifi_set: ssid/pass (or open), ssid2/pass2, the web password rule, reboot in 3 s if changed. */
function cfgWifiSet(host: ObkFirmwareHost, url: string): string {
  const c = host.config;
  let changed = false;
  let out = '';
  const set = (key: 'wifiSsid' | 'wifiPass' | 'ssid2' | 'pass2', value: string): void => {
    const v = value.slice(0, 127).slice(0, 63);
    if (c[key] !== v) {
      c[key] = v;
      changed = true;
    }
  };
  const arg = (name: string): string | undefined => {
    const v = getArg(url, name);
    return v ? v : undefined; // http_getArg reports an empty value as absent
  };
  if (arg('open') !== undefined) {
    set('wifiSsid', '');
    set('wifiPass', '');
    out += 'WiFi mode set: open access point.';
  } else {
    const ssid = arg('ssid');
    if (ssid !== undefined) set('wifiSsid', ssid);
    const pass = arg('pass');
    if (pass !== undefined) set('wifiPass', pass);
    out += 'WiFi mode set: connect to WLAN.';
  }
  const ssid2 = arg('ssid2');
  if (ssid2 !== undefined) set('ssid2', ssid2);
  const pass2 = arg('pass2');
  if (pass2 !== undefined) set('pass2', pass2);
  const enabled = arg('web_admin_password_enabled');
  if (enabled !== undefined) {
    const pw = arg('web_admin_password');
    if (Number.parseInt(enabled, 10) > 0 && pw !== undefined) {
      if (pw.length < 5) out += '<h4>Web password needs to be at least 5 characters long!</h4>';
      else {
        out += '<p>Web password has been changed.</p>';
        c.webPassword = pw.slice(0, 32);
      }
    }
  } else c.webPassword = '';
  host.configChanged();
  if (!changed) out += '<p>WiFi: No changes detected.</p>';
  else {
    out += '<p>WiFi: Please wait for module to reset...</p>';
    host.scheduleRestart(3);
  }
  out += `<br><a href="cfg_wifi">Return to WiFi settings</a><br>${RETURN_TO_MAIN}`;
  return out;
}
