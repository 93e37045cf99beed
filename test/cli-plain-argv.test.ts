import t from 'tap';
import yargs from 'yargs';
import { GLOBAL_OPTIONS } from '../cli/main.ts';
import { flashArgsWithoutYargs, flashCommand } from '../cli/commands/flash.ts';

/**
 * `plugrig flash` parses plain argv without yargs (cli/plain-argv.ts): what it hands the handler must
 * be exactly what yargs hands it for the same argv, and anything it does not fully understand must be
 * left to yargs (undefined).
 */
async function viaYargs(argv: string[]): Promise<Record<string, unknown>> {
  let got: Record<string, unknown> | undefined;
  await yargs(argv)
    .scriptName('plugrig')
    .command({ ...flashCommand, handler: (a) => void (got = a as Record<string, unknown>) })
    .options(GLOBAL_OPTIONS)
    .strict()
    .fail((msg, err) => {
      throw err ?? new Error(msg);
    })
    .parseAsync();
  if (!got) throw new Error('yargs did not call the handler');
  return got;
}

const plain: string[][] = [
  ['flash', 'img.bin', '--port', '/tmp/chip'],
  ['flash', 'img.bin', '--port', '/tmp/chip', '--baud', '921600'],
  ['flash', '--baud=921600', 'img.bin', '--port=/tmp/chip', '--no-reboot', '--json'],
  ['flash', 'img.bin', '--sim', '--sim-seed', '7', '--sim-time', 'virtual', '--no-sim-protected', '--reset', 'none'],
  ['flash', 'raw.bin', '--offset', '0x11000', '--port', '/dev/ttyUSB0', '--force', '--raw', '--diff', '--full'],
  ['flash', 'img.bin', '--port', 'p', '--backup', 'b.bin', '--overwrite', '--tap', 'r.tap', '--verbose', '--log-file', 'l.log'],
  ['flash', 'img.bin', '--reboot', '--port', 'p'],
];

t.test('plain argv: the same arguments as yargs gives the handler', async (t) => {
  for (const argv of plain) {
    const fast = flashArgsWithoutYargs(argv, GLOBAL_OPTIONS);
    t.ok(fast, `taken without yargs: ${argv.join(' ')}`);
    t.same(fast, await viaYargs(argv), argv.join(' '));
  }
});

const leftToYargs: string[][] = [
  ['flash', '--help'],
  ['flash', 'img.bin', '-h'],
  ['flash', 'img.bin', '--version'],
  ['flash'],
  ['flash', 'a.bin', 'b.bin'],
  ['flash', 'img.bin', '--port', 'p', '--port', 'q'],
  ['flash', 'img.bin', '--reboot', 'false'],
  ['flash', 'img.bin', '--json=true'],
  ['flash', 'img.bin', '--baud', '1e6'],
  ['flash', 'img.bin', '--baud', '0x10'],
  ['flash', 'img.bin', '--baud', 'fast'],
  ['flash', 'img.bin', '--sim-time', 'slow'],
  ['flash', 'img.bin', '--port'],
  ['flash', 'img.bin', '--port', '--sim'],
  ['flash', 'img.bin', '--simSeed', '3'],
  ['flash', 'img.bin', '--no-port', 'x'],
  ['flash', 'img.bin', '--bogus'],
  ['flash', 'img.bin', '--', '--port'],
  ['info', '--port', 'p'],
];

t.test('anything else is left to yargs', async (t) => {
  for (const argv of leftToYargs) t.equal(flashArgsWithoutYargs(argv, GLOBAL_OPTIONS), undefined, argv.join(' '));
});
