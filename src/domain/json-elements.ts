// Splits a callback body into its JSON elements and parses each on its own, pure. A grouped body is
// one array of events and one bad element must not cost the others, so the body is cut at its
// top-level commas by a scanner (a loop, no recursion: any nesting depth is safe) and each element
// is then parsed by itself (scanJsonBody parses an element only when it is asked for). Integer
// literals longer than 15 digits (Mailjet's 64-bit MessageIDs) are quoted before JSON.parse, so they
// come back as exact decimal strings instead of rounded numbers. An element nested too deep or too
// large is not parsed at all: it is handed back as text only.

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

/**
 * A body's elements, each parsed when it is asked for: a large body's elements need not all be in
 * memory as objects at once.
 */
export interface BodyElements {
  readonly length: number;
  /**
   * Element `index`, parsed again at each call (but a small body's, parsed once and the same
   * object each time); undefined when its text is not valid JSON.
   */
  at(index: number): JsonElement | undefined;
}

export type ScannedBody = { readonly ok: true; readonly elements: BodyElements } | { readonly ok: false; readonly tooMany: boolean; readonly reason: string };

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

/** Why a body is not JSON when element `index` is not. */
export function elementNotJson(index: number): string {
  // JSON.parse's message quotes the text; what was received is kept aside, not repeated in logs.
  return `element ${index} is not valid JSON`;
}

/**
 * A body that is one JSON value: an array gives one element per item, anything else is one element.
 * `ok: false` when the text is not JSON at all (empty, cut short, unbalanced, trailing text, or an
 * element that is not valid JSON), or has more elements than the limit (`tooMany`).
 */
export function splitJsonBody(text: string, limits: ElementLimits): SplitBody {
  const scanned = scanJsonBody(text, limits);
  if (!scanned.ok) {
    return scanned;
  }
  const elements: JsonElement[] = [];
  for (let index = 0; index < scanned.elements.length; index += 1) {
    const element = scanned.elements.at(index);
    if (element === undefined) {
      return { ok: false, tooMany: false, reason: elementNotJson(index) };
    }
    elements.push(element);
  }
  return { ok: true, elements };
}

/**
 * splitJsonBody without parsing the elements yet: `ok: false` when the body's structure is not JSON
 * (empty, cut short, unbalanced, trailing text) or has more elements than the limit; whether each
 * element is valid JSON is found when it is parsed (BodyElements.at).
 */
