import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError } from '../../rig/core/errors.ts';
import { PlanSchema, type Plan } from './schema.ts';

const PLAN_SCHEMA = 'plugrig.plan/1';

export interface LoadedPlan {
  plan: Plan;
  /** Absolute path of the plan file. */
  source: string;
  /** SHA-256 of the file's bytes (goes into every record). */
  sha256: string;
}

/** Validate a parsed plan; one ConfigError lists every problem with its path. */
export function parsePlan(input: unknown, source = '<plan>'): Plan {
  const r = PlanSchema.safeParse(input);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
  throw new ConfigError(`invalid plan ${source}:\n  ${problems.join('\n  ')}`, { step: 'plan', problems });
}

/** The names of the plans in a directory (file names without .json); other JSON there (a nightly matrix) is not a plan. */
export function planNames(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json') && isPlanFile(join(dir, f)))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}

function isPlanFile(path: string): boolean {
  try {
    return (JSON.parse(readFileSync(path, 'utf8')) as { schema?: unknown }).schema === PLAN_SCHEMA;
  } catch {
    // An unreadable or broken file is still offered by name: loading it then says what is wrong.
    return true;
  }
}

/** `ref` is a plan name (a file in `dir`) or a path to a plan file. */
export function loadPlan(ref: string, dir: string): LoadedPlan {
  const isPath = ref.includes('/') || ref.endsWith('.json');
  const source = resolve(isPath ? ref : join(dir, `${ref}.json`));
  let bytes: Buffer;
  try {
    bytes = readFileSync(source);
  } catch (e) {
    const known = planNames(dir);
    const hint = isPath ? '' : ` (plans in ${dir}: ${known.join(', ') || 'none'})`;
    throw new ConfigError(`no plan ${isPath ? `file ${ref}` : `'${ref}'`}${hint}: ${(e as Error).message}`, { step: 'plan' }, { cause: e });
  }
  let data: unknown;
  try {
    data = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new ConfigError(`plan ${source} is not valid JSON: ${(e as Error).message}`, { step: 'plan' }, { cause: e });
  }
  const plan = parsePlan(data, source);
  return { plan, source, sha256: createHash('sha256').update(bytes).digest('hex') };
}
