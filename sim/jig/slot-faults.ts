import type { FaultsSpec } from '../../rig/jig/fault-spec.ts';
import type { VirtualBk7231Options } from '../bk7231/virtual-bk7231.ts';
import type { VirtualJigOptions } from './virtual-jig.ts';
import { FaultyUart } from '../serial/uart-faults.ts';
import type { VirtualUartDevice } from '../serial/uart-device.ts';

/** A JEDEC ID none of the flash tables knows (manufacturer 0x5E, made-up type). */
export const UNKNOWN_FLASH_ID: readonly [number, number, number] = [0x5e, 0x77, 0x15];

/** The chip options a jig file's `faults.chip` block stands for. */
export function chipFaultOptions(chip: FaultsSpec['chip']): Pick<VirtualBk7231Options, 'faults' | 'flashId'> {
  if (!chip) return {};
  const failPrograms = chip.failPrograms
    ? Object.fromEntries(Object.entries(chip.failPrograms).map(([a, n]) => [Number(a), n === 'always' ? Infinity : n]))
    : undefined;
  return {
    faults: {
      ...(chip.missLinkWindows !== undefined ? { missLinkWindows: chip.missLinkWindows } : {}),
      ...(chip.brownOuts ? { brownOuts: chip.brownOuts } : {}),
      ...(chip.statusRegisterLocked ? { statusRegisterLocked: true } : {}),
      ...(failPrograms ? { failPrograms } : {}),
      ...(chip.strayWrites ? { strayWrites: chip.strayWrites } : {}),
    },
    ...(chip.unknownFlashId ? { flashId: UNKNOWN_FLASH_ID } : {}),
  };
}

/** The slot's UART as the host sees it: behind a faulty line when `faults.uart` is given. */
export function slotLine(device: VirtualUartDevice, uart: FaultsSpec['uart'], slotId: number): VirtualUartDevice {
  return uart ? new FaultyUart(device, { seed: slotId, ...uart }) : device;
}

/**
 * The slot's options with the jig file's `faults.plug` block in them: HTTP transport faults (the
 * block's, else a test's `httpFaults`) and a boot loop as the 'boot-loop' defect.
 */
export function withPlugFaults<O extends Pick<VirtualJigOptions, 'httpFaults' | 'defects'>>(options: O, plug: FaultsSpec['plug']): O {
  if (!plug) return options;
  const { http, rebootLoop } = plug;
  return {
    ...options,
    ...(http ? { httpFaults: (id: number) => ({ seed: id, ...http }) } : {}),
    ...(rebootLoop ? { defects: (id: number) => [...(options.defects?.(id) ?? []), 'boot-loop'] } : {}),
  };
}
