import t from 'tap';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TOP_HELP, runCli, yargsCli } from '../cli/main.ts';
import { TOP_HELP_MIN_WIDTH, englishLocale, renderTopHelp, type TopHelp } from '../cli/top-help.ts';

/**
 * `plugrig --help` is rendered without yargs (cli/top-help.ts). It must print exactly what yargs
 * prints for the same commands and options, at every width a terminal may have, and it must not load
 * yargs (that was the point: most of the command's start-up).
 */
const ROOT = fileURLToPath(new URL('..', import.meta.url));

async function yargsHelp(width: number, argv: readonly string[] = []): Promise<string> {
  return (await yargsCli(argv, { exitProcess: false })).locale('en').wrap(width).getHelp();
}

t.test('the same text as yargs at every width it can be laid out to (the minimum to 110)', async (t) => {
  // main.ts caps the width at 110 columns.
  const widths = Array.from({ length: 111 - TOP_HELP_MIN_WIDTH }, (_, i) => TOP_HELP_MIN_WIDTH + i);
  const differ: number[] = [];
  const y = (await yargsCli([], { exitProcess: false })).locale('en');
  for (const w of widths) if (renderTopHelp(TOP_HELP, w) !== (await y.wrap(w).getHelp())) differ.push(w);
  t.same(differ, [], 'widths where the text differs from yargs');
  t.equal(renderTopHelp(TOP_HELP, 100), await yargsHelp(100), 'width 100 (a pipe) in full');
});

t.test('long words, hints that do not fit and multi-line usage are laid out as yargs does', async (t) => {
  // Synthetic tables through yargs itself, so the layout rules are checked beyond today's texts.
  const { default: yargs } = await import('yargs');
  const help: TopHelp = {
    scriptName: 'x',
    usage: '$0 <command>\n\nline two is a long line of words that will need to wrap at narrow widths',
    commands: [
      { command: 'averyveryveryverylongcommandnamewithoutspaces <arg>', describe: 'short' },
      { command: 'b', describe: 'a description with averyveryveryveryveryveryveryveryverylongwordinside and more words after it' },
    ],
    options: [
      { name: 'some-really-quite-long-option-name', describe: 'describe it at a length that ends close to the right edge of a forty', type: 'string' },
      { name: 'nn', describe: '', type: 'number' },
    ],
  };
  const differ: number[] = [];
  for (let w = TOP_HELP_MIN_WIDTH; w <= 110; w += 2) {
    let y = yargs([]).scriptName('x').usage(help.usage).locale('en');
    for (const c of help.commands) y = y.command(c.command, c.describe);
    for (const o of help.options) y = y.option(o.name, { type: o.type, describe: o.describe });
    const want = await y.help().version().exitProcess(false).wrap(w).getHelp();
    const ours = renderTopHelp({ ...help, usage: help.usage.replace(/\$0/g, 'x'), options: [...help.options, ...TOP_HELP.options.slice(-2)] }, w);
    if (ours !== want) differ.push(w);
  }
  t.same(differ, [], 'widths where the text differs from yargs');
});

t.test('declines what it was not checked for: narrow widths, non-ASCII text; English locales only', async (t) => {
  t.equal(renderTopHelp(TOP_HELP, TOP_HELP_MIN_WIDTH - 1), undefined, 'narrower than the checked range');
  t.equal(renderTopHelp({ ...TOP_HELP, commands: [{ command: 'x', describe: 'mains ±1 %' }] }, 100), undefined, 'a non-ASCII description');
  t.equal(renderTopHelp({ ...TOP_HELP, options: [{ name: 'n', describe: 'count', type: 'number' }] }, 100), undefined, 'a short switch (-n)');
  t.ok(englishLocale({ LANG: 'C.UTF-8' }) && englishLocale({}) && englishLocale({ LANG: 'en_GB.UTF-8' }) && englishLocale({ LC_ALL: 'POSIX' }), 'C, none, en_GB, POSIX');
  t.notOk(englishLocale({ LANG: 'de_DE.UTF-8' }), 'de_DE: yargs prints "Kommandos:"');
  t.notOk(englishLocale({ LANG: 'en_US.UTF-8', LC_ALL: 'fr_FR' }), 'LC_ALL wins, as in yargs');
});

t.test('runCli --help prints it and exits 0', async (t) => {
  let out = '';
  let err = '';
  const code = await runCli(['--help'], { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) } });
  t.equal(code, 0);
  t.equal(err, '');
  t.equal(out, (await yargsHelp(Math.min(110, process.stdout.columns || 100))) + '\n');
});

t.test('a fresh `plugrig --help` process does not load yargs; `plugrig --help --verbose` (yargs) does', async (t) => {
  // A resolve hook in the child reports every resolution of a yargs module on stderr.
  const hook = `export async function resolve(s, c, next) { const r = await next(s, c); if (/node_modules\\/yargs\\//.test(r.url)) process._rawDebug('YARGS ' + r.url); return r; }`;
  const register = `import { register } from 'node:module'; register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}));`;
  const env: NodeJS.ProcessEnv = { ...process.env, LANG: 'C.UTF-8', PLUGRIG_FROM_SOURCE: '1' };
  delete env.LC_ALL;
  delete env.LC_MESSAGES;
  const child = (args: string[]): Promise<{ stdout: string; stderr: string; code: number | null }> =>
    new Promise((resolve) => {
      execFile(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(register)}`, 'bin/plugrig.mjs', ...args], { cwd: ROOT, env, encoding: 'utf8' }, (e, stdout, stderr) =>
        resolve({ stdout, stderr, code: e ? ((e as { code?: number }).code ?? 1) : 0 }),
      );
    });
  const fast = await child(['--help']);
  t.equal(fast.code, 0);
  t.notMatch(fast.stderr, /YARGS/, 'no yargs module resolved');
  t.equal(fast.stdout, (await yargsHelp(100)) + '\n', 'what yargs would print to a pipe');
  const slow = await child(['--help', '--verbose']);
  t.equal(slow.code, 0);
  t.match(slow.stderr, /YARGS/, 'the hook sees yargs when it is loaded (the check can fail)');
  t.equal(slow.stdout, fast.stdout, 'and yargs prints the same text');
});
