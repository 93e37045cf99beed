/** Worker half of the flash soak (scripts/soak.ts): flashes units [from, to) and posts their outcomes. */
import { parentPort, workerData } from 'node:worker_threads';
import { FlashSoak, type FlashSoakConfig, type UnitOutcome } from './flash-soak.ts';

const { config, from, to, faults } = workerData as { config: FlashSoakConfig; from: number; to: number; faults: boolean };
const soak = new FlashSoak(config);
const outcomes: UnitOutcome[] = [];
for (let i = from; i < to; i++) {
  outcomes.push(await soak.flashUnit(soak.planUnit(i, faults)));
  parentPort!.postMessage({ progress: 1 });
}
parentPort!.postMessage({ outcomes });
