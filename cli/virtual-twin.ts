import type { JigSpec } from '../rig/jig/jig-config.ts';

const SIM = 'sim:';

/**
 * The virtual twin of a jig file: the same slots, pins, loads, meters and timings, with every endpoint
 * (I/O board, meter, slot UART) replaced by an in-process `sim:` device. Endpoints already on `sim:`
 * keep their names. A slot UART bound by USB path or serial number keeps that binding: the virtual
 * jig puts a virtual USB-UART adapter there, resolved and watched as `run --sim` does (a tty name
 * would skip the very resolution the file asks for). The virtual jig refuses what it cannot model.
 */
export function virtualTwinOf(jig: JigSpec): JigSpec {
  const ioBoards = Object.fromEntries(
    Object.entries(jig.ioBoards).map(([name, b]) => [name, { port: b.port?.startsWith(SIM) ? b.port : `${SIM}${name}`, baudRate: b.baudRate, layout: b.layout }]),
  );
  const meters = Object.fromEntries(
    Object.entries(jig.meters).map(([name, m]) =>
      m.kind === 'pzem004t'
        ? [name, { ...m, port: m.port.startsWith(SIM) ? m.port : `${SIM}${name}` }]
        : [name, { ...m, address: m.address.startsWith(SIM) ? m.address : `${SIM}${name}` }],
    ),
  );
  const slots = jig.slots.map((s) => {
    if (s.uart.port === undefined) return s;
    return { ...s, uart: { port: s.uart.port.startsWith(SIM) ? s.uart.port : `${SIM}uart${s.id}`, ...(s.uart.baudRate !== undefined ? { baudRate: s.uart.baudRate } : {}) } };
  });
  return { ...jig, ioBoards, meters, slots };
}
