import t from 'tap';
import { execa } from 'execa';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { SqliteConnection } from '../rig/store/sqlite-connection.ts';

/**
 * Wi-Fi and web passwords never reach an output. Real CLI processes run with unusual passwords in
 * the environment: the factory plan on the virtual jig (text, --verbose trace lines on stderr; its
 * station network takes only these credentials, so the run passes only if the plug really got them),
 * the smoke plan (--json, trace lines in the run directory's plugrig.log), `provision --http` (the
 * Wi-Fi set request carries both passwords) and a provisioning that fails (the plug's HTTP stalls).
 * Then every byte they left is searched — stdout, stderr, --json, --events, logs, unit records,
 * TAP/JUnit/HTML/JSON reports, station-state.json, the stock backup and any side file in the run
 * directories, and the SQLite stores (every row of every table as text, and the raw files with
 * their WAL) — for each password in every encoding that could carry it.
 */
const HERE = dirname(new URL(import.meta.url).pathname);
const ROOT = join(HERE, '..');
const BIN = join(ROOT, 'bin', 'plugrig.mjs');

// Unusual on purpose (a hit is unambiguous) and full of characters that encodings change.
const WIFI_PASS = 'Kx9vWifiCore#&"%; x+=/?';
const WEB_PASS = 'Mq4zWebCore@/+=? y&"';
const SECRETS = { PLUGRIG_WIFI_SSID: 'h27-station', PLUGRIG_WIFI_PASS: WIFI_PASS, PLUGRIG_WEB_PASS: WEB_PASS };

/** Every form a secret could take in text we write: raw, URL/form-encoded, JSON-escaped, base64 (Basic auth), hex; and its distinctive core. */
function forms(secret: string): string[] {
  const core = secret.slice(0, 11); // "Kx9vWifiCor": survives any escaping of the punctuation after it
  const hexOf = (s: string): string[] => [Buffer.from(s).toString('hex'), Buffer.from(s).toString('hex').replace(/(..)(?!$)/g, '$1 ')];
  return [
    secret,
    core,
    encodeURIComponent(secret),
    new URLSearchParams({ x: secret }).toString().slice(2),
    JSON.stringify(secret).slice(1, -1),
    Buffer.from(secret).toString('base64'),
    Buffer.from(`admin:${secret}`).toString('base64'),
    ...hexOf(core),
  ];
}
const NEEDLES = [...forms(WIFI_PASS).map((f) => ({ what: 'Wi-Fi password', f })), ...forms(WEB_PASS).map((f) => ({ what: 'web password', f }))];

/** Where a secret shows in `text` (case-sensitive; hex also in upper case), or []. */
function leaks(text: string): string[] {
  const out: string[] = [];
  for (const { what, f } of NEEDLES) {
    if (text.includes(f) || (/^[0-9a-f ]+$/.test(f) && text.includes(f.toUpperCase()))) out.push(`${what} as ${JSON.stringify(f)}`);
  }
  return out;
}

const dir = mkdtempSync(join(tmpdir(), 'plugrig-secrets-'));
const jig1 = join(ROOT, 'fixtures/jigs/virtual-1slot.json');
const stallJig = join(dir, 'jig-http-stalls.json');
{
  const j = JSON.parse(readFileSync(jig1, 'utf8')) as { slots: Array<Record<string, unknown>> };
  j.slots[0]!.sim = { defects: ['http-stalls'] };
  writeFileSync(stallJig, JSON.stringify(j, null, 2));
}

interface Ran {
  name: string;
  code: number;
  stdout: string;
  stderr: string;
}

