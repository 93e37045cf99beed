import { RESULT_MESSAGE } from './command-registry.ts';
import type { ObkFirmwareHost } from './firmware-host.ts';
import { buildLine, htmlPage } from './html-page.ts';
import { MIME, ReplyWriter, replyHead, type ObkHttpRequest } from './http-wire.ts';
import { formatMacLower } from './mac.ts';
import { npfInt32 } from './nanoprintf.ts';
import { setFlag } from './obk-config.ts';
import { PIN_ROLE_NAMES, PLATFORM_GPIO_MAX } from './pin-roles.ts';
import { tasmotaReply } from './tasmota-reply.ts';
import { atoi } from './tokenizer.ts';
import { parseJsmnObject } from './jsmn-json.ts';

/**
 * The REST API under /api/ (rest_interface.c, openbeken-http.md §1.3, reqs 18-21, 24). It is only
 * registered outside safe mode. Sub-paths compare with the whole URL (query included), so
 * `/api/info?x` is not /api/info but the generic "GET REST API" page.
 */
export function restGet(host: ObkFirmwareHost, req: ObkHttpRequest): string {
  switch (req.url) {
    case 'api/info':
      return getInfo(host);
    case 'api/pins':
      return getPins(host);
    case 'api/channels':
      return getChannels(host);
    default:
      return replyHead(200, MIME.html) + htmlPage(host, 'GET REST API', `GET of ${req.url}`);
  }
}

export function restPost(host: ObkFirmwareHost, req: ObkHttpRequest): string {
  switch (req.url) {
    case 'api/cmnd':
      return postCmnd(host, req.body);
    case 'api/pins':
      return postPins(host, req.body);
    case 'api/reboot':
      host.log.write('Debug', 'API', 'Rebooting in 3 seconds...');
      host.scheduleRestart(3);
      return replyHead(200, MIME.json) + '{"reboot":3}';
    default: {
      const len = contentLength(req.headers);
      return (
        replyHead(200, MIME.html) +
        htmlPage(host, 'POST REST API', `POST to ${req.url}<br/>Content Length:${len}<br/>Content:[${req.body}]<br/>`)
      );
    }
  }
}

function contentLength(headers: string[]): number {
  const h = headers.find((x) => x.slice(0, 15).toLowerCase() === 'content-length:');
  return h === undefined ? -1 : atoi(h.slice(15));
}

/** http_rest_error: {"error":N, "msg":"..."} or {"success":200, "msg":"OK"}, status line = code. */
function restResult(code: number, msg: string): string {
  const kind = code === 200 ? 'success' : 'error';
  return replyHead(code, MIME.json) + new ReplyWriter().printf(`{"${kind}":${code}, "msg":"${msg}"}`).text();
}

