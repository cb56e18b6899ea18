// Splits a callback body into its JSON elements and parses each on its own, pure. A grouped body is
// one array of events and one bad element must not cost the others, so the body is cut at its
// top-level commas by a scanner (a loop, no recursion: any nesting depth is safe) and each element
// is then parsed by itself. Integer literals longer than 15 digits (Mailjet's 64-bit MessageIDs) are
// quoted before JSON.parse, so they come back as exact decimal strings instead of rounded numbers.
// An element nested too deep or too large is not parsed at all: it is handed back as text only.

export interface ElementLimits {
  /** Deepest nesting of objects and arrays kept (an event object alone is 1). */
  maxDepth: number;
  /** Longest element source kept, in UTF-16 code units. */
  maxLength: number;
  /** Most elements in a body: each costs memory, however small its text. */
  maxElements: number;
}

export type JsonElement =
  | { readonly index: number; readonly source: string; readonly value: unknown }
  | { readonly index: number; readonly source: string; readonly tooDeep: boolean; readonly tooLarge: boolean };

export type SplitBody = { readonly ok: true; readonly elements: JsonElement[] } | { readonly ok: false; readonly tooMany: boolean; readonly reason: string };

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const MINUS = 0x2d;
/** JSON.parse keeps integers up to 15 digits exactly; longer ones are kept as strings. */
const EXACT_DIGITS = 15;

/**
 * A body that is one JSON value: an array gives one element per item, anything else is one element.
 * `ok: false` when the text is not JSON at all (empty, cut short, unbalanced, trailing text, or an
 * element that is not valid JSON), or has more elements than the limit (`tooMany`).
 */
export function splitJsonBody(text: string, limits: ElementLimits): SplitBody {
  let at = skipWhitespace(text, 0);
  const notJson = (reason: string) => ({ ok: false as const, tooMany: false, reason });
  if (at === text.length) {
    return notJson('the body is empty');
  }
  const spans: Span[] = [];
  if (text.charCodeAt(at) === OPEN_BRACKET) {
    at = skipWhitespace(text, at + 1);
    if (text.charCodeAt(at) === CLOSE_BRACKET) {
      at += 1;
    } else {
      for (;;) {
        const span = scanValue(text, at);
        if ('error' in span) {
          return notJson(`element ${spans.length}: ${span.error}`);
        }
        if (spans.length === limits.maxElements) {
          return { ok: false, tooMany: true, reason: `the body holds more than ${limits.maxElements} elements` };
        }
        spans.push(span);
        at = skipWhitespace(text, span.end);
        const next = text.charCodeAt(at);
        at += 1;
        if (next === CLOSE_BRACKET) {
          break;
        }
        if (next !== COMMA) {
          return notJson(`expected "," or "]" after element ${spans.length - 1} (character ${at - 1})`);
        }
        at = skipWhitespace(text, at);
      }
    }
  } else {
    const span = scanValue(text, at);
    if ('error' in span) {
      return notJson(span.error);
    }
    spans.push(span);
    at = span.end;
  }
  if (skipWhitespace(text, at) !== text.length) {
    return notJson(`unexpected text after the JSON value (character ${skipWhitespace(text, at)})`);
  }
  const whole = spans.every((span) => !isTooDeep(span, limits) && !isTooLarge(span, limits)) ? parseWhole(text, spans) : undefined;
  if (whole !== undefined) {
    return { ok: true, elements: spans.map((span, index) => ({ index, source: text.slice(span.start, span.end), value: whole[index] })) };
  }
  const elements: JsonElement[] = [];
  for (const [index, span] of spans.entries()) {
    const source = text.slice(span.start, span.end);
    const tooDeep = isTooDeep(span, limits);
    const tooLarge = isTooLarge(span, limits);
    if (tooDeep || tooLarge) {
      elements.push({ index, source, tooDeep, tooLarge });
      continue;
    }
    try {
      elements.push({ index, source, value: JSON.parse(quoteBigIntegers(text, span)) });
    } catch {
      // JSON.parse's message quotes the text; what was received is kept aside, not repeated in logs.
      return notJson(`element ${index} is not valid JSON`);
    }
  }
  return { ok: true, elements };
}

/**
 * Longest body parsed in one piece: its quoted copy is a second body in memory while it is parsed,
 * which for Mailjet's usual callbacks (tens of kilobytes) costs nothing, and for the largest (64 MB)
 * would be that much more at once.
 */
const WHOLE_PARSE_MAX_LENGTH = 1024 * 1024;

/** An element nested deeper than the limit is kept aside unparsed. */
function isTooDeep(span: Span, limits: ElementLimits): boolean {
  return span.depth > limits.maxDepth;
}

/** An element longer than the limit is kept aside unparsed. */
function isTooLarge(span: Span, limits: ElementLimits): boolean {
  return span.end - span.start > limits.maxLength;
}

/**
 * The elements' values from one JSON.parse of the whole body (much cheaper than one per element),
 * for a body whose every element is to be parsed; undefined when the body is too long, or is not
 * valid JSON (each element is then parsed alone, to say which one is not).
 */
