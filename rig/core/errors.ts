/**
 * Typed errors. Every error carries the context an operator needs to act on it:
 * where it happened (slot, unit, step/phase), what was on the wire, what was expected.
 */
export interface ErrorContext {
  slot?: number | string;
  unit?: string;
  step?: string;
  phase?: string;
  address?: number;
  /** Bytes actually received (hex is rendered by toJSON). */
  bytesSeen?: Uint8Array;
  expected?: string;
  [key: string]: unknown;
}

export class PlugrigError extends Error {
  readonly code: string;
  readonly context: ErrorContext;
  constructor(code: string, message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.context = context;
  }
  toJSON(): Record<string, unknown> {
    const ctx: Record<string, unknown> = { ...this.context };
    if (this.context.bytesSeen) ctx.bytesSeen = Buffer.from(this.context.bytesSeen).toString('hex');
    if (typeof this.context.address === 'number') ctx.address = '0x' + this.context.address.toString(16);
    return { name: this.name, code: this.code, message: this.message, context: ctx };
  }
}

/** Malformed, truncated or unexpected bytes on a wire. */
export class ProtocolError extends PlugrigError {
  constructor(message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super('E_PROTOCOL', message, context, options);
  }
}

/** A device did not answer in time. */
export class TimeoutError extends PlugrigError {
  constructor(message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super('E_TIMEOUT', message, context, options);
  }
}

/** Could not get the bootloader's attention ("getting bus"). */
export class LinkError extends PlugrigError {
  constructor(message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super('E_LINK', message, context, options);
  }
}

/** Flash erase/write/verify failed or was refused. */
export class FlashError extends PlugrigError {
  constructor(message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super('E_FLASH', message, context, options);
  }
}

/** A firmware image is unusable for the requested operation. */
export class ImageError extends PlugrigError {
  constructor(message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super('E_IMAGE', message, context, options);
  }
}

/** Bad configuration or command-line input. */
export class ConfigError extends PlugrigError {
  constructor(message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super('E_CONFIG', message, context, options);
  }
}

/** A safety rule refused a command (mains/UART isolation, lid, E-stop). */
export class InterlockError extends PlugrigError {
  constructor(message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super('E_INTERLOCK', message, context, options);
  }
}

/** A reference meter or other instrument failed (timeout, CRC, garbage). */
export class InstrumentError extends PlugrigError {
  constructor(message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super('E_INSTRUMENT', message, context, options);
  }
}

/** A serial/USB transport failed (port missing, unplugged, permission). */
export class TransportError extends PlugrigError {
  constructor(message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super('E_TRANSPORT', message, context, options);
  }
}

/**
 * A device under test (the plug's own firmware, e.g. OpenBeken over HTTP) failed, refused or
 * answered unexpectedly. The context names the command (secrets redacted) and the bytes seen.
 */
export class DutError extends PlugrigError {
  constructor(message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super('E_DUT', message, context, options);
  }
}
