import { ConfigError } from '../rig/core/errors.ts';
import { factorySmokeSuite } from './factory-smoke.ts';
import { buttonSuite } from './button.ts';
import { flashSuite } from './flash.ts';
import { meteringSuite } from './metering.ts';
import { identitySuite } from './identity.ts';
import { ledSuite } from './led.ts';
import { relaySuite } from './relay.ts';
import { calibrateSuite } from './calibrate.ts';
import { withFactorPlausibility } from './calibration-plausibility.ts';
import { provisionSuite } from './provision.ts';
import { jigReadyStep, safeStateStep } from './jig-steps.ts';
import type { PlanDefaults } from './plan/declare.ts';
import type { Plan, SuiteEntry, SuiteName } from './plan/schema.ts';
import type { Step } from './runner/step.ts';
import type { SlotHardware } from './slot-hardware.ts';

type Builder<N extends SuiteName> = (entry: Extract<SuiteEntry, { suite: N }>, hw: SlotHardware, defaults: PlanDefaults) => Step[];

/** The suites that exist. A plan may name the others (the schema knows them); running one is refused. */
const BUILT: { [N in SuiteName]?: Builder<N> } = {
  flash: flashSuite,
  smoke: factorySmokeSuite,
  provision: provisionSuite,
  metering: meteringSuite,
  identity: identitySuite,
  relay: relaySuite,
  button: buttonSuite,
  led: ledSuite,
  calibrate: (entry, hw, defaults) => withFactorPlausibility(calibrateSuite(entry, hw, defaults), entry, hw, defaults),
};

export function isBuilt(name: SuiteName): boolean {
  return BUILT[name] !== undefined;
}

/** Refuse a plan naming a suite that is not built yet, naming each one and where the plan uses it. */
export function assertRunnable(plan: Plan, source: string): void {
  const missing = plan.suites.map((e, i) => ({ name: e.suite, i })).filter((x) => !isBuilt(x.name));
  if (missing.length === 0) return;
  const lines = missing.map((m) => `suite '${m.name}' is not implemented yet (suites.${m.i})`);
  throw new ConfigError(`plan '${plan.name}' (${source}) cannot run:\n  ${lines.join('\n  ')}`, { step: 'plan', missing: missing.map((m) => m.name) });
}

function build<N extends SuiteName>(entry: Extract<SuiteEntry, { suite: N }>, hw: SlotHardware, defaults: PlanDefaults): Step[] {
  const builder = BUILT[entry.suite] as Builder<N> | undefined;
  if (!builder) throw new ConfigError(`suite '${entry.suite}' is not implemented yet`, { step: 'plan' });
  return builder(entry, hw, defaults).map((s) => ({ suite: entry.suite, ...s }));
}

/**
 * One slot's program: the jig-ready check, every suite of the plan in order, and the interlock's
 * safe state as the last step (the runner runs it last, after every cleanup, whatever happened).
 */
export function slotProgram(plan: Plan, hw: SlotHardware): Step[] {
  return [jigReadyStep(hw.io, hw.spec.id), ...plan.suites.flatMap((e) => build(e, hw, plan.defaults)), safeStateStep(hw.io)];
}
