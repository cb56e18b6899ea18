// Base64 checked in one linear pass. A regex such as /^(?:[A-Za-z0-9+/]{4})*…$/ recurses per
// repetition in V8 and overflows the stack on a few megabytes (an ordinary 4 MB PDF).

/** A-Z, a-z, 0-9, + and / (RFC 4648 §4, the standard alphabet). */
function isBase64Digit(code: number): boolean {
  return (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a) || (code >= 0x30 && code <= 0x39) || code === 0x2b || code === 0x2f;
}

/** Whether `text` is base64 of the standard alphabet, padded with = to a multiple of 4, without line breaks. */
export function isBase64(text: string): boolean {
  if (text.length % 4 !== 0) {
    return false;
  }
  const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  for (let index = 0; index < text.length - padding; index += 1) {
    if (!isBase64Digit(text.charCodeAt(index))) {
      return false;
    }
  }
  return true;
}
