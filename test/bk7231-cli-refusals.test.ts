import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { plugrigInProcess } from './fixtures/cli-in-process.ts';

/**
 * `plugrig flash` judges the write request before it opens the port: a port that does not exist
 * shows it, because the request's own error comes out instead of the port's (exit 4). In-process (runCli).
 */
const dir = mkdtempSync(join(tmpdir(), 'plugrig-refusals-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const raw = join(dir, 'raw.bin');
writeFileSync(raw, new Uint8Array(0x2000).fill(0x5a));
const plugrig = (...args: string[]) => plugrigInProcess(args, { env: { PLUGRIG_LOG: 'silent' } });

t.test('unaligned offset and protected regions are refused before the port is opened', async (t) => {
  const cases: Array<[string[], number, RegExp]> = [
    [['flash', raw, '--port', '/dev/ttyNOPE9', '--offset', '0x11100'], 2, /offset 0x11100 is not 4 KiB aligned/],
    [['flash', raw, '--port', '/dev/ttyNOPE9', '--offset', '0x1cf000'], 2, /refusing to write RF calibration/],
    [['flash', raw, '--port', '/dev/ttyNOPE9', '--offset', '0x0'], 2, /refusing to write bootloader/],
    [['flash', raw, '--port', '/dev/ttyNOPE9', '--offset', '0x11000'], 4, /\/dev\/ttyNOPE9 does not exist/],
  ];
  for (const [args, code, message] of cases) {
    const r = await plugrig(...args);
    t.equal(r.exitCode, code, `plugrig ${args.join(' ')} exits ${code}`);
    t.match(r.stderr, message);
  }
});
