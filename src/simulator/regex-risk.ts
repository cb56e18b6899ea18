/**
 * Whether a regular expression (JavaScript's syntax, no flags) may backtrack for too long on a
 * short text. V8 backtracks: `(a+)+$` against 28 a's and a "!" took 15 s, each more a doubling it,
 * and held the simulator's event loop (a dev jetpost's, which runs it in-process). Matching takes
 * exponential time only when a repeated part can match the same text in two ways: a quantifier inside a repeated
 * group, an alternation inside one, or a backreference. Without them the time is polynomial in the
 * text's length, its degree the number of repeating quantifiers plus one (test() tries each start):
 * on 254 characters (MAX_TESTED_LENGTH in faults.ts), `.*.*x` took 26 ms on a loaded 2-core host,
 * `.*.*.*x` 5 s.
 */

/** Repeating quantifiers allowed in a whole pattern (each can multiply the backtracking by the text's length). */
export const MAX_REPEATS = 2;

interface Group {
  /** Holds a quantifier (any, `?` too) or an alternation: repeated, it could match one text in several ways. */
  ambiguous: boolean;
}

/** Why the pattern is refused, in words for a 400; undefined when it is safe to run. */
export function backtrackingRisk(source: string): string | undefined {
  const open: Group[] = [{ ambiguous: false }];
  /** The group a quantifier right here would apply to, if the last atom was a group. */
  let lastGroup: Group | undefined;
  let repeats = 0;
  let at = 0;
  while (at < source.length) {
    const char = source[at]!;
    const quantifier = readQuantifier(source, at);
    if (quantifier !== undefined) {
      if (quantifier.repeats && lastGroup?.ambiguous) {
        return `a repeated group holds a quantifier or an alternation (as in "(a+)+" or "(a|ab)*"), which can backtrack for minutes`;
      }
      if (quantifier.repeats && ++repeats > MAX_REPEATS) {
        return `it has more than ${MAX_REPEATS} repeating quantifiers (*, +, {n,m}), which can backtrack for seconds`;
      }
      open.at(-1)!.ambiguous = true;
      lastGroup = undefined;
      at = quantifier.end;
      continue;
    }
    lastGroup = undefined;
    if (char === '\\') {
      const next = source[at + 1] ?? '';
      if (/[1-9]/.test(next) || (next === 'k' && source[at + 2] === '<')) {
        return 'it has a backreference (\\1 or \\k<name>), which can backtrack for minutes';
      }
      at += 2;
    } else if (char === '[') {
      at = classEnd(source, at);
    } else if (char === '(') {
      open.push({ ambiguous: false });
      at += groupPrefixLength(source, at);
    } else if (char === ')') {
      const group = open.length > 1 ? open.pop()! : { ambiguous: false };
      open.at(-1)!.ambiguous ||= group.ambiguous;
      lastGroup = group;
      at++;
    } else {
      if (char === '|') {
        open.at(-1)!.ambiguous = true;
      }
      at++;
    }
  }
  return undefined;
}

/** A quantifier starting at `at` (with its lazy `?`), or undefined; `{` that is no quantifier is a literal. */
function readQuantifier(source: string, at: number): { repeats: boolean; end: number } | undefined {
  const char = source[at];
  let repeats: boolean;
  let end: number;
  if (char === '*' || char === '+' || char === '?') {
    repeats = char !== '?';
    end = at + 1;
  } else if (char === '{') {
    const match = /^\{(\d+)(,(\d*))?\}/.exec(source.slice(at));
    if (match === null) {
      return undefined;
    }
    const max = match[2] === undefined ? Number(match[1]) : match[3] === '' ? Infinity : Number(match[3]);
    repeats = max > 1;
    end = at + match[0].length;
  } else {
    return undefined;
  }
  return { repeats, end: source[end] === '?' ? end + 1 : end };
}

/** The index after the character class opening at `at`: `]` first in it is a member, escapes are skipped. */
function classEnd(source: string, at: number): number {
  let index = at + 1;
  if (source[index] === '^') {
    index++;
  }
  // An empty class "[]" (or "[^]") closes at once in JavaScript.
  while (index < source.length && source[index] !== ']') {
    index += source[index] === '\\' ? 2 : 1;
  }
  return index + 1;
}

/** How many characters open the group at `at`: "(", "(?:", "(?=", "(?!", "(?<=", "(?<!" or "(?<name>". */
function groupPrefixLength(source: string, at: number): number {
  if (source[at + 1] !== '?') {
    return 1;
  }
  const named = /^\(\?<[^=!>][^>]*>/.exec(source.slice(at));
  if (named !== null) {
    return named[0].length;
  }
  return source[at + 2] === '<' ? 4 : 3;
}
