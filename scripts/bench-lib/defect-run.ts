/**
 * Units with injected plug defects through a plan on the in-process virtual jig, on the
 * VirtualClock: what scripts/bench-defects.ts tabulates and test/suites-defects.test.ts asserts.
 * The composition is the CLI's (cli/commands/run.ts): the virtual jig's endpoints, the plug
 * resolver, the RMC021 template and the virtual station network's Wi-Fi.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { classifyImage } from '../../firmware/image.ts';
import { makeSyntheticImage } from '../../firmware/synthetic.ts';
import { VirtualClock } from '../../rig/core/clock.ts';
import { createLogger } from '../../rig/core/log.ts';
import { loadDeviceTemplate } from '../../rig/dut/device-template.ts';
import type { JigSpec } from '../../rig/jig/jig-config.ts';
import { PLUG_HTTP_FAULT_KINDS, type FaultsSpec } from '../../rig/jig/fault-spec.ts';
import { simPlugAddress, startVirtualJig } from '../../sim/jig/in-process-jig.ts';
import { DEFAULT_VIRTUAL_WIFI } from '../../sim/jig/virtual-jig.ts';
import type { SlotPhysicalState } from '../../sim/jig/physical-state.ts';
type VirtualJigHandle = ReturnType<typeof startVirtualJig>['vj'];
import { loadSimTemplate } from '../../sim/plug/obk-template.ts';
import { PLUG_DEFECT_NAMES } from '../../sim/plug/plug-defects.ts';
import { runStation, type StationSlotResult } from '../../station/run-station.ts';
import type { LoadedPlan } from '../../suites/plan/load-plan.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
export const TEMPLATE_FILE = join(ROOT, 'fixtures/devices/rmc021.json');

/**
 * Not a plug defect but a unit that skipped the flash station: it still runs the stock Tuya app.
 * Only a plan without a flash suite (verify) can meet it; a flashing plan overwrites the app.
 */
export const STOCK_FIRMWARE = 'stock-firmware';

/**
 * Plug HTTP faults as the bench names them: `http-<kind>` is a slot whose jig-file `faults` block
 * holds `{"plug": {"http": {"kind": "<kind>"}}}` (rig/jig/fault-spec.ts), from the plug's first request.
 */
export const HTTP_FAULT_NAMES = PLUG_HTTP_FAULT_KINDS.map((k) => `http-${k}` as const);

function httpFaultOf(defects: readonly string[]): NonNullable<FaultsSpec['plug']>['http'] | undefined {
  const name = defects.find((d) => d.startsWith('http-') && (HTTP_FAULT_NAMES as readonly string[]).includes(d));
  return name ? { kind: name.slice('http-'.length) as (typeof PLUG_HTTP_FAULT_KINDS)[number] } : undefined;
}

/** The step that must catch each defect (the first step to fail), and what its message must say. */
export interface DefectExpectation {
  defect: string;
  /** What the defect is, in the table. */
  what: string;
  step: RegExp;
  message: RegExp;
}

