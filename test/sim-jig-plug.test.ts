import t from 'tap';
import { VirtualClock } from '../rig/core/clock.ts';
import { VirtualBk7231 } from '../sim/bk7231/virtual-bk7231.ts';
import { PinLevelPlug } from '../sim/plug/pin-level-plug.ts';

/** A plug whose chip boots its app 300 ms after power-on (the ROM's link window passes unused). */
function plugOnBench() {
  const clock = new VirtualClock();
  const chip = new VirtualBk7231({ seed: 7, linkWindowMs: 300 });
  chip.connect({ send: () => {} }, clock);
  const plug = new PinLevelPlug({ chip, clock });
  const events: string[] = [];
  plug.onRelayChange((c) => events.push(`relay ${c ? 'closed' : 'open'} @${clock.now()}`));
  plug.onLedChange((l) => events.push(`led ${l ? 'lit' : 'dark'} @${clock.now()}`));
  const click = async (ms = 150): Promise<void> => {
    plug.pressButton(true);
    await clock.sleep(ms);
    plug.pressButton(false);
  };
  return { clock, chip, plug, events, click };
}

t.test('3V3 from the jig boots the app: LED lit; a click toggles the relay ~0.4 s after release', async (t) => {
  const { clock, chip, plug, events, click } = plugOnBench();
  t.teardown(() => plug.dispose());
  t.equal(plug.ledLit(), false);
  plug.setSupply3v3(true);
  await clock.sleep(400);
  t.equal(chip.state, 'app');
  t.equal(plug.ledLit(), true, 'WifiLED_n lit while the app runs');
  t.equal(plug.relayClosed(), false, 'channel 1 starts at 0');
  await click();
  await clock.sleep(200);
  t.equal(plug.relayClosed(), false, 'not yet: the firmware waits 300 ms for a second click');
  await clock.sleep(400);
  t.equal(plug.relayClosed(), true, 'single click toggled channel 1 -> P26 high');
  const closedAt = Number(events.find((e) => e.startsWith('relay closed'))!.split('@')[1]);
  t.ok(closedAt >= 400 + 150 + 300 && closedAt <= 400 + 150 + 500, `relay closed at ${closedAt} ms`);
  await click();
  await clock.sleep(600);
  t.equal(plug.relayClosed(), false, 'a second click toggles it back');
  t.same(events.map((e) => e.split(' @')[0]), ['led lit', 'relay closed', 'relay open']);
});

t.test('bounces, long presses and double clicks do not toggle the relay', async (t) => {
  const { clock, plug, click } = plugOnBench();
  t.teardown(() => plug.dispose());
  plug.setSupply3v3(true);
  await clock.sleep(400);
  await click(40); // shorter than the 75 ms debounce
  await clock.sleep(600);
  t.equal(plug.relayClosed(), false, '40 ms bounce ignored');
  await click(1500);
  await clock.sleep(600);
  t.equal(plug.relayClosed(), false, 'hold > 1 s: OnHold only');
  await click(150);
  await clock.sleep(150);
  await click(150);
  await clock.sleep(600);
  t.equal(plug.relayClosed(), false, 'double click toggles channel 2 (unused), not the relay');
  await click(150);
  await clock.sleep(600);
  t.equal(plug.relayClosed(), true, 'and a clean single click still works');
});

t.test('power: mains alone runs the plug; losing all power, or CEN low, drops the relay and LED', async (t) => {
  const { clock, chip, plug, click } = plugOnBench();
  t.teardown(() => plug.dispose());
  plug.mainsPresent(true);
  await clock.sleep(400);
  t.equal(plug.ledLit(), true, 'non-isolated supply powers the chip from mains');
  await click();
  await clock.sleep(600);
  t.equal(plug.relayClosed(), true);
  plug.setSupply3v3(true);
  plug.mainsPresent(false);
  t.equal(plug.relayClosed(), true, 'still powered by 3V3: nothing changes');
  plug.setSupply3v3(false);
  t.equal(chip.state, 'off');
  t.equal(plug.relayClosed(), false, 'power loss opens the relay');
  t.equal(plug.ledLit(), false);
  plug.setSupply3v3(true);
  await clock.sleep(400);
  t.equal(plug.ledLit(), true);
  t.equal(plug.relayClosed(), false, 'after a reboot channel 1 is back at its start value 0');
  await click();
  await clock.sleep(600);
  t.equal(plug.relayClosed(), true);
  plug.setCen(false);
  t.equal(chip.state, 'reset');
  t.equal(plug.relayClosed(), false, 'CEN low resets the chip: GPIOs released');
  t.equal(plug.ledLit(), false);
  await click();
  await clock.sleep(600);
  t.equal(plug.relayClosed(), false, 'no firmware running: the button does nothing');
  plug.setCen(true);
  await clock.sleep(100);
  t.equal(chip.state, 'rom', 'CEN release starts the ROM link window');
  t.equal(plug.ledLit(), false, 'LED dark while in the ROM');
});
