import t, { type Test } from 'tap';
import { VirtualClock } from '../rig/core/clock.ts';
import { hex } from '../rig/core/hex.ts';
import { VirtualBk7231, type VirtualBk7231Options } from '../sim/bk7231/virtual-bk7231.ts';
import { MainsNetwork } from '../sim/mains/mains-network.ts';
import { StationNetwork } from '../sim/net/station-network.ts';
import { ObkPlug, type ObkPlugDefects } from '../sim/plug/obk-plug.ts';
import { OBK_CONFIG_ADDR, parseConfigSector } from '../sim/plug/obk-config-sector.ts';
import { FlashObkStorage } from '../sim/plug/obk-storage.ts';
import { parsePlugDefects } from '../sim/plug/plug-defects.ts';
import { TUYA_PAIRING_BLINK_MS } from '../sim/plug/tuya-stock-firmware.ts';
import type { ObkConfigData } from '../sim/plug/obk/contracts.ts';
import { DEFAULT_VIRTUAL_WIFI } from '../sim/jig/virtual-jig.ts';
import { provisionedObkImages, rmc021Config } from './fixtures/obk-plug-flash.ts';

const MAC = Uint8Array.of(0xc8, 0x47, 0x8c, 0x12, 0x34, 0x56);

interface BenchOptions {
  config?: ObkConfigData | null;
  chip?: VirtualBk7231Options;
  defects?: ObkPlugDefects;
  loadW?: number;
  seed?: number;
}

/** A plug on a bench: mains with a resistive load behind its relay, the station network, no sockets. */
function bench(t: Test, o: BenchOptions = {}) {
  const clock = new VirtualClock();
  const mains = new MainsNetwork({ clock, volts: 230, hz: 50 });
  const branch = mains.branch('bench');
  branch.addLoad('R', { watts: o.loadW ?? 60, pf: 1 });
  branch.setLoadRelay('R', true);
  const net = new StationNetwork({ clock, ...DEFAULT_VIRTUAL_WIFI });
  const config = o.config === undefined ? rmc021Config(MAC) : o.config;
  const chip = new VirtualBk7231({
    seed: o.seed ?? 9,
    mac: MAC,
    linkWindowMs: 300,
    ...(config ? { initialImages: provisionedObkImages(MAC, config) } : {}),
    ...o.chip,
  });
  chip.connect({ send: () => {} }, clock);
  const plug = new ObkPlug({ chip, clock, branch, network: net, http: false, defects: o.defects, seed: o.seed ?? 9 });
  mains.onChange(() => plug.mainsPresent(branch.inputEnergised()));
  const reference = branch.source('input'); // the jig's reference meter sits before the plug
  const relaySense: boolean[] = [];
  plug.onRelayChange((c) => relaySense.push(c));
  const led: Array<[number, boolean]> = [];
  plug.onLedChange((l) => led.push([clock.now(), l]));
  const click = async (ms = 150): Promise<void> => {
    plug.pressButton(true);
    await clock.sleep(ms);
    plug.pressButton(false);
  };
  const mainsOn = (on: boolean): void => branch.setMainsRelay(on);
  t.teardown(() => plug.dispose());
  return { clock, mains, branch, net, chip, plug, reference, relaySense, led, click, mainsOn };
}

/** LED toggle intervals (ms) seen in [from, to). */
function toggles(led: Array<[number, boolean]>, from: number, to: number): number[] {
  const ts = led.filter(([at]) => at >= from && at < to).map(([at]) => at);
  return ts.slice(1).map((x, i) => x - ts[i]!);
}