export const DEFECT_EXPECTATIONS: readonly DefectExpectation[] = [
  { defect: 'relay-stuck-open', what: 'relay stuck open', step: /^POWER ON:/, message: /relay sense reads ON/ },
  // Not off after the boot (a plan with relay offAfterReboot 'boot'), else when POWER OFF is sent.
  { defect: 'relay-stuck-closed', what: 'relay stuck closed', step: /^(relay OFF after the boot|POWER OFF:)/, message: /relay sense reads OFF/ },
  { defect: 'button-open', what: 'button open', step: /^single click toggles the relay/, message: /relay toggled after the click/ },
  { defect: 'led-dead', what: 'LED dead', step: /^LED blinks/, message: /LED blinks/ },
  { defect: 'cf-open', what: 'CF open (no power pulses)', step: /^metering at /, message: /^power error vs reference/ },
  { defect: 'cf1-open', what: 'CF1 open (no V/I pulses)', step: /^metering at /, message: /^(voltage|current) error vs reference/ },
  { defect: 'sel-stuck-high', what: 'SEL stuck high (CF1 always voltage)', step: /^metering at /, message: /^current error vs reference/ },
  { defect: 'sel-stuck-low', what: 'SEL stuck low (CF1 always current)', step: /^metering at /, message: /^voltage error vs reference/ },
  { defect: 'divider-off-20', what: 'voltage divider off 20 %', step: /^metering at /, message: /^voltage error vs reference/ },
  // As found (current or power outside the spread of good parts), or the factor check after calibration.
  { defect: 'shunt-off-10', what: 'shunt off 10 %', step: /^(metering at |calibration factors within )/, message: /^(current|power) error vs reference|^check failed: factors a front end with every part within/ },
  { defect: 'image-does-not-boot', what: 'no boot', step: /^boots OpenBeken/, message: /^nothing boots/ },
  { defect: STOCK_FIRMWARE, what: 'stock firmware still running', step: /^boots OpenBeken/, message: /^stock firmware still running/ },
  { defect: 'wifi-never-joins', what: 'Wi-Fi never joins', step: /^boots OpenBeken/, message: /^Wi-Fi never joins/ },
  { defect: 'boot-loop', what: 'safe-mode boot loop', step: /^boots OpenBeken/, message: /^(boot loop|OpenBeken boots in safe mode)/ },
  { defect: 'http-stalls', what: 'HTTP stalls', step: /^boots OpenBeken/, message: /^HTTP stalls: / },
  { defect: 'http-timeout', what: 'HTTP replies too late (timeout)', step: /^boots OpenBeken/, message: /^HTTP times out: / },
  { defect: 'http-stall-mid-body', what: 'HTTP stalls mid-body', step: /^boots OpenBeken/, message: /^HTTP stalls mid-body: / },
  { defect: 'http-refuse-during-boot', what: 'HTTP connection refused after boot', step: /^boots OpenBeken/, message: /^HTTP connection refused: / },
  { defect: 'http-truncated-json', what: 'HTTP reply JSON truncated', step: /^boots OpenBeken/, message: /^HTTP reply truncated: / },
  { defect: 'http-malformed-json', what: 'HTTP reply JSON malformed', step: /^boots OpenBeken/, message: /^HTTP reply malformed: / },
  { defect: 'http-negative-status', what: 'HTTP negative status code', step: /^boots OpenBeken/, message: /^HTTP negative status: / },
];

/** Every injectable defect and HTTP fault of the virtual plug has an expectation (and nothing else does). */
export function uncoveredDefects(): string[] {
  const named = new Set(DEFECT_EXPECTATIONS.map((e) => e.defect));
  const injectable: readonly string[] = [...PLUG_DEFECT_NAMES, ...HTTP_FAULT_NAMES];
  return [...injectable.filter((n) => !named.has(n)), ...[...named].filter((n) => n !== STOCK_FIRMWARE && !injectable.includes(n)).map((n) => `${n} (not a sim defect)`)];
}

export interface UnitSpec {
  slot: number;
  /** Sim defect names, or [STOCK_FIRMWARE]; [] for a good unit. */
  defects: readonly string[];
}

export interface UnitOutcome {
  slot: number;
  defects: readonly string[];
  mac: string;
  verdict: 'pass' | 'fail';
  /** The first step that failed (its name and reason). */
  firstFail?: { name: string; reason: string };
  /** The slot's last step (safe state) passed and the physical end state is safe. */
  safe: boolean;
  end: SlotPhysicalState | undefined;
  result: StationSlotResult;
}

/** A small synthetic OpenBeken UA image: the flash suite writes it for real (its size sets the flash time). */
export function benchImage(appBytes = 200_000): { bytes: Uint8Array; offset: number; name: string } {
  const im = makeSyntheticImage({ chip: 'BK7231N', kind: 'ua', version: '1.18.42', seed: 5, appBytes });
  const w = classifyImage({ name: im.name, bytes: im.bytes, targetChip: 'BK7231N' }).bytesToWrite(false);
  return { bytes: w.bytes, offset: w.offset, name: `${im.name} (synthetic)` };
}

/**
 * One batch: the jig's slots `units` name, each with its defects, through `plan`. A plan without a
 * flash suite gets pre-flashed, provisioned units (except STOCK_FIRMWARE ones, which keep the stock app).
 */
