import type { ObkFirmwareHost } from './firmware-host.ts';
import { formatMacUpper } from './mac.ts';

/**
 * The frame of OpenBeken's HTML pages (http_html_start / http_html_end): the title is
 * `<long name> - <page>`, the footer carries the build line, uptime, MAC and short name. The
 * firmware's CSS and scripts are left out: clients of the rig only look at the text.
 */
export function htmlPage(host: ObkFirmwareHost, pageName: string, content: string): string {
  const c = host.config;
  return (
    '<!DOCTYPE html><html><head>' +
    `<title>${c.longDeviceName} - ${pageName}</title>` +
    '<meta charset="utf-8"></head><body>' +
    `<h1>${c.longDeviceName}</h1><div id="main">` +
    content +
    ` | <br>${buildLine(host)}` +
    `<br>Online for&nbsp;<span id="onlineFor" data-initial="${host.uptimeSeconds()}">-</span>` +
    `<br>Device MAC: ${formatMacUpper(host.mac)}` +
    `<br>Short name: ${c.shortDeviceName}, Chipset BK7231N` +
    '</div></body></html>'
  );
}

/** g_build_str: "Built on <date> <time> version <ver>". */
export function buildLine(host: ObkFirmwareHost): string {
  return `Built on ${host.build.date} ${host.build.time} version ${host.build.version}`;
}

/** Footer link back to the main page (htmlFooterReturnToMainPage). */
export const RETURN_TO_MAIN = '<a href="index">Return to main menu</a>';