function parseWhole(text: string, spans: readonly Span[]): unknown[] | undefined {
  if (text.length > WHOLE_PARSE_MAX_LENGTH) {
    return undefined;
  }
  let value: unknown;
  try {
    value = JSON.parse(quoteBigIntegers(text, { start: 0, end: text.length, bigIntegers: spans.flatMap((span) => span.bigIntegers) }));
  } catch {
    return undefined;
  }
  const isArray = Array.isArray(value) && text.charCodeAt(skipWhitespace(text, 0)) === OPEN_BRACKET;
  const values = isArray ? (value as unknown[]) : [value];
  // The scanner and JSON.parse agree on every valid body; a mismatch would be a bug, not input.
  return values.length === spans.length ? values : undefined;
}

interface Span {
  start: number;
  end: number;
  /** Deepest nesting of objects and arrays inside (a scalar is 0). */
  depth: number;
  /** Start and end offsets of the long integer literals, in pairs. */
  bigIntegers: number[];
}

function skipWhitespace(text: string, from: number): number {
  let at = from;
  for (;;) {
    const code = text.charCodeAt(at);
    if (code !== 0x20 && code !== 0x09 && code !== 0x0a && code !== 0x0d) {
      return at;
    }
    at += 1;
  }
}

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}

/**
 * Finds where the JSON value starting at `start` ends. It follows strings (with their escapes) and
 * brackets only; everything else is checked by JSON.parse afterwards.
 */
function scanValue(text: string, start: number): Span | { error: string } {
  const bigIntegers: number[] = [];
  let at = start;
  let depth = 0;
  let deepest = 0;
  do {
    const code = text.charCodeAt(at);
    if (Number.isNaN(code)) {
      return { error: depth > 0 ? 'the body ends inside an object or array' : 'a value is missing' };
    }
    if (code === QUOTE) {
      const close = closingQuote(text, at + 1);
      if (close === -1) {
        return { error: 'a string is not closed' };
      }
      at = close + 1;
    } else if (code === OPEN_BRACE || code === OPEN_BRACKET) {
      depth += 1;
      deepest = Math.max(deepest, depth);
      at += 1;
    } else if (code === CLOSE_BRACE || code === CLOSE_BRACKET) {
      if (depth === 0) {
        return { error: `unexpected "${String.fromCharCode(code)}" (character ${at})` };
      }
      depth -= 1;
      at += 1;
    } else if (code === MINUS || isDigit(code)) {
      const numberStart = at;
      let digits = 0;
      let integer = true;
      for (;;) {
        const inner = text.charCodeAt(at);
        if (isDigit(inner)) {
          digits += 1;
        } else if (inner === MINUS && at === numberStart) {
          // A leading sign.
        } else if (inner === 0x2e || inner === 0x65 || inner === 0x45 || inner === 0x2b || inner === MINUS) {
          integer = false;
        } else {
          break;
        }
        at += 1;
      }
      // A leading zero is not JSON: left as it is, for JSON.parse to refuse.
      const firstDigit = text.charCodeAt(numberStart) === MINUS ? numberStart + 1 : numberStart;
      if (integer && digits > EXACT_DIGITS && text.charCodeAt(firstDigit) !== 0x30) {
        bigIntegers.push(numberStart, at);
      }
    } else if (depth === 0 && (code === COMMA || code === 0x3a)) {
      return { error: `unexpected "${String.fromCharCode(code)}" (character ${at})` };
    } else {
      at += 1;
      // A bare word (true, false, null, or garbage for JSON.parse to refuse) ends at a delimiter.
      if (depth === 0) {
        while (/[A-Za-z0-9_$]/.test(text.charAt(at))) {
          at += 1;
        }
      }
    }
  } while (depth > 0);
  return { start, end: at, depth: deepest, bigIntegers };
}

/**
 * Where the string whose text starts at `from` ends: the first quote not escaped, that is not after
 * an odd run of backslashes (each backslash escapes the character after it). Found with indexOf,
 * which skips a string's text much faster than a loop over its characters; -1 when there is none.
 */
function closingQuote(text: string, from: number): number {
  for (let quote = text.indexOf('"', from); quote !== -1; quote = text.indexOf('"', quote + 1)) {
    let backslash = quote - 1;
    while (backslash >= from && text.charCodeAt(backslash) === BACKSLASH) {
      backslash -= 1;
    }
    if ((quote - 1 - backslash) % 2 === 0) {
      return quote;
    }
  }
  return -1;
}

/** The span's text with each long integer literal written as a JSON string. */
function quoteBigIntegers(text: string, span: Pick<Span, 'start' | 'end' | 'bigIntegers'>): string {
  if (span.bigIntegers.length === 0) {
    return text.slice(span.start, span.end);
  }
  const parts: string[] = [];
  let from = span.start;
  for (let i = 0; i < span.bigIntegers.length; i += 2) {
    const literalStart = span.bigIntegers[i]!;
    const literalEnd = span.bigIntegers[i + 1]!;
    parts.push(text.slice(from, literalStart), '"', text.slice(literalStart, literalEnd), '"');
    from = literalEnd;
  }
  parts.push(text.slice(from, span.end));
  return parts.join('');
}