export async function runBatch(o: {
  jig: JigSpec;
  plan: LoadedPlan;
  units: readonly UnitSpec[];
  seed: number;
  image?: { bytes: Uint8Array; offset: number; name: string };
  /** Told the virtual jig and the outcomes before the jig is disposed (a bench reading the simulator's truth). */
  inspect?: (vj: VirtualJigHandle, outcomes: readonly UnitOutcome[]) => void;
}): Promise<{ outcomes: UnitOutcome[]; modelMs: number }> {
  const clock = new VirtualClock();
  const flashes = o.plan.plan.suites.some((e) => e.suite === 'flash');
  const stock = o.units.filter((u) => u.defects.includes(STOCK_FIRMWARE)).map((u) => u.slot);
  if (flashes && stock.length > 0) throw new Error(`slots ${stock.join(', ')}: '${STOCK_FIRMWARE}' needs a plan that does not flash`);
  if (!flashes && stock.length > 0 && stock.length < o.units.length) throw new Error(`'${STOCK_FIRMWARE}' units run in a batch of their own (the jig pre-flashes all its slots or none)`);
  const defectsOf = (id: number): readonly string[] => (o.units.find((u) => u.slot === id)?.defects ?? []).filter((d) => d !== STOCK_FIRMWARE && !(HTTP_FAULT_NAMES as readonly string[]).includes(d));
  // HTTP faults go in as a jig file says them: the slot's `faults.plug.http`.
  const jig: JigSpec = {
    ...o.jig,
    slots: o.jig.slots.map((s) => {
      const http = httpFaultOf(o.units.find((u) => u.slot === s.id)?.defects ?? []);
      return http ? { ...s, faults: { ...s.faults, plug: { ...s.faults?.plug, http } } } : s;
    }),
  };
  const sim = startVirtualJig(jig, {
    clock,
    seed: o.seed,
    defects: defectsOf,
    ...(!flashes && stock.length === 0 ? { preflashed: { template: loadSimTemplate(TEMPLATE_FILE), version: '1.18.42' } } : {}),
  });
  const outDir = mkdtempSync(join(tmpdir(), 'plugrig-defects-'));
  try {
    const results = await runStation({
      jig,
      jigPath: jig.name,
      plan: o.plan,
      ...(flashes ? { image: o.image ?? benchImage() } : {}),
      baudRate: 2_000_000,
      outDir,
      clock,
      log: createLogger({}, 'silent'),
      endpoints: sim.endpoints,
      slots: o.units.map((u) => u.slot),
      provisioning: { template: loadDeviceTemplate(TEMPLATE_FILE), wifi: DEFAULT_VIRTUAL_WIFI, secrets: [] },
      resolveHttp: sim.resolvePlug,
      defaultPlug: (id) => ({ url: simPlugAddress(id) }),
    });
    const outcomes = results.map((r): UnitOutcome => {
      const bad = r.steps.find((s) => s.status === 'fail');
      const end = sim.vj.slot(r.slot).history.current();
      const last = r.steps.at(-1);
      const safe = last?.kind === 'safe-state' && last.status === 'pass' && end !== undefined && !end.mainsEnergised && !end.uartConnected && !end.supply3v3 && end.loadsOn.length === 0;
      return {
        slot: r.slot,
        defects: o.units.find((u) => u.slot === r.slot)?.defects ?? [],
        mac: String(r.unit.mac ?? '?'),
        verdict: r.verdict,
        ...(bad ? { firstFail: { name: bad.name, reason: bad.reason ?? 'failed' } } : {}),
        safe,
        end,
        result: r,
      };
    });
    o.inspect?.(sim.vj, outcomes);
    return { outcomes, modelMs: clock.now() };
  } finally {
    await sim.vj.dispose();
    rmSync(outDir, { recursive: true, force: true });
  }
}

export type Detection = 'caught by its step' | 'caught by another step' | 'missed' | 'good, passed' | 'good, failed';

/** How a unit's outcome compares with what its defect should cause. */
export function classify(u: UnitOutcome): Detection {
  if (u.defects.length === 0) return u.verdict === 'pass' ? 'good, passed' : 'good, failed';
  if (u.verdict === 'pass' || !u.firstFail) return 'missed';
  const ok = u.defects.some((d) => {
    const e = DEFECT_EXPECTATIONS.find((x) => x.defect === d);
    return e !== undefined && e.step.test(u.firstFail!.name) && e.message.test(u.firstFail!.reason);
  });
  return ok ? 'caught by its step' : 'caught by another step';
}

/** A jig file from fixtures/jigs. */
export function fixtureJigText(name: string): string {
  return readFileSync(join(ROOT, 'fixtures/jigs', name), 'utf8');
}
