import { PlugrigError, type ErrorContext } from '../core/errors.ts';

/** The traceability store failed or refused (cannot open, migrate, write or forward). */
export class StoreError extends PlugrigError {
  constructor(message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super('E_STORE', message, context, options);
  }
}
