import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { ConfigError } from '../../rig/core/errors.ts';
import { openStoreForReading } from '../../rig/store/open-store.ts';
import { DEFAULT_STORE_PATH } from '../../rig/store/station-store.ts';
import { summarizeRun, type RunSummary } from '../../reports/json-summary.ts';
import { compareNights, comparisonLines } from '../../reports/nightly-compare.ts';
import { basePlanPath, loadNightly, planVariant, relativeTo } from '../../reports/nightly-plan.ts';
import { readReportRun } from '../../reports/store-reports.ts';
import { prepareOutputDir } from '../args.ts';
import { exitCodeOf } from '../failure.ts';
import { cliStdout } from '../io.ts';
import { printJson } from '../output.ts';
import { PACKAGE_ROOT } from '../../rig/core/package-root.ts';

interface NightlyArgs {
  plan: string;
  compare: string;
  store: string;
  out?: string;
  json?: boolean;
}

/**
 * Exit codes (README table, cli/failure.ts): `worse` (12) something got worse since the previous night,
 * else `unit` (9) a unit failed, else 0. Not 10: that is a bug in plugrig, and a regression is not one.
 */
export const EXIT_WORSE = exitCodeOf('worse');
export const EXIT_UNIT_FAILED = exitCodeOf('unit');
const PLAN_DIR = join(PACKAGE_ROOT, 'fixtures/plans');

export const nightlyCommand: CommandModule<object, NightlyArgs> = {
  command: 'nightly',
  builder: (y: Argv) =>
    y
      .option('plan', { type: 'string', default: 'nightly', describe: 'nightly matrix: fixtures/plans/<name>.json or a path' })
      .option('compare', { type: 'string', default: 'last', choices: ['last', 'none'], describe: 'compare with the previous night in the store' })
      .option('store', { type: 'string', default: DEFAULT_STORE_PATH, describe: 'station store (SQLite) the runs are written to and compared from' })
      .option('out', { type: 'string', describe: 'directory for the night (default runs/nightly-<timestamp>)' })
      .option('json', { type: 'boolean' }) as unknown as Argv<NightlyArgs>,
  handler: async (args: ArgumentsCamelCase<NightlyArgs>) => {
    const matrix = loadNightly(args.plan, PLAN_DIR);
    const basePath = basePlanPath(matrix, PLAN_DIR);
    let baseJson: string;
    try {
      baseJson = readFileSync(basePath, 'utf8');
    } catch (e) {
      throw new ConfigError(`nightly matrix ${matrix.source}: base plan ${basePath}: ${(e as Error).message}`, { step: 'plan' });
    }
    const jig = relativeTo(matrix, matrix.jig);
    const night = await prepareOutputDir(args.out ?? join('runs', `nightly-${new Date().toISOString().replace(/[:.]/g, '-')}`), { option: '--out', mustBeEmpty: 'a night directory holds one night: name a new directory' });
    await mkdir(join(night, 'plans'), { recursive: true });

    const tonight: string[] = [];
    for (const entry of matrix.firmware) {
      const variant = planVariant(baseJson, basePath, entry.version);
      const planFile = join(night, 'plans', `${String(variant.name)}-${entry.version}.json`);
      await writeFile(planFile, JSON.stringify(variant, null, 2) + '\n');
      if (!args.json) cliStdout().write(`${String(variant.name)} @ ${entry.version}: running on ${jig}\n`);
      tonight.push(await runEntry(['--plan', planFile, '--jig', jig, '--store', args.store, '--out', join(night, entry.version), ...(entry.image ? ['--image', relativeTo(matrix, entry.image)] : [])]));
    }

    const store = await openStoreForReading(args.store);
    let summaries: RunSummary[];
    let previous: RunSummary[] = [];
    try {
      summaries = await Promise.all(tonight.map(async (id) => summarizeRun(await readReportRun(store.reader, id, store.where))));
      if (args.compare === 'last') {
        const all = await store.reader.listRuns({ limit: 1000 });
        const firstTonight = summaries.map((s) => s.startedAt).sort()[0]!;
        for (const s of summaries) {
          // The newest earlier run of the same plan variant and firmware: the previous night's.
          const prev = all.find((r) => !tonight.includes(r.runId) && r.plan === s.plan.name && (r.image?.version ?? r.image?.name) === (s.image?.version ?? s.image?.name) && r.startedAt < firstTonight);
          if (prev) previous.push(summarizeRun(await readReportRun(store.reader, prev.runId, store.where)));
        }
      }
    } finally {
      await store.close();
    }
    const comparison = compareNights(summaries, previous, matrix.marginDrop !== undefined ? { marginDrop: matrix.marginDrop } : {});
    const failedUnits = summaries.reduce((n, s) => n + s.counts.units - s.counts.passed, 0);
    await writeFile(join(night, 'nightly.json'), JSON.stringify({ schema: 'plugrig.nightly-result/1', matrix: matrix.source, runs: tonight, previous: previous.map((p) => p.runId), comparison }, null, 2) + '\n');
    if (args.json) printJson({ night, runs: summaries.map((s) => ({ runId: s.runId, plan: s.plan.name, firmware: s.image?.version, counts: s.counts })), previous: previous.map((p) => p.runId), comparison });
    else {
      for (const s of summaries) cliStdout().write(`run ${s.runId}  ${s.plan.name} @ ${s.image?.version ?? s.image?.name ?? '-'}: ${s.counts.passed} of ${s.counts.units} unit(s) passed\n`);
      if (args.compare === 'last') for (const l of comparisonLines(comparison)) cliStdout().write(`${l}\n`);
      cliStdout().write(`night ${night}\n`);
    }
    process.exitCode = comparison.regressions.length > 0 ? EXIT_WORSE : failedUnits > 0 ? EXIT_UNIT_FAILED : 0;
  },
};

/** One matrix entry through `plugrig run --json` in a child process (a run owns its process: signals, guards); its run id. */
function runEntry(runArgs: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(PACKAGE_ROOT, 'bin/plugrig.mjs'), 'run', ...runArgs, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => {
      let runId: unknown;
      try {
        runId = (JSON.parse(out) as { store?: { runId?: unknown } }).store?.runId;
      } catch {
        runId = undefined;
      }
      // 9 = a unit failed: still a night to compare.
      if ((code === 0 || code === EXIT_UNIT_FAILED) && typeof runId === 'string') resolve(runId);
      else reject(new ConfigError(`plugrig run ${runArgs.join(' ')} ended with code ${code}${typeof runId === 'string' ? '' : ' without a stored run id'}: ${err.trim().split('\n').slice(-3).join(' | ') || out.trim().slice(-300)}`, { step: 'nightly' }));
    });
  });
}