t.test('req 38: a provisioned flash boots OpenBeken with its template: LED, station network, relay on the mains', async (t) => {
  const b = bench(t);
  b.mainsOn(true);
  await b.clock.sleep(3000);
  t.equal(b.plug.running(), 'openbeken');
  const connecting = toggles(b.led, 500, 3000);
  t.ok(connecting.length >= 3 && connecting.every((d) => d >= 500 && d <= 550), `connecting: toggles every ~525 ms (${connecting.join(',')})`);
  await b.clock.sleep(6000);
  t.equal(b.plug.ledLit(), true, 'joined: LED solid');
  t.match(b.net.lease(MAC), { ip: '127.77.0.2', hostname: rmc021Config(MAC).shortDeviceName }, 'leased, with its short name as hostname');
  t.equal(b.reference().watts, 0, 'relay open at boot: no load current');

  await b.click();
  await b.clock.sleep(600);
  t.equal(b.plug.relayClosed(), true, 'click on P10 toggles the relay on P26');
  t.same(b.relaySense, [true], 'the jig senses the contact');
  // The mains drifts and sags, so the 60 W load draws 60·(V/230)² W.
  const seen = b.reference();
  t.ok(Math.abs(seen.volts / 230 - 1) < 0.03 && Math.abs(seen.watts - 60 * (seen.volts / 230) ** 2) < 1e-6, `reference meter sees the 60 W load (${seen.watts.toFixed(2)} W at ${seen.volts.toFixed(2)} V)`);
  await b.clock.sleep(3000);
  const r = b.plug.obkFirmware()!.energyDriver()!.readings();
  // Uncalibrated: the unit's CF frequency times OpenBeken's default 1.5 W/Hz (±1 pulse, jitter), so
  // within its ±5 % parts and the defaults' own inconsistency of the load.
  const out = b.branch.measure('output');
  const fP = b.plug.bl0937.truth().frequency('power', out);
  t.ok(Math.abs(r.power - 1.5 * fP) <= 1.5 * (1 + 0.003 * fP), `the plug's BL0937 reads its CF frequency × 1.5 (${r.power.toFixed(2)} W, ${fP.toFixed(2)} Hz)`);
  t.ok(Math.abs(r.power / out.watts - 1) < 0.25, `about the load (${r.power.toFixed(2)} W vs ${out.watts.toFixed(2)} W)`);
  t.ok(Math.abs(r.voltage - 230) < 12, `and ${r.voltage.toFixed(1)} V`);

  t.equal(b.plug.obkFirmware()!.execute('POWER OFF', 'console'), 'ok');
  t.equal(b.plug.relayClosed(), false, 'POWER OFF opens it');
  b.mainsOn(false);
  t.equal(b.plug.running(), 'nothing', 'mains off: nothing runs');
  t.equal(b.plug.ledLit(), false);
});

t.test('req 38: the config lives in the flash model at 0x1D1000 (CRC8, version 5, cal at +0x498), MAC from 0x1D0024', async (t) => {
  const b = bench(t);
  b.mainsOn(true);
  await b.clock.sleep(2000);
  await b.click();
  await b.clock.sleep(3000); // relay closed, a few driver windows with load
  const fw = b.plug.obkFirmware()!;
  t.equal(fw.execute('VoltageSet 230', 'console'), 'ok');
  await b.clock.sleep(1500);
  const sector = b.chip.flash.read(OBK_CONFIG_ADDR, 4096);
  const parsed = parseConfigSector(sector);
  t.ok(parsed, 'a valid CFG sector (the simulator parses it with its own reader)');
  t.equal(parsed!.config.version, 5);
  const calV = new DataView(sector.buffer).getFloat32(0x498, true);
  t.not(calV, 0, 'VoltageSet reached flash within ~1 s');
  t.equal(calV, Math.fround(fw.config.cal.voltage), 'the float32 at 0x1D1498 is the calibration in RAM');
  t.equal(hex(b.chip.flash.read(0x1d0024, 6)), hex(fw.mac), 'the firmware MAC is the RF sector MAC');
  const info = fw.handleHttp('GET /api/info HTTP/1.1\r\n\r\n')!;
  t.match(info, /"mac":"c8:47:8c:12:34:56"/, '/api/info.mac matches 0x1D0024');

  // Power cycle: RAM is gone, the flash keeps the config.
  b.mainsOn(false);
  b.mainsOn(true);
  await b.clock.sleep(1000);
  t.equal(b.plug.obkFirmware()!.config.cal.voltage, fw.config.cal.voltage, 'calibration read back at boot');
  t.equal(b.plug.relayClosed(), false, 'relay OFF after boot (start value 0)');
});

t.test('req 38: boot counters in EasyFlash at 0x1E5000: 5 quick power-ons enter safe mode', async (t) => {
  const b = bench(t);
  const storage = new FlashObkStorage(b.chip.flash);
  b.mainsOn(true);
  await b.clock.sleep(8000); // > FullBootTime: boot marked OK
  t.match(storage.loadRetained(), { bootCount: 1, bootSuccessCount: 1 }, 'first boot counted and marked OK in flash');
  for (let i = 0; i < 4; i++) {
    b.mainsOn(false);
    await b.clock.sleep(100);
    b.mainsOn(true);
    await b.clock.sleep(2000); // shorter than the ~6 s to boot OK
    t.equal(b.plug.running(), 'openbeken', `quick power-on ${i + 1}: normal boot`);
  }
  b.mainsOn(false);
  b.mainsOn(true);
  await b.clock.sleep(1000);
  t.equal(b.plug.running(), 'openbeken-safe-mode', '5th quick power-on: safe mode');
  t.match(storage.loadRetained(), { bootCount: 6, bootSuccessCount: 1 });
  const ledBefore = b.led.length;
  await b.click();
  await b.clock.sleep(3000);
  t.equal(b.plug.relayClosed(), false, 'safe mode: no button handling');
  t.equal(b.led.length, ledBefore, 'safe mode: no LED activity');
  await b.clock.sleep(5000);
  b.mainsOn(false);
  b.mainsOn(true);
  await b.clock.sleep(1000);
  t.equal(b.plug.running(), 'openbeken', 'the safe boot was marked OK: the next boot is normal');
});

