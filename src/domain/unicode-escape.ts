// A character shown for what it is rather than for what it does on a screen or a terminal (a bidi
// override reversing the text after it, a zero-width space, a line break), pure.

/** Each UTF-16 code unit of `text` as a \uXXXX escape, as JSON writes one (a character beyond U+FFFF as its two halves). */
export function unicodeEscape(text: string): string {
  let escaped = '';
  for (let i = 0; i < text.length; i += 1) {
    escaped += `\\u${text.charCodeAt(i).toString(16).padStart(4, '0')}`;
  }
  return escaped;
}
