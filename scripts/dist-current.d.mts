/** See dist-current.mjs. */
export function distCurrent(root?: string): boolean;
