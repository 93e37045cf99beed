import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, closeSync, read, rmSync, stat, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { RealClock } from '../rig/core/clock.ts';
import { openLink } from '../rig/serial/open-link.ts';
import type { SerialLink } from '../rig/serial/serial-link.ts';

/**
 * Native serial ports do their reads and writes on the main thread (rig/serial/native-binding.ts),
 * not through libuv's thread pool as serialport's binding does: here both ends of a socat pty pair
 * are our own SerialLinks, and bytes still flow while every pool thread is blocked.
 */
const dir = mkdtempSync(join(tmpdir(), 'plugrig-direct-io-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const clock = new RealClock();

async function ptyPair(t: Test, name: string): Promise<{ a: SerialLink; b: SerialLink }> {
  const [la, lb] = [join(dir, `${name}-a`), join(dir, `${name}-b`)];
  const socat = spawn('socat', ['pty,raw,echo=0,link=' + la, 'pty,raw,echo=0,link=' + lb], { stdio: 'ignore' });
  t.teardown(() => void socat.kill());
  for (let i = 0; i < 100 && !(existsSync(la) && existsSync(lb)); i++) await clock.sleep(20);
  const a = await openLink(la, { baudRate: 115200, clock });
  const b = await openLink(lb, { baudRate: 115200, clock });
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  return { a, b };
}

t.test('bytes cross a pty while every libuv pool thread is blocked', async (t) => {
  const { a, b } = await ptyPair(t, 'busy');
  // 64 reads of an empty FIFO hold every pool thread (at most UV_THREADPOOL_SIZE run) until it gets data.
  const fifo = join(dir, 'fifo');
  await promisify(execFile)('mkfifo', [fifo]);
  const fd = openSync(fifo, 'r+');
  const blocked = Array.from({ length: 64 }, () => new Promise<void>((resolve) => read(fd, Buffer.alloc(1), 0, 1, null, () => resolve())));
  let poolFree = false;
  stat(dir, () => {
    poolFree = true;
  });
  const release = (): void => {
    writeSync(fd, Buffer.alloc(64));
  };
  const watchdog = setTimeout(release, 4000);
  try {
    const request = Uint8Array.from([0x01, 0xe0, 0xfc, 0x09, 0x10, 0x00, 0x10, 0x01, 0x00, 0xff, 0x1f, 0x01, 0x00]);
    const t0 = clock.now();
    await a.write(request);
    t.same(await b.read(request.length, 5000), request, 'request arrived');
    const reply = Uint8Array.from([0x04, 0x0e, 0x08, 0x01, 0xe0, 0xfc, 0x10, 0x12, 0x34, 0x56, 0x78]);
    await b.write(reply);
    t.same(await a.read(reply.length, 5000), reply, 'reply arrived');
    const ms = clock.now() - t0;
    t.notOk(poolFree, 'the pool was blocked all along (a stat queued behind it had not finished)');
    t.ok(ms < 2000, `round trip in ${ms.toFixed(1)} ms, without waiting for the pool`);
  } finally {
    clearTimeout(watchdog);
    release();
    await Promise.all(blocked);
    closeSync(fd);
  }
});

t.test('64 KiB each way arrive intact (writes that fill the pty wait for room)', async (t) => {
  const { a, b } = await ptyPair(t, 'bulk');
  const data = new Uint8Array(65536).map((_, i) => (i * 7 + (i >> 8)) & 0xff);
  const back = data.map((x) => x ^ 0xa5);
  const [got, gotBack] = await Promise.all([b.read(data.length, 20000), a.read(back.length, 20000), a.write(data), b.write(back)]);
  t.same(Buffer.from(got), Buffer.from(data), 'a -> b intact');
  t.same(Buffer.from(gotBack), Buffer.from(back), 'b -> a intact');
});

t.test('closing a port while its read waits ends that read, not the process', async (t) => {
  const { a } = await ptyPair(t, 'close');
  const pending = a.read(1, 10000).then(
    () => null,
    (e: unknown) => e,
  );
  await clock.sleep(20);
  await a.close();
  t.match(await pending, { name: 'TransportError', message: /was closed/ });
});