t.test('req 38: energy is checkpointed to EasyFlash; a power cut loses the unsaved part', async (t) => {
  const b = bench(t, { loadW: 2000 });
  const storage = new FlashObkStorage(b.chip.flash);
  b.mainsOn(true);
  await b.clock.sleep(1000);
  await b.click();
  await b.clock.sleep(25_000); // 2 kW for ~24 s: ~13 Wh, one +10 Wh checkpoint
  const ram = b.plug.obkFirmware()!.energyDriver()!.readings().energyTotalWh;
  const saved = storage.loadRetained().energyTotalWh;
  t.ok(saved >= 10 && saved < ram, `checkpoint ${saved.toFixed(2)} Wh saved, ${ram.toFixed(2)} Wh in RAM`);
  b.mainsOn(false);
  b.mainsOn(true);
  await b.clock.sleep(1500);
  const after = b.plug.obkFirmware()!.energyDriver()!.readings().energyTotalWh;
  t.ok(Math.abs(after - saved) < 0.01, `after the power cut the total restarts from the checkpoint (${after.toFixed(2)} Wh)`);
});

t.test('req 38: a template that maps the roles elsewhere makes the firmware drive and read the wrong pins', async (t) => {
  const elsewhere: Record<number, readonly [number, number]> = { 14: [19, 0], 15: [18, 0], 9: [9, 0], 11: [3, 1], 20: [17, 0], 23: [1, 1] };
  const b = bench(t, { config: rmc021Config(MAC, { pins: elsewhere }) });
  b.mainsOn(true);
  await b.clock.sleep(9000);
  t.equal(b.net.lease(MAC) !== undefined, true, 'the firmware runs and joins');
  t.equal(b.plug.ledLit(), false, 'LED on P8 never driven');
  t.equal(b.plug.pinOutput(9), false, 'the "LED" pin P9 is driven (low = on) instead');
  await b.click();
  await b.clock.sleep(1000);
  t.equal(b.plug.relayClosed(), false, 'P10 is not a button for this template');
  t.equal(b.plug.obkFirmware()!.execute('POWER ON', 'console'), 'ok');
  t.equal(b.plug.pinOutput(23), true, 'POWER ON drives P23');
  t.equal(b.plug.relayClosed(), false, 'but the relay hangs on P26');
  await b.clock.sleep(3000);
  const r = b.plug.obkFirmware()!.energyDriver()!.readings();
  t.equal(r.voltage, 0, 'no BL0937 pulses on P14/P15');
  t.equal(r.power, 0);
});

t.test('power: 3V3 alone runs the chip but cannot pull the relay in; the BL0937 sees the voltage with the relay open', async (t) => {
  const b = bench(t);
  b.plug.setSupply3v3(true);
  await b.clock.sleep(2000);
  t.equal(b.plug.running(), 'openbeken', 'the jig\'s 3V3 runs the module');
  b.plug.obkFirmware()!.execute('POWER ON', 'console');
  t.equal(b.plug.pinOutput(26), true);
  t.equal(b.plug.relayClosed(), false, 'no coil supply without mains');
  b.mainsOn(true);
  t.equal(b.plug.relayClosed(), true, 'mains brings up the coil rail: the relay pulls in');
  b.plug.obkFirmware()!.execute('POWER OFF', 'console');
  await b.clock.sleep(4000);
  const r = b.plug.obkFirmware()!.energyDriver()!.readings();
  t.ok(r.voltage > 200, `relay open: the divider across the input still reads ${r.voltage.toFixed(1)} V`);
  t.equal(r.power, 0, 'and no power');
});

