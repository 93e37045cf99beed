/**
 * The JSON reading of POST /api/pins, with the outcomes of OpenBeken's jsmn parser (128 tokens):
 * a parse error carries jsmn's code (-1 too many tokens, -2 invalid character, -3 incomplete), an
 * empty body or a top-level value that is not an object is "Object expected".
 */
export type JsmnResult =
  | { kind: 'object'; entries: Array<[string, unknown]> }
  | { kind: 'not-object' }
  | { kind: 'error'; code: -1 | -2 | -3 };

const MAX_TOKENS = 128;

export function parseJsmnObject(text: string): JsmnResult {
  if (text.trim() === '') return { kind: 'not-object' };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'error', code: looksIncomplete(text) ? -3 : -2 };
  }
  if (countTokens(value) > MAX_TOKENS) return { kind: 'error', code: -1 };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return { kind: 'not-object' };
  return { kind: 'object', entries: Object.entries(value as Record<string, unknown>) };
}

/** A JSON text cut short: an open string or unclosed brackets at the end. */
function looksIncomplete(text: string): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
  }
  return inString || depth > 0;
}

/** jsmn tokens: one per value, plus one per object key. */
function countTokens(v: unknown): number {
  if (Array.isArray(v)) return 1 + v.reduce((n: number, x) => n + countTokens(x), 0);
  if (v !== null && typeof v === 'object') {
    return 1 + Object.values(v as Record<string, unknown>).reduce((n: number, x) => n + 1 + countTokens(x), 0);
  }
  return 1;
}
