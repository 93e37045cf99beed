// Child process of test/store-sqlite.test.ts: writes a run into the store given as argv[2] and
// SIGKILLs itself right after slot 1's second step was committed, printing each commit first
// (stdout to a pipe is synchronous on Linux, so every printed line was written before the kill).
import { SqliteStore } from '../rig/store/sqlite-store.ts';
import { fixtureRun, macOf } from './store-run-fixture.ts';

const store = SqliteStore.open(process.argv[2]!);
let committedSlot1 = 0;
await fixtureRun({
  store,
  seed: 7,
  stationId: 'station-k',
  units: [1, 2, 3].map((slot) => ({ slot, mac: macOf(0x700 + slot) })),
  sink: {
    emit(e) {
      if (e.type === 'run-started') process.stdout.write(`run ${e.run.runId}\n`);
      if (e.type === 'step-finished') {
        process.stdout.write(`committed ${e.slot} ${e.result.index} ${e.result.measurements.length}\n`);
        if (e.slot === 1 && ++committedSlot1 === 2) process.kill(process.pid, 'SIGKILL');
      }
    },
  },
});
