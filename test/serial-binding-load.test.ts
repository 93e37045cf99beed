import t from 'tap';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The native serial binding is loaded when a port is first wanted, and only this OS's: importing the
 * serial modules loads nothing of @serialport/bindings-cpp, nativeSerialBinding() loads its platform
 * module (not the package index, which loads all three). A fresh process reports the module cache.
 */
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const script = `
import { createRequire } from 'node:module';
const cache = createRequire(${JSON.stringify(join(ROOT, 'package.json'))}).cache;
const loaded = () => Object.keys(cache).filter((k) => k.includes('/@serialport/bindings-cpp/dist/')).map((k) => k.replace(/.*\\/dist\\//, '')).sort();
const { nativeSerialBinding } = await import(${JSON.stringify(join(ROOT, 'rig/serial/native-binding.ts'))});
await import(${JSON.stringify(join(ROOT, 'rig/serial/serial-link.ts'))});
const atImport = loaded();
const refused = await nativeSerialBinding().open({ path: '/nonexistent/ttyUSB-plugrig', baudRate: 115200 }).then(() => 'opened', (e) => String(e.message));
process.stdout.write(JSON.stringify({ atImport, afterOpen: loaded(), refused }));
`;
const out = JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' })) as {
  atImport: string[];
  afterOpen: string[];
  refused: string;
};
t.same(out.atImport, [], 'importing the serial modules loads no binding');
t.match(out.refused, /ENOENT|no such file/i, 'the binding works: opening a missing node fails as the native binding fails it');
const own = process.platform === 'win32' ? 'win32.js' : process.platform === 'darwin' ? 'darwin.js' : 'linux.js';
t.ok(out.afterOpen.includes(own), `${own} loaded: ${out.afterOpen.join(', ')}`);
t.notOk(out.afterOpen.includes('index.js'), 'not the package index');
for (const other of ['win32.js', 'darwin.js', 'linux.js'].filter((f) => f !== own)) t.notOk(out.afterOpen.includes(other), `not ${other}`);
