import type { ErrorContext } from '../rig/core/errors.ts';
import { StoreError } from '../rig/store/store-error.ts';

/**
 * A file the file system refused to take (disk full, permission, read-only, a directory in the way):
 * a unit record or a report is the run's traceability, so its refusal is the store's failure class,
 * typed, naming the file, the errno and where in the run it happened (run, slot). What was already
 * whole on disk stays as it was: the writers replace files atomically (rig/core/atomic-file.ts).
 */
export function writeRefused(what: string, path: string, e: unknown, context: ErrorContext = {}): StoreError {
  if (e instanceof StoreError) return e;
  const errno = (e as NodeJS.ErrnoException | undefined)?.code;
  return new StoreError(`${what} ${path} not written: ${refusalText(e)}`, { ...context, path, ...(errno ? { errno } : {}) }, { cause: e });
}

/** What the file system said, in the operator's words (the errno stays in the context and the text). */
export function refusalText(e: unknown): string {
  const errno = (e as NodeJS.ErrnoException | undefined)?.code;
  const why = errno === 'ENOSPC' || errno === 'EDQUOT' ? 'the disk is full' : errno === 'EACCES' || errno === 'EPERM' ? 'permission denied' : errno === 'EROFS' ? 'the file system is read-only' : errno === 'EIO' ? 'an I/O error' : undefined;
  const message = e instanceof Error ? e.message : String(e);
  return why ? `${why} (${message})` : message;
}
