import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../rig/core/errors.ts';

export const NIGHTLY_SCHEMA = 'plugrig.nightly/1';

/**
 * A nightly matrix (fixtures/plans/nightly.json): a base plan run once per firmware on every slot of
 * a jig. Each entry runs as its own plan variant named `nightly-<base>` with the entry's image
 * version, so nights compare with nights (not with production runs of the base plan) per firmware.
 */
const NightlySchema = z
  .object({
    schema: z.literal(NIGHTLY_SCHEMA),
    name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'lower-case letters, digits and dashes'),
    description: z.string().optional(),
    /** Base plan: a name in the plan directory or a path relative to this file. */
    plan: z.string().min(1),
    /** Jig file, relative to this file. */
    jig: z.string().min(1),
    firmware: z
      .array(
        z
          .object({
            /** OpenBeken version; on a virtual jig without `image`, a synthetic image of this version. */
            version: z.string().regex(/^\d+\.\d+\.\d+$/, 'a version like 1.18.42'),
            /** Image file, relative to this file (needed on a real jig). */
            image: z.string().min(1).optional(),
          })
          .strict(),
      )
      .min(1),
    /** How far the worst guard margin may shrink (fraction of the limit span) before it counts as worse. */
    marginDrop: z.number().finite().min(0).max(1).optional(),
  })
  .strict();

export type NightlyMatrix = z.infer<typeof NightlySchema> & { source: string };

/** `name` (fixtures/plans/<name>.json) or a path. */
export function loadNightly(nameOrPath: string, planDir: string): NightlyMatrix {
  const path = /[/\\]|\.json$/.test(nameOrPath) ? resolve(nameOrPath) : join(planDir, `${nameOrPath}.json`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ConfigError(`nightly matrix ${path}: ${(e as Error).message}`, { step: 'plan' });
  }
  const parsed = NightlySchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(`nightly matrix ${path}: ${issue.path.join('.') || '(root)'}: ${issue.message}`, { step: 'plan' });
  }
  return { ...parsed.data, source: path };
}

export function relativeTo(matrix: NightlyMatrix, p: string): string {
  return isAbsolute(p) ? p : resolve(dirname(matrix.source), p);
}

/** The base plan file a matrix names. */
export function basePlanPath(matrix: NightlyMatrix, planDir: string): string {
  return /[/\\]|\.json$/.test(matrix.plan) ? relativeTo(matrix, matrix.plan) : join(planDir, `${matrix.plan}.json`);
}

/**
 * The plan one matrix entry runs: the base plan's JSON renamed `nightly-<base>`, its image version set
 * to the entry's (and every suite's explicit expectVersion with it). Nothing else changes: limits and
 * policies are the base plan's. Relative paths in the base plan stay valid because the variant is
 * written next to nothing: `imageFile`, when the base plan names one, is made absolute.
 */
export function planVariant(basePlanJson: string, basePath: string, version: string): Record<string, unknown> {
  const plan = JSON.parse(basePlanJson) as Record<string, unknown> & { name: string; image?: { file?: string; version?: string }; suites: Array<Record<string, unknown>> };
  const image: { file?: string; version: string } = { version };
  if (plan.image?.file) image.file = resolve(dirname(basePath), plan.image.file);
  return {
    ...plan,
    name: `nightly-${plan.name}`,
    description: `nightly matrix entry: plan ${plan.name} with OpenBeken ${version}`,
    image,
    suites: plan.suites.map((s) => ('expectVersion' in s ? { ...s, expectVersion: version } : s)),
  };
}
