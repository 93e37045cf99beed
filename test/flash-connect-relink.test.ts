import t from 'tap';
import { flashGetMID } from '../rig/bk7231/protocol/frame.ts';
import { rig, withPort } from './fixtures/fault-flash-rig.ts';

// The soak found units failing "no reply to FlashGetMID within 100 ms": the chip went silent while
// being identified, and connect() gave up where a write or read step would have re-linked.
t.test('a chip that stops answering while being identified is re-linked and identified again', async (t) => {
  const mid = flashGetMID().bytes;
  let deadUntil = -1;
  const r = await rig({}, undefined, {}, (p) =>
    withPort(p, {
      write: (bytes) => {
        const now = p.clock.now();
        if (deadUntil < 0 && bytes.length === mid.length && bytes.every((b, i) => b === mid[i])) deadUntil = now + 1500;
        // Everything the host sends in the next 1.5 s is lost: to the host, a chip that went silent.
        if (deadUntil >= 0 && now < deadUntil) return Promise.resolve();
        return p.write(bytes);
      },
    }),
  );
  const info = await r.flasher.connect();
  t.ok(deadUntil > 0, 'the first FlashGetMID went unanswered');
  t.equal(info.flashIdHex, 'EB 60 15', 'identified after the re-link');
  t.ok(r.flasher.stats.relinks >= 1, `re-linked (${r.flasher.stats.relinks})`);
});
