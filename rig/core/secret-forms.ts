/**
 * The forms a secret value takes in text we write: itself, JSON-escaped, URL- and form-encoded,
 * hex (as traces dump bytes: spaced or not, either case), base64 (and as HTTP Basic credentials).
 * A redactor that replaces all of them leaves no copy of the secret a reader could decode.
 */
export function secretForms(secret: string): string[] {
  if (secret.length === 0) return [];
  const bytes = Buffer.from(secret, 'utf8');
  const hexLower = bytes.toString('hex');
  const spaced = hexLower.replace(/(..)(?!$)/g, '$1 ');
  const forms = [
    secret,
    JSON.stringify(secret).slice(1, -1),
    encodeURIComponent(secret),
    new URLSearchParams({ x: secret }).toString().slice(2),
    hexLower,
    hexLower.toUpperCase(),
    spaced,
    spaced.toUpperCase(),
    bytes.toString('base64'),
    Buffer.from(`admin:${secret}`, 'utf8').toString('base64'),
  ];
  // Longest first, so a form that contains another is replaced whole.
  return [...new Set(forms)].sort((a, b) => b.length - a.length);
}

/** `text` with every form of every secret replaced by `***`. */
export function scrubSecretForms(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) for (const f of secretForms(s)) if (out.includes(f)) out = out.split(f).join('***');
  return out;
}
