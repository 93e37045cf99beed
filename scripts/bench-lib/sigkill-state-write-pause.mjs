// Preloaded (`node --import`) into a station the SIGKILL soak is about to kill: holds the station
// state file's N-th write open halfway, so the kill lands inside the write window. Whatever file the
// station writes the state through (a temporary that is then renamed, or station-state.json itself),
// that file is left half-written; only a station that writes aside and renames keeps a readable state.
// PLUGRIG_SIGKILL_PAUSE_WRITE=N picks the write (1 = the first); PLUGRIG_SIGKILL_PAUSE_COMPLETE=K picks
// the first write that says K slots complete (the one after a unit's record said complete: a kill there
// leaves a record ahead of its state). The pause is announced on stderr.
import { syncBuiltinESMExports } from 'node:module';
import { constants, writeSync } from 'node:fs';
import fsp from 'node:fs/promises';
import { basename } from 'node:path';

export const PAUSE_MARKER = 'sigkill-soak: paused inside a station state write';
const nth = Number(process.env.PLUGRIG_SIGKILL_PAUSE_WRITE ?? 0);
const completeK = Number(process.env.PLUGRIG_SIGKILL_PAUSE_COMPLETE ?? 0);
let pausedOnce = false;
/** Does this state write say (at least) K slots complete, and is it the first such? */
const completesK = (data) => {
  if (completeK <= 0 || pausedOnce) return false;
  const n = String(data).split('"complete": true').length - 1;
  return n >= completeK && (pausedOnce = true);
};
const PAUSE_MS = 5000;
let writes = 0;

const isStateFile = (p) => basename(String(p)).startsWith('station-state.json');
/** Opened for writing from the start: 'w'-style strings, or O_TRUNC in numeric flags. */
const truncates = (flags) => (typeof flags === 'string' ? /w/.test(flags) : typeof flags === 'number' && (flags & constants.O_TRUNC) !== 0);

/** Write the first half, announce the pause, wait (the kill comes here), then the rest. */
async function halfThenPause(fh, data) {
  const buf = Buffer.from(data);
  const half = Math.floor(buf.length / 2);
  await fh.write(buf, 0, half, 0);
  writeSync(2, `${PAUSE_MARKER}\n`);
  await new Promise((r) => setTimeout(r, PAUSE_MS));
  await fh.write(buf, half, buf.length - half, half);
}

const open = fsp.open;
fsp.open = async (path, flags, mode) => {
  const fh = await open(path, flags, mode);
  if (nth > 0 && isStateFile(path) && truncates(flags) && ++writes === nth) {
    fh.writeFile = (data) => halfThenPause(fh, data);
  } else if (completeK > 0 && isStateFile(path) && truncates(flags)) {
    const whole = fh.writeFile.bind(fh);
    fh.writeFile = (data, ...rest) => (completesK(data) ? halfThenPause(fh, data) : whole(data, ...rest));
  }
  return fh;
};
const writeFile = fsp.writeFile;
fsp.writeFile = async (path, data, options) => {
  if (!(isStateFile(path) && ((nth > 0 && ++writes === nth) || completesK(data)))) return writeFile(path, data, options);
  const fh = await open(path, 'w');
  try {
    await halfThenPause(fh, data);
  } finally {
    await fh.close();
  }
};
// Named imports (`import { open } from 'node:fs/promises'`) see the wrappers too.
syncBuiltinESMExports();
