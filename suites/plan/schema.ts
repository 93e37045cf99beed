import { z } from 'zod';

/**
 * The plan file (fixtures/plans/*.json): which suites run in which order with which limits and
 * policies. Every suite the product will have is described here, also those not built yet, so a
 * plan can be written and validated before its suite exists (the registry then refuses to run it).
 */

const MarginalActionSchema = z.enum(['retest', 'fail', 'pass-with-flag', 'retest-then-flag']);
const GuardBandSchema = z.enum(['uncertainty', 'none']);
const finite = z.number().finite();
const nonNegative = z.number().finite().nonnegative();

/** Limits of one measurement plus its decision policy. */
export const PlanLimitSchema = z
  .object({
    low: finite.optional(),
    high: finite.optional(),
    nominal: finite.optional(),
    tolerance: nonNegative.optional(),
    tolerancePct: nonNegative.optional(),
    marginal: nonNegative.optional(),
    marginalPct: z.number().finite().min(0).max(50).optional(),
    guardBand: GuardBandSchema.optional(),
    onMarginal: MarginalActionSchema.optional(),
    /** Largest acceptable expanded uncertainty U (k=2), in the measurement's unit. */
    uncertaintyTarget: z.number().finite().positive().optional(),
  })
  .strict()
  .superRefine((l, ctx) => {
    if (l.low === undefined && l.high === undefined && l.tolerance === undefined && l.tolerancePct === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'give low, high, or a tolerance (tolerance / tolerancePct around a nominal)' });
    }
    if (l.low !== undefined && l.high !== undefined && l.low > l.high) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `low ${l.low} is above high ${l.high}` });
    if (l.marginal !== undefined && l.marginalPct !== undefined) ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'give marginal or marginalPct, not both' });
  });
export type PlanLimit = z.infer<typeof PlanLimitSchema>;

/** What every suite entry may say about its steps. */
const stepPolicy = {
  /** Extra attempts per step after a failure or a marginal result with action retest. */
  retries: z.number().int().min(0).max(10).optional(),
  /** Per-attempt timeout of each step of the suite. */
  timeoutMs: z.number().int().positive().optional(),
};

const loadName = z.string().min(1);

export const FlashSuiteSchema = z
  .object({
    suite: z.literal('flash'),
    ...stepPolicy,
    /** Rewrite only sectors whose CRC differs. */
    diff: z.boolean().default(true),
    /** Read the stock firmware into the run directory before anything is written: the app partition or the whole flash. */
    backup: z.enum(['app', 'full']).optional(),
    limits: z.object({ flashTime: PlanLimitSchema }).strict(),
  })
  .strict();

export const SmokeSuiteSchema = z
  .object({
    suite: z.literal('smoke'),
    ...stepPolicy,
    /** Jig load for the reference-meter check (default: the slot's first load). */
    load: loadName.optional(),
    /** How long the Wi-Fi LED may take to light after mains on. */
    ledWithinMs: z.number().int().positive().default(3000),
    /** How long the relay may take to follow a button press (OpenBeken acts on release plus its click window). */
    relayWithinMs: z.number().int().positive().default(1000),
    limits: z.object({ mainsVoltage: PlanLimitSchema, loadPower: PlanLimitSchema, powerFactor: PlanLimitSchema }).strict(),
  })
  .strict();

export const ProvisionSuiteSchema = z
  .object({
    suite: z.literal('provision'),
    ...stepPolicy,
    /** Wi-Fi network the unit joins; its password comes from the station's secret store, never a plan. */
    wifiSsid: z.string().min(1).optional(),
    mqttHost: z.string().min(1).optional(),
  })
  .strict();

export const IdentitySuiteSchema = z
  .object({
    suite: z.literal('identity'),
    ...stepPolicy,
    chipset: z.literal('BK7231N').default('BK7231N'),
    /** Build the plug must report (default: the plan's image version). */
    expectVersion: z.string().min(1).optional(),
    /** How long after mains on the plug may take to answer /api/info (boot, join, DHCP). */
    bootWithinMs: z.number().int().positive().default(30_000),
  })
  .strict();