export function scanJsonBody(text: string, limits: ElementLimits): ScannedBody {
  let at = skipWhitespace(text, 0);
  const notJson = (reason: string) => ({ ok: false as const, tooMany: false, reason });
  if (at === text.length) {
    return notJson('the body is empty');
  }
  const spans = new Spans();
  if (text.charCodeAt(at) === OPEN_BRACKET) {
    at = skipWhitespace(text, at + 1);
    if (text.charCodeAt(at) === CLOSE_BRACKET) {
      at += 1;
    } else {
      for (;;) {
        const end = spans.scan(text, at);
        if (typeof end !== 'number') {
          return notJson(`element ${spans.length}: ${end.error}`);
        }
        if (spans.length > limits.maxElements) {
          return { ok: false, tooMany: true, reason: `the body holds more than ${limits.maxElements} elements` };
        }
        at = skipWhitespace(text, end);
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
    const end = spans.scan(text, at);
    if (typeof end !== 'number') {
      return notJson(end.error);
    }
    at = end;
  }
  if (skipWhitespace(text, at) !== text.length) {
    return notJson(`unexpected text after the JSON value (character ${skipWhitespace(text, at)})`);
  }
  const isTooDeep = (index: number) => spans.depths[index]! > limits.maxDepth;
  const isTooLarge = (index: number) => spans.ends[index]! - spans.starts[index]! > limits.maxLength;
  let whole: unknown[] | undefined;
  if (text.length <= WHOLE_PARSE_MAX_LENGTH && !spans.depths.some((_, index) => isTooDeep(index) || isTooLarge(index))) {
    whole = parseWhole(text, spans);
  }
  const elementAt = (index: number): JsonElement | undefined => {
    const source = text.slice(spans.starts[index], spans.ends[index]);
    if (whole !== undefined) {
      return { index, source, value: whole[index] };
    }
    const tooDeep = isTooDeep(index);
    const tooLarge = isTooLarge(index);
    if (tooDeep || tooLarge) {
      return { index, source, tooDeep, tooLarge };
    }
    try {
      return { index, source, value: JSON.parse(spans.quoted(text, index, index)) };
    } catch {
      return undefined;
    }
  };
  return { ok: true, elements: { length: spans.length, at: elementAt } };
}

/**
 * Longest body parsed without parsing each element alone: its quoted copy is a second body in memory
 * while it is parsed, which for Mailjet's usual callbacks (tens of kilobytes) costs nothing, and for
 * the largest (64 MB) would be that much more at once.
 */
const WHOLE_PARSE_MAX_LENGTH = 1024 * 1024;

/**
 * Longest run of elements parsed in one JSON.parse (UTF-16 code units, quoted). A longer string is
 * one of V8's large objects, given fresh memory of its own: writing the quoted copy of a body of
 * 1,000 events (300 kB) cost more than parsing it. Runs this long stay in the young generation; an
 * element longer than this is a run alone.
 */
const RUN_MAX_LENGTH = 64 * 1024;

/**
 * The elements' values from a few JSON.parse calls, one per run of elements (much cheaper than one
 * per element), for a body whose every element is to be parsed; undefined when the body is not valid
 * JSON (each element is then parsed alone, to say which one is not).
 */
function parseWhole(text: string, spans: Spans): unknown[] | undefined {
  if (text.charCodeAt(skipWhitespace(text, 0)) !== OPEN_BRACKET) {
    try {
      return [JSON.parse(spans.quoted(text, 0, 0)) as unknown];
    } catch {
      return undefined;
    }
  }
  const values: unknown[] = [];
  for (let first = 0; first < spans.length;) {
    let last = first;
    while (last + 1 < spans.length && spans.ends[last + 1]! - spans.starts[first]! <= RUN_MAX_LENGTH) {
      last += 1;
    }
    let run: unknown;
    try {
      // The elements with what separates them in the body (commas, whitespace), as an array.
      run = JSON.parse(`[${spans.quoted(text, first, last)}]`);
    } catch {
      return undefined;
    }
    // The scanner and JSON.parse agree on every valid body; a mismatch would be a bug, not input.
    if (!Array.isArray(run) || run.length !== last - first + 1) {
      return undefined;
    }
    for (const value of run) {
      values.push(value);
    }
    first = last + 1;
  }
  return values;
}

/**
 * Where each element of a body is, in flat arrays of numbers: an object (and an array) per element
 * took 250 bytes, 25 MB for a body of 100,000 events, for as long as the body is being stored.
 */
class Spans {
  readonly starts: number[] = [];
  readonly ends: number[] = [];
  /** Deepest nesting of objects and arrays inside (a scalar is 0). */
  readonly depths: number[] = [];
  /** Start and end offsets of the long integer literals of all elements, in pairs, in order. */
  readonly bigIntegers: number[] = [];
  /** Where each element's pairs start in bigIntegers; they end where the next element's start. */
  private readonly bigIntegersFrom: number[] = [];

  get length(): number {
    return this.starts.length;
  }

  /** Scans the element starting at `start` (see scanValue) and adds it; returns where it ends. */
  scan(text: string, start: number): number | { error: string } {
    const from = this.bigIntegers.length;
    const scanned = scanValue(text, start, this.bigIntegers);
    if ('error' in scanned) {
      return scanned;
    }
    this.starts.push(start);
    this.ends.push(scanned.end);
    this.depths.push(scanned.depth);
    this.bigIntegersFrom.push(from);
    return scanned.end;
  }

  /** The text of elements `first` to `last` (and what separates them) with their long integer literals quoted. */
  quoted(text: string, first: number, last: number): string {
    const to = last + 1 < this.length ? this.bigIntegersFrom[last + 1]! : this.bigIntegers.length;
    return quoteBigIntegers(text, this.starts[first]!, this.ends[last]!, this.bigIntegers, this.bigIntegersFrom[first]!, to);
  }
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
 * Finds where the JSON value starting at `start` ends, and its depth; the offsets of its long
 * integer literals are added to `bigIntegers`. It follows strings (with their escapes) and brackets
 * only; everything else is checked by JSON.parse afterwards.
 */
function scanValue(text: string, start: number, bigIntegers: number[]): { end: number; depth: number } | { error: string } {
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
  return { end: at, depth: deepest };
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

/** text[start, end) with the long integer literals in bigIntegers[from, to) written as JSON strings. */
function quoteBigIntegers(text: string, start: number, end: number, bigIntegers: readonly number[], from: number, to: number): string {
  if (from === to) {
    return text.slice(start, end);
  }
  const parts: string[] = [];
  let copied = start;
  for (let i = from; i < to; i += 2) {
    const literalStart = bigIntegers[i]!;
    const literalEnd = bigIntegers[i + 1]!;
    parts.push(text.slice(copied, literalStart), '"', text.slice(literalStart, literalEnd), '"');
    copied = literalEnd;
  }
  parts.push(text.slice(copied, end));
  return parts.join('');
}
