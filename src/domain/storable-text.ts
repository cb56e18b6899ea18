// Text as PostgreSQL can keep it, pure. A text column refuses NUL, and node-postgres silently turns
// an unpaired surrogate into U+FFFD; both are written as a visible \uXXXX escape instead, so what is
// stored says exactly what was received.
import { unicodeEscape } from './unicode-escape.js';

/** NUL, and a surrogate that is not half of a pair (the `u` flag pairs the halves first). */
// eslint-disable-next-line no-control-regex -- NUL is exactly what this looks for
const UNSTORABLE = /\u0000|\p{Cs}/gu;

/** Whether the text holds a character PostgreSQL cannot store as it is. */
export function unstorableCharacter(text: string): 'a NUL character' | 'an unpaired surrogate' | undefined {
  UNSTORABLE.lastIndex = 0;
  const found = UNSTORABLE.exec(text);
  if (found === null) {
    return undefined;
  }
  return found[0] === '\u0000' ? 'a NUL character' : 'an unpaired surrogate';
}

/** The text with NUL and unpaired surrogates escaped, whole. */
export function escapedUnstorable(text: string): string {
  return text.replace(UNSTORABLE, unicodeEscape);
}

/** The text with NUL and unpaired surrogates escaped, cut to at most `maxLength` code units. */
export function storableText(text: string, maxLength: number): { text: string; truncated: boolean } {
  // Escaping only lengthens, so only the start can matter; one code unit more keeps a pair whole.
  const escaped = escapedUnstorable(text.slice(0, maxLength + 1));
  if (escaped.length <= maxLength) {
    return { text: escaped, truncated: false };
  }
  // Never cut a surrogate pair in half.
  const cut = /[\ud800-\udbff]/.test(escaped.charAt(maxLength - 1)) ? maxLength - 1 : maxLength;
  return { text: escaped.slice(0, cut), truncated: true };
}