export const RelaySuiteSchema = z
  .object({
    suite: z.literal('relay'),
    ...stepPolicy,
    load: loadName.optional(),
    /** How long the plug may take to come back after `restart` (default-OFF check). */
    rebootWithinMs: z.number().int().positive().default(20_000),
    /**
     * Where "the relay is OFF after a reboot" is judged: `restart` (a `restart` with the relay ON,
     * then sense, API and meter), or `boot`: on the power-on boot before the suite, which a plan that
     * flashes or verifies must do anyway (the relay suite's first step; the plan must not switch the
     * relay between that mains-on and the suite; with mains off the step itself switches it on).
     */
    offAfterReboot: z.enum(['restart', 'boot']).default('restart'),
    /**
     * switchTimeMs: command sent to relay-sense change; meterTimeMs: command sent to the reference meter seeing
     * the load current appear or vanish; onCurrentA / offCurrentA: the meter's current with the relay
     * closed / open (onCurrentA's nominal defaults to the load's rating at the measured voltage).
     */
    limits: z.object({ switchTimeMs: PlanLimitSchema, meterTimeMs: PlanLimitSchema, onCurrentA: PlanLimitSchema, offCurrentA: PlanLimitSchema }).strict(),
  })
  .strict();

export const ButtonSuiteSchema = z
  .object({
    suite: z.literal('button'),
    ...stepPolicy,
    /** Actuator hold for the single click, and for the long press (past OpenBeken's 1025 ms hold start). */
    pressMs: z.number().int().positive().default(150),
    longPressMs: z.number().int().positive().default(1500),
    /** How long the relay must stay put after a double click or a long press. */
    quietMs: z.number().int().positive().default(1500),
    /** toggleTimeMs: physical release to relay-sense change (OpenBeken: ~375–400 ms, §2). */
    limits: z.object({ toggleTimeMs: PlanLimitSchema }).strict(),
  })
  .strict();

export const LedSuiteSchema = z
  .object({
    suite: z.literal('led'),
    ...stepPolicy,
    /** Light-sensor sampling interval and the window over which the connected state must be solid. */
    sampleMs: z.number().int().positive().default(20),
    solidWindowMs: z.number().int().positive().default(2000),
    /** How long to sample the blink after mains on. */
    blinkWindowMs: z.number().int().positive().default(4000),
    /**
     * Where the samples come from: `power-cycle` (mains off and on again, then the blink, then the
     * solid window), or `boot`: the light sensor during the boot an earlier suite watched (identity's
     * mains-on) for the blink, when they cover the window and the LED went on blinking after it, and
     * for the solid window the samples taken in the background from the moment the plug answered,
     * while the next steps ran (else this suite samples for itself, as with `power-cycle`).
     */
    samplesFrom: z.enum(['power-cycle', 'boot']).default('power-cycle'),
    /** Measure the AP-mode blink (a unit without Wi-Fi credentials opens its AP after ~5 s). */
    apMode: z.boolean().default(false),
    /**
     * connectedLitPct: share of samples lit in the connected state; connectingBlinkPeriodMs: the
     * not-connected blink after power-on (~1050 ms, §3); apBlinkPeriodMs: the AP blink (~550 ms).
     */
    limits: z
      .object({ connectedLitPct: PlanLimitSchema, connectingBlinkPeriodMs: PlanLimitSchema.optional(), apBlinkPeriodMs: PlanLimitSchema.optional() })
      .strict(),
  })
  .strict();

const MeteringLimitsSchema = z
  .object({ voltageErrorPct: PlanLimitSchema, currentErrorPct: PlanLimitSchema, powerErrorPct: PlanLimitSchema, pfError: PlanLimitSchema, creepW: PlanLimitSchema })
  .partial()
  .strict();

export const LoadPointSchema = z
  .object({
    /** Jig load name, or "none" for the creep test. */
    load: loadName,
    /** Overrides the suite's limits at this point (e.g. ±3 % at 10 W). */
    limits: MeteringLimitsSchema.optional(),
  })
  .strict();

export const MeteringSuiteSchema = z
  .object({
    suite: z.literal('metering'),
    ...stepPolicy,
    settleMs: z.number().int().nonnegative().default(2000),
    loadPoints: z.array(LoadPointSchema).min(1),
    limits: MeteringLimitsSchema,
  })
  .strict();

