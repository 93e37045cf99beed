import { z } from 'zod';

/**
 * The jig file's `faults` block: faults the VIRTUAL jig injects (the rig ignores it on real
 * hardware). At the top level it applies to every slot of the run; a slot's own `faults` replaces
 * the top-level `uart` / `chip` / `plug` sub-block it names. Rates are probabilities in [0, 1].
 */
const rate = z.number().min(0).max(1);
const ms = z.number().min(0).finite();

/** Line faults of the slot's UART (sim/serial/uart-faults.ts). */
export const UartFaultsSchema = z
  .object({
    seed: z.number().int().min(0).optional(),
    byteErrorRate: rate.optional(),
    dropRate: rate.optional(),
    duplicateRate: rate.optional(),
    replyLossRate: rate.optional(),
    garbageRate: rate.optional(),
    delayRate: rate.optional(),
    delayMs: ms.optional(),
    lateReplyRate: rate.optional(),
    lateReplyMs: ms.optional(),
    staleLinkCheckRate: rate.optional(),
    staleDelayMs: ms.optional(),
    direction: z.enum(['both', 'to-device', 'to-host']).optional(),
  })
  .strict();

const SECTOR_ADDRESS = /^(0x[0-9a-fA-F]+|\d+)$/;

/** Faults of the slot's BK7231N and its flash (sim/bk7231/virtual-bk7231.ts Bk7231Faults). */
export const ChipFaultsSchema = z
  .object({
    missLinkWindows: z.number().int().min(0).optional(),
    brownOuts: z.array(z.object({ during: z.enum(['erase', 'write']), nth: z.number().int().min(1) }).strict()).optional(),
    statusRegisterLocked: z.boolean().optional(),
    /** The flash answers a JEDEC ID no table knows. */
    unknownFlashId: z.boolean().optional(),
    /** Sector address ("0x16000") -> how many program commands fail there, or "always". */
    failPrograms: z
      .record(z.string().regex(SECTOR_ADDRESS, 'failPrograms keys are sector addresses like "0x16000"'), z.union([z.number().int().min(1), z.literal('always')]))
      .optional(),
    /** The nth FlashWrite4K the chip receives lands at its address XOR addressXor (a stray write outside the image). */
    strayWrites: z.array(z.object({ nth: z.number().int().min(1), addressXor: z.number().int().min(1).max(0xffffffff) }).strict()).optional(),
  })
  .strict();

/** Transport faults of the virtual plug's HTTP server (sim/plug/obk/http-faults.ts says what each does). */
export const PLUG_HTTP_FAULT_KINDS = ['timeout', 'stall-mid-body', 'refuse-during-boot', 'truncated-json', 'malformed-json', 'negative-status'] as const;
/** Faults of one reply field (they need `field`, so they are not among the whole-transport kinds above). */
export const PLUG_REPLY_FIELD_FAULT_KINDS = ['missing-field', 'wrong-type'] as const;

/** Faults of the slot's virtual plug: its HTTP transport, and a firmware that reboots until safe mode. */
export const PlugFaultsSchema = z
  .object({
    http: z
      .object({
        kind: z.enum([...PLUG_HTTP_FAULT_KINDS, ...PLUG_REPLY_FIELD_FAULT_KINDS]),
        rate: rate.optional(),
        afterRequests: z.number().int().min(0).optional(),
        delayMs: ms.optional(),
        refuseMs: ms.optional(),
        seed: z.number().int().min(0).optional(),
        /** missing-field / wrong-type: the request path the fault hits (a prefix: "/api/info", "/cm?cmnd=STATUS%208"); default every JSON reply. */
        path: z.string().startsWith('/').optional(),
        /** missing-field / wrong-type: the reply's field, dotted ("mac", "StatusSNS.ENERGY.Voltage"). */
        field: z.string().min(1).optional(),
      })
      .strict()
      .refine((h) => !(h.kind === 'missing-field' || h.kind === 'wrong-type') || h.field !== undefined, { message: 'missing-field and wrong-type need the reply field they hit ("field")', path: ['field'] })
      .optional(),
    /** The firmware crashes ~2 s into every boot until the 5th quick boot enters safe mode. */
    rebootLoop: z.boolean().optional(),
  })
  .strict();

/** The ROM bootloader's commands by name (bk7231-protocol.md), for a fault that acts at the nth of one. */
export const ROM_COMMAND_NAMES = ['LinkCheck', 'WriteReg', 'ReadReg', 'Reboot', 'SetBaudRate', 'CheckCrc', 'FlashWrite', 'FlashWrite4K', 'FlashRead4K', 'FlashReadSr', 'FlashWriteSr', 'FlashGetMid', 'FlashErase'] as const;

/**
 * The slot's USB-UART adapter unplugged (its open port closed under the host) and, optionally, plugged
 * back in, when it comes back under the next tty name. Only for a slot bound by usbPath / serialNumber
 * (a virtual USB adapter). Times are the jig's clock (model time on a virtual clock).
 */
export const AdapterFaultsSchema = z
  .object({
    /** Unplug this long after the virtual jig started. */
    unplugAfterMs: ms.optional(),
    /** Unplug when the slot's chip receives its nth command of this kind (e.g. the 3rd FlashWrite4K: mid-flash). */
    unplugAtCommand: z.object({ command: z.enum(ROM_COMMAND_NAMES), nth: z.number().int().min(1) }).strict().optional(),
    /** Plug it back in this long after the unplug; absent: it stays out. */
    replugAfterMs: ms.optional(),
  })
  .strict()
  .refine((a) => (a.unplugAfterMs === undefined) !== (a.unplugAtCommand === undefined), { message: 'an adapter fault needs one of unplugAfterMs or unplugAtCommand' });

export const FaultsSchema = z
  .object({
    uart: UartFaultsSchema.optional(),
    chip: ChipFaultsSchema.optional(),
    plug: PlugFaultsSchema.optional(),
    adapter: AdapterFaultsSchema.optional(),
    /**
     * I/O boards by name (top level only): `outputsLeftHigh` are pins a station that died left high;
     * the board is not reset when the next station opens its port (no auto-reset), so they still are.
     */
    boards: z.record(z.object({ outputsLeftHigh: z.array(z.number().int().min(0).max(127)).min(1) }).strict()).optional(),
    /** Line faults in front of another virtual device by its port ("sim:io0", "sim:ref0"): I/O boards and meters (top level only). */
    ports: z.record(z.string().regex(/^sim:/, 'ports are keyed by a sim: port'), UartFaultsSchema).optional(),
  })
  .strict();
export type FaultsSpec = z.infer<typeof FaultsSchema>;

/** The faults that apply to one slot: the slot's sub-blocks over the run's. */
export function slotFaults(run: FaultsSpec | undefined, slot: FaultsSpec | undefined): FaultsSpec {
  return { ...run, ...slot };
}
