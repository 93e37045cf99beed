import t from 'tap';
import { runSigkillSoak } from '../scripts/bench-lib/sigkill-soak.ts';

/**
 * One share of the 50 SIGKILLs of a 4-slot station run (scripts/bench-lib/sigkill-soak.ts): the real
 * CLI in a child process, killed at seeded moments over the run, restarted after each kill (resume,
 * or a fresh batch beside it); every 4th kill lands inside a station-state write. Five files share
 * the 50 so that none runs much past 40 s on an idle 2-core machine.
 */
export function sigkillShare(share: { kills: number; seed: number }): void {
  t.test(`SIGKILL at ${share.kills} seeded moments of a 4-slot run (seed ${share.seed})`, async (t) => {
    const f = await runSigkillSoak({ kills: share.kills, seed: share.seed, pauseEvery: 4 });
    t.comment(`${f.kills} kills (${f.killsInStateWrite} inside a state write) in ${f.tries} tries over ${f.batches} batch(es), ${(f.wallMs / 1000).toFixed(1)} s (checker CPU ${f.checkerCpuMs} ms); calibration run ${f.calibration.events} events in ${f.calibration.ms} ms`);
    t.same(f.violations, [], 'nothing a kill cost (each line is one finding)');
    t.equal(f.kills, share.kills, `${share.kills} kills landed mid-run`);
    t.ok(f.killsInStateWrite >= Math.floor(share.kills / 4), `${f.killsInStateWrite} of them inside a station-state write`);
    t.ok(f.stepsChecked > 0, `${f.stepsChecked} reported steps checked against the records and the store`);
    t.equal(f.stepsLost, 0, '0 finished steps lost');
    t.equal(f.unitsTwice, 0, 'no unit recorded twice');
    t.equal(f.stateUnreadable, 0, 'the state file read after every kill');
    t.equal(f.abortedReported, f.diedRunning, `each of the ${f.diedRunning} runs that died mid-run was reported by the next start`);
    t.ok(f.restartsOpeningJig > 0, `${f.restartsOpeningJig} starts opened the jig`);
    t.equal(f.jigConfirmedSafe, f.restartsOpeningJig, 'each confirmed its safe state first');
  });
}