/** poststr_escapedForJSON: only \n, \r and " are escaped (a backslash passes through raw). */
function escapeForJson(s: string): string {
  return s.replace(/[\n\r"]/g, (c) => (c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\"'));
}

function getInfo(host: ObkFirmwareHost): string {
  const c = host.config;
  const w = new ReplyWriter();
  w.printf(`{"uptime_s":${host.uptimeSeconds()},`);
  w.printf(`"build":"${buildLine(host)}",`);
  w.printf(`"ip":"${host.network().ip}",`);
  w.printf(`"mac":"${formatMacLower(host.mac)}",`);
  w.printf(`"flags":"${npfInt32(c.genericFlags)}",`);
  w.printf(`"mqtthost":"${c.mqttHost}:${c.mqttPort}",`);
  w.printf(`"mqtttopic":"${c.mqttClientId}",`);
  w.printf('"chipset":"BK7231N",');
  w.printf(`"webapp":"${c.webappRoot}",`);
  w.printf(`"shortName":"${c.shortDeviceName}",`);
  w.post('"startcmd":"');
  w.post(escapeForJson(c.initCommandLine));
  w.post('",');
  w.printf('"supportsSSDP":0,');
  w.printf('"supportsClientDeviceDB":true}');
  return replyHead(200, MIME.json) + w.text();
}

function getPins(host: ObkFirmwareHost): string {
  const c = host.config;
  const w = new ReplyWriter();
  const list = (values: readonly number[], n: number): string => values.slice(0, n).map((v) => String(v ?? 0)).join(',');
  w.post('{"rolenames":[');
  PIN_ROLE_NAMES.forEach((name, i) => {
    if (i) w.printf(',');
    w.printf(`"${name}"`);
  });
  w.post('],"roles":[');
  w.post(list(c.pinRoles, PLATFORM_GPIO_MAX));
  w.post('],"channels":[');
  w.post(list(c.pinChannels, PLATFORM_GPIO_MAX));
  let lastNonZero = -1;
  for (let i = 0; i < PLATFORM_GPIO_MAX; i++) if (c.pinChannels2[i]) lastNonZero = i;
  if (lastNonZero >= 0) {
    w.post('],"channels2":[');
    w.post(list(c.pinChannels2, lastNonZero + 1));
  }
  w.post('],"states":[');
  w.post(
    Array.from({ length: PLATFORM_GPIO_MAX }, (_, i) => String(host.channels.get(c.pinChannels[i] ?? 0))).join(','),
  );
  w.post(']}');
  return replyHead(200, MIME.json) + w.text();
}

function getChannels(host: ObkFirmwareHost): string {
  const c = host.config;
  const entries: string[] = [];
  for (let pin = 0; pin < PLATFORM_GPIO_MAX; pin++) {
    if (!c.pinRoles[pin]) continue;
    const ch = c.pinChannels[pin] ?? 0;
    entries.push(`"${ch}":${host.channels.get(ch)}`);
  }
  return replyHead(200, MIME.json) + '{' + entries.join(',') + '}';
}

/** POST /api/cmnd: the raw body is the command (not decoded, not trimmed); status = JSON code. */
function postCmnd(host: ObkFirmwareHost, body: string): string {
  const cmd = body.split('\0')[0]!;
  const res = host.execute(cmd, 'console');
  const msg = RESULT_MESSAGE[res];
  host.log.write('Info', 'CMD', `[WebApp Cmd '${cmd}' Result] ${msg}`);
  const code = res === 'ok' ? 200 : res === 'unknown' ? 501 : 400;
  const kind = code === 200 ? 'success' : 'error';
  const w = new ReplyWriter();
  w.printf(`{"${kind}":${code}, "msg":"${msg}", "res":`);
  w.post(tasmotaReply(host, cmd));
  w.printf('}');
  return replyHead(code, MIME.json) + w.text();
}

/** POST /api/pins: roles/channels applied at once, deviceFlag (0..10) set ON, deviceCommand set and run. */
function postPins(host: ObkFirmwareHost, body: string): string {
  const parsed = parseJsmnObject(body.split('\0')[0]!);
  if (parsed.kind === 'error') {
    host.log.write('Error', 'API', `Failed to parse JSON: ${parsed.code}`);
    return restResult(400, `Failed to parse JSON: ${parsed.code}\n`);
  }
  if (parsed.kind === 'not-object') {
    host.log.write('Error', 'API', 'Object expected');
    return restResult(400, 'Object expected\n');
  }
  const c = host.config;
  let changed = 0;
  let pinsTouched = false;
  for (const [key, value] of parsed.entries) {
    if (key === 'roles' || key === 'channels') {
      if (!Array.isArray(value)) continue;
      const target = key === 'roles' ? c.pinRoles : c.pinChannels;
      value.forEach((raw, pin) => {
        const v = atoi(String(raw)) & 0xff;
        if (pin < PLATFORM_GPIO_MAX && target[pin] !== v) {
          target[pin] = v;
          changed++;
          pinsTouched = true;
        }
      });
    } else if (key === 'deviceFlag') {
      if (Array.isArray(value) || typeof value === 'object') continue;
      const flag = atoi(String(value));
      if (flag >= 0 && flag <= 10) {
        setFlag(c, flag, true);
        changed++;
      }
    } else if (key === 'deviceCommand') {
      if (typeof value !== 'string') continue;
      c.initCommandLine = value;
      changed++;
      host.configChanged();
      host.execute(value, 'script');
    } else {
      host.log.write('Error', 'API', `Unexpected key: ${key}`);
    }
  }
  if (changed) host.configChanged();
  if (pinsTouched) host.pinsChanged();
  return restResult(200, 'OK');
}