async function plugrig(name: string, argv: string[]): Promise<Ran> {
  const r = await execa(process.execPath, [BIN, ...argv], {
    reject: false,
    cwd: dir,
    timeout: 110_000,
    env: { ...SECRETS, PLUGRIG_LOG: 'trace', TAP: '', NODE_OPTIONS: '' },
  });
  return { name, code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Every file under `d` (not following symlinks), with its bytes as latin1 text. */
function filesUnder(d: string): Array<{ path: string; text: string }> {
  const out: Array<{ path: string; text: string }> = [];
  for (const e of readdirSync(d, { withFileTypes: true })) {
    const p = join(d, e.name);
    if (lstatSync(p).isDirectory()) out.push(...filesUnder(p));
    else if (lstatSync(p).isFile()) out.push({ path: p, text: readFileSync(p).toString('latin1') + '\n' + readFileSync(p, 'utf8') });
  }
  return out;
}

/** Every row of every table of an SQLite store, as JSON text (BLOBs as latin1). */
function storeAsText(path: string): { tables: string[]; rows: number; text: string } {
  const db = new SqliteConnection(path, { readonly: true });
  try {
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>).map((r) => r.name);
    let rows = 0;
    const parts: string[] = [];
    for (const name of tables) {
      for (const row of db.prepare(`SELECT * FROM "${name.replaceAll('"', '""')}"`).all() as Array<Record<string, unknown>>) {
        rows++;
        parts.push(JSON.stringify(row, (_k, v: unknown) => (Buffer.isBuffer(v) ? v.toString('latin1') : v)));
        for (const v of Object.values(row)) if (typeof v === 'string') parts.push(v);
      }
    }
    return { tables, rows, text: parts.join('\n') };
  } finally {
    db.close();
  }
}

t.test('the leak detector finds every form of the passwords it looks for', async (t) => {
  t.ok(leaks(`GET /cfg_wifi_set?pass=${encodeURIComponent(WIFI_PASS)}`).length > 0, 'URL-encoded Wi-Fi password');
  t.ok(leaks(JSON.stringify({ p: WEB_PASS })).length > 0, 'JSON-escaped web password');
  t.ok(leaks(`Authorization: Basic ${Buffer.from(`admin:${WEB_PASS}`).toString('base64')}`).length > 0, 'Basic auth header');
  t.ok(leaks(`bytes seen: ${Buffer.from(WIFI_PASS).toString('hex').toUpperCase()}`).length > 0, 'hex bytes');
  t.same(leaks('Password1 *** ssid h27-station'), [], 'a redacted line is clean');
});

t.test('no password in any output of runs and provisionings', async (t) => {
  const runA = join(dir, 'run-a');
  const runB = join(dir, 'run-b');
  // All at once: the cost is CPU (about 20 s of it), not waiting.
  const [a, b, p, pFail] = await Promise.all([
    plugrig('run factory (text, --verbose)', ['run', '--sim', '--slot', '1', '--out', runA, '--store', join(dir, 'a.sqlite'), '--events', join(dir, 'a.ndjson'), '--verbose']),
    plugrig('run smoke --json', ['run', '--sim', '--slot', '1', '--plan', 'smoke', '--out', runB, '--store', join(dir, 'b.sqlite'), '--events', join(dir, 'b.ndjson'), '--json']),
    plugrig('provision --http --json', ['provision', jig1, '--slot', '1', '--template', join(ROOT, 'fixtures/devices/rmc021.json'), '--sim', '--http', '--json', '--verbose']),
    plugrig('provision --http, plug stalls (--json)', ['provision', stallJig, '--slot', '1', '--template', join(ROOT, 'fixtures/devices/rmc021.json'), '--sim', '--http', '--timeout', '3', '--json', '--verbose']),
  ]);
  // The runs must really have used the passwords: the virtual station network takes only those.
  t.equal(a.code, 0, `factory run passes (the plug joined with the unusual Wi-Fi password): ${a.stderr.slice(-300)}`);
  t.equal(b.code, 0, `the smoke run (flash, provision, smoke) passes too: ${b.stderr.slice(-300)}`);
  t.match(JSON.parse(b.stdout), { plan: 'smoke', passed: 1, slots: [{ verdict: 'pass' }] }, '--json run: one unit passed');
  t.match(a.stderr, /"level":10/, '--verbose: trace log lines on stderr');
  t.match(readFileSync(join(runB, 'plugrig.log'), 'utf8'), /"level":10/, 'plugrig.log at trace level');
  t.equal(p.code, 0, `provision passes: ${p.stderr.slice(-300)}`);
  t.match(JSON.parse(p.stdout), { secrets: ['PLUGRIG_WIFI_SSID from the environment', 'PLUGRIG_WIFI_PASS from the environment', 'PLUGRIG_WEB_PASS from the environment'] }, 'provision took both passwords from the environment');
  t.match(JSON.parse(p.stdout), { mode: 'http', commands: ['ClearIO'] }, 'provision went over HTTP (the Wi-Fi set request carries both passwords)');
  t.match(p.stderr, /^\{"level":/m, 'provision --verbose: log lines on stderr');
  t.match(a.stderr, /"tx":"[0-9a-f ]{3000,}"/, 'the factory run traces the ROM frames (the config sector with the Wi-Fi password among them)');
  t.not(pFail.code, 0, 'provision --http on a stalling plug fails');
  t.match(JSON.parse(pFail.stdout), { error: { message: /not online|no complete reply|timed out/ } }, 'its --json failure names the problem');
  t.match(pFail.stderr, /^plugrig: /m, 'and stderr has the one message');

  const texts: Array<{ where: string; text: string }> = [];
  for (const r of [a, b, p, pFail]) {
    texts.push({ where: `${r.name}: stdout`, text: r.stdout }, { where: `${r.name}: stderr`, text: r.stderr });
  }
  const files = filesUnder(dir).filter((f) => !f.path.endsWith('.sqlite') && f.path !== stallJig);
  for (const f of files) texts.push({ where: f.path.slice(dir.length + 1), text: f.text });
  const names = files.map((f) => f.path.slice(dir.length + 1));
  for (const want of ['a.ndjson', 'b.ndjson', 'run-a/slot-1.json', 'run-a/slot-1.tap', 'run-a/report.tap', 'run-a/report-tap13.tap', 'run-a/junit.xml', 'run-a/report.html', 'run-a/summary.json', 'run-a/station-state.json', 'run-b/plugrig.log']) {
    t.ok(names.includes(want), `searched ${want}`);
  }
  t.ok(names.some((n) => /^run-a\/slot-1-backup-[0-9a-f]{12}\.bin$/.test(n)), 'searched the stock backup');
  for (const s of ['a.sqlite', 'b.sqlite']) {
    const st = storeAsText(join(dir, s));
    t.ok(st.tables.length >= 5 && st.rows > 20, `${s}: ${st.tables.length} tables, ${st.rows} rows searched`);
    texts.push({ where: `${s} (tables as text)`, text: st.text });
    for (const raw of filesUnder(dir).filter((f) => f.path.startsWith(join(dir, s)))) texts.push({ where: `${raw.path.slice(dir.length + 1)} (raw)`, text: raw.text });
  }
  const hits = texts.flatMap((x) => leaks(x.text).map((l) => `${x.where}: ${l}`));
  t.same(hits, [], `no password in ${texts.length} outputs`);
});