t.test('a factory-fresh plug runs the stock Tuya app: pairing blink, relay by button, no network', async (t) => {
  const b = bench(t, { config: null });
  b.mainsOn(true);
  await b.clock.sleep(3000);
  t.equal(b.plug.running(), 'tuya');
  const blink = toggles(b.led, 500, 3000);
  t.ok(blink.length >= 8 && blink.every((d) => Math.abs(d - TUYA_PAIRING_BLINK_MS) <= 10), `fast pairing blink (${blink.slice(0, 4).join(',')} ms)`);
  await b.click();
  await b.clock.sleep(100);
  t.equal(b.plug.relayClosed(), true, 'a press toggles the relay');
  t.ok(b.reference().watts > 50, 'the load is on');
  await b.clock.sleep(20_000);
  t.equal(b.net.leases().length, 0, 'never joins the station network');
  t.equal(b.plug.obkFirmware(), undefined, 'no OpenBeken API');
});

t.test('an image that does not boot: LED dark, relay dead, no network', async (t) => {
  for (const chip of [{ appDoesNotBoot: true }, { content: 'blank' as const, initialImages: [] }]) {
    const b = bench(t, { chip });
    b.mainsOn(true);
    await b.clock.sleep(12_000);
    await b.click();
    await b.clock.sleep(1000);
    t.equal(b.plug.running(), 'nothing');
    t.same(b.led, [], 'LED never lit');
    t.equal(b.plug.relayClosed(), false);
    t.equal(b.net.leases().length, 0);
    t.equal(b.chip.state, 'app', 'the ROM handed over; nothing runs');
  }
});

t.test('hardware defects: relay stuck, button open, LED dead, never joins, boot loop', async (t) => {
  const open = bench(t, { defects: { relay: 'stuck-open' } });
  open.mainsOn(true);
  await open.clock.sleep(2000);
  open.plug.obkFirmware()!.execute('POWER ON', 'console');
  t.equal(open.plug.pinOutput(26), true, 'stuck open: P26 driven high');
  t.equal(open.plug.relayClosed(), false, 'but the contact stays open');
  t.equal(open.reference().watts, 0);

  const closed = bench(t, { defects: { relay: 'stuck-closed' } });
  closed.mainsOn(true);
  t.equal(closed.plug.relayClosed(), true, 'stuck closed: the load is on before the firmware runs');
  t.ok(closed.reference().watts > 50);

  const button = bench(t, { defects: { buttonOpen: true } });
  button.mainsOn(true);
  await button.clock.sleep(2000);
  await button.click();
  await button.clock.sleep(1000);
  t.equal(button.plug.relayClosed(), false, 'button open: a click does nothing');

  const led = bench(t, { defects: { ledDead: true } });
  led.mainsOn(true);
  await led.clock.sleep(10_000);
  t.ok(led.net.lease(MAC), 'joined');
  t.same(led.led, [], 'LED dead: never lit');

  const never = bench(t, { defects: { wifiNeverJoins: true } });
  never.mainsOn(true);
  await never.clock.sleep(30_000);
  t.equal(never.net.leases().length, 0, 'Wi-Fi never joins: no lease');
  const blink = toggles(never.led, 20_000, 30_000);
  t.ok(blink.length > 5 && blink.every((d) => d >= 500 && d <= 550), 'LED keeps the not-connected pattern');

  const loop = bench(t, { defects: { bootLoop: true } });
  loop.mainsOn(true);
  await loop.clock.sleep(20_000);
  t.equal(loop.plug.running(), 'openbeken-safe-mode', 'boot loop: crashes before boot-OK until safe mode');
  t.equal(loop.chip.counters.appBoots, 5, "four crashed boots, the fifth in safe mode (boot_count - success = 5 > 4)");
});

t.test('BL0937 defects reach the chip model: CF open, shunt off 10 %', async (t) => {
  const read = async (defects?: ObkPlugDefects) => {
    const b = bench(t, { defects, seed: 21 });
    b.mainsOn(true);
    await b.clock.sleep(1000);
    await b.click();
    await b.clock.sleep(6000);
    return b.plug.obkFirmware()!.energyDriver()!.readings();
  };
  const good = await read();
  const cfOpen = await read(parsePlugDefects(['cf-open']).plug);
  const shunt = await read(parsePlugDefects(['shunt-off-10']).plug);
  t.ok(good.power > 50, `good unit ${good.power.toFixed(2)} W`);
  t.equal(cfOpen.power, 0, 'CF open: no power');
  t.ok(cfOpen.voltage > 200, 'but CF1 still measures the voltage');
  t.ok(Math.abs(shunt.power / good.power - 1.1) < 0.02, `shunt +10 %: ${(shunt.power / good.power).toFixed(3)} × the good reading`);
  t.throws(() => parsePlugDefects(['relay-stuk-open']), { code: 'E_CONFIG', message: /unknown defect "relay-stuk-open"/ });
});
