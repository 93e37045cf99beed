import t from 'tap';
import { execa } from 'execa';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SlotSchema, pinNumber } from '../rig/jig/jig-config.ts';
import { LEASES_FILE, startVirtualJigOnPtys } from '../sim/jig/pty-jig.ts';
import { ObkPlug } from '../sim/plug/obk-plug.ts';
import { provisionedObkImages, slotMac } from './fixtures/obk-plug-flash.ts';

const JIG = new URL('../fixtures/jigs/virtual-1slot.json', import.meta.url).pathname;

t.test('sim --jig --pty: the station network writes its leases beside the ptys; each plug serves HTTP at its lease', async (t) => {
  const linkDir = mkdtempSync(join(tmpdir(), 'plugrig-pty-net-'));
  // Without the heartbeat pin: mains is applied straight at the relay output below, with no station
  // toggling the watchdog (test/jig-heartbeat*.test.ts cover that).
  const raw = JSON.parse(readFileSync(JIG, 'utf8')) as { ioBoards: Record<string, Record<string, unknown>> };
  delete raw.ioBoards.io0!.heartbeat;
  const jigPath = join(mkdtempSync(join(tmpdir(), 'plugrig-pty-net-jig-')), 'virtual-1slot.json');
  writeFileSync(jigPath, JSON.stringify(raw));
  const pj = await startVirtualJigOnPtys({ jigPath, linkDir, seed: 4 });
  let closed = false;
  t.teardown(() => (closed ? undefined : pj.close()));
  const leases = join(linkDir, LEASES_FILE);
  t.equal(pj.network.leasesFile, leases);
  t.equal(readFileSync(leases, 'utf8'), '', 'an empty leases file before any plug joins');
  t.ok(pj.network.httpPort > 0, `one HTTP port for every plug: ${pj.network.httpPort}`);
  const generated = JSON.parse(readFileSync(pj.jigFile, 'utf8')) as { slots: Array<{ plug?: unknown }> };
  if ('plug' in SlotSchema.shape) t.same(generated.slots[0]!.plug, { leases, port: pj.network.httpPort }, 'the generated jig says where to find the plug');
  else t.equal(generated.slots[0]!.plug, undefined, 'no plug section until the jig schema has one');

  // As if flashed and provisioned over the pty (that path has its own tests): power it from the slot.
  const slot = pj.vj.slot(1);
  for (const img of provisionedObkImages(slotMac(4, 1))) slot.chip.flash.load(img.address, img.data);
  // The I/O board's sketch starts after its boot time and drives every pin low; then switch mains on
  // as the board would (the jig's mains relay).
  const board = pj.vj.boards.get(slot.spec.io)!;
  while (!board.running()) await new Promise((r) => setTimeout(r, 50));
  slot.outputPins().get(pinNumber(slot.spec.pins.mains))!.apply(true);
  const end = Date.now() + 30_000; // ~8 s unloaded (5 s to connect + association); generous under a loaded test run
  let line: string[] | undefined;
  while (!line && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 200));
    const text = readFileSync(leases, 'utf8').trim();
    if (text) line = text.split(' ');
  }
  t.ok(line, `the plug joined and got a lease (running: ${slot.plug instanceof ObkPlug ? slot.plug.running() : '-'}, chip ${slot.chip.state})`);
  t.equal(line![1], 'c8:47:8c:00:04:01', 'by the MAC the ROM reports');
  const r = await execa('/usr/bin/curl', ['-s', '--max-time', '3', `http://${line![2]}:${pj.network.httpPort}/cm?cmnd=POWER`]);
  t.equal(r.stdout, '{"POWER":"OFF"}', `curl reaches it at ${line![2]}:${pj.network.httpPort}`);
  t.equal(slot.plugUrl(), `http://${line![2]}:${pj.network.httpPort}`);
  await pj.close();
  closed = true;
  t.notOk(existsSync(leases), 'leases file removed on close');
});