export const CalibrateSuiteSchema = z
  .object({
    suite: z.literal('calibrate'),
    ...stepPolicy,
    /** Calibration load (high power: small pulse quantization). */
    load: loadName,
    /** The plug's 1 s windows averaged at the calibration point. */
    windows: z.number().int().positive().default(10),
    /** Loads re-verified after calibration, with the metering limits. */
    reverify: z.array(LoadPointSchema).default([]),
    limits: MeteringLimitsSchema,
    /**
     * The plug's metering front end as designed (nominal shunt, divider, BL0937 reference and the
     * parts' tolerance): when given, a check after calibration refuses factors no in-tolerance front
     * end can need (suites/calibration-plausibility.ts). slackPct: the calibration's own uncertainty.
     */
    frontEnd: z
      .object({
        shuntOhms: z.number().positive(),
        dividerRatio: z.number().positive(),
        vrefVolts: z.number().positive(),
        partTolerancePct: z.number().positive().max(50),
        slackPct: z.number().min(0).max(10).default(1),
      })
      .strict()
      .optional(),
  })
  .strict();

const SUITE_SCHEMAS = [
  FlashSuiteSchema,
  SmokeSuiteSchema,
  ProvisionSuiteSchema,
  IdentitySuiteSchema,
  RelaySuiteSchema,
  ButtonSuiteSchema,
  LedSuiteSchema,
  MeteringSuiteSchema,
  CalibrateSuiteSchema,
] as const;

/** Every suite name a plan may use (built or not). */
export const SUITE_NAMES = SUITE_SCHEMAS.map((s) => s.shape.suite.value);

export const SuiteEntrySchema = z.discriminatedUnion('suite', [...SUITE_SCHEMAS], {
  errorMap: (issue, ctx) => {
    if (issue.code === z.ZodIssueCode.invalid_union_discriminator) {
      const got = (ctx.data as { suite?: unknown } | undefined)?.suite;
      return { message: got === undefined ? `missing "suite" (one of ${SUITE_NAMES.join(', ')})` : `unknown suite '${String(got)}' (known: ${SUITE_NAMES.join(', ')})` };
    }
    return { message: ctx.defaultError };
  },
});
export type SuiteEntry = z.infer<typeof SuiteEntrySchema>;
export type SuiteName = SuiteEntry['suite'];

export const PlanSchema = z
  .object({
    schema: z.literal('plugrig.plan/1'),
    name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'lower-case letters, digits and dashes'),
    description: z.string().optional(),
    image: z
      .object({
        /** Image file, relative to the plan file; none: the --image option (or a synthetic image on the virtual jig). */
        file: z.string().min(1).optional(),
        /** OpenBeken version the image must be. */
        version: z.string().min(1).optional(),
      })
      .strict()
      .default({}),
    device: z
      .object({
        /** OpenBeken device template (pins, flags) applied by provision and read back by identity. */
        template: z.string().min(1),
      })
      .strict()
      .optional(),
    defaults: z
      .object({
        retries: z.number().int().min(0).max(10).default(0),
        stepTimeoutMs: z.number().int().positive().default(120_000),
        onMarginal: MarginalActionSchema.default('retest'),
        guardBand: GuardBandSchema.default('uncertainty'),
      })
      .strict()
      .default({}),
    suites: z.array(SuiteEntrySchema).min(1, 'a plan runs at least one suite'),
    /** What identifies a unit besides its ROM MAC: an operator-scanned serial matching `pattern` (anchored). */
    unit: z
      .object({
        serial: z
          .object({
            pattern: z.string().min(1).refine((p) => {
              try {
                new RegExp(`^(?:${p})$`);
                return true;
              } catch {
                return false;
              }
            }, 'not a valid regular expression'),
          })
          .strict()
          .optional(),
      })
      .strict()
      .optional(),
    /** When `plugrig run` exits 0: at least this share of the units passed (default all of them). */
    policy: z.object({ minYieldPct: z.number().min(0).max(100).default(100) }).strict().default({}),
  })
  .strict();
export type Plan = z.infer<typeof PlanSchema>;
