// Checks on parsed JSON request bodies that no schema expresses, pure: text PostgreSQL cannot store
// as sent, nesting depth, and the size of each object and array. A body may nest a million levels deep (JSON.parse copes; a recursive
// walk, JSON.stringify included, overflows the stack) or hold millions of values, so the walk is
// iterative and keeps one frame per level, not one entry per value.
import type { FieldError } from './errors.js';

/**
 * Strings are looked at down to this depth. Deeper values are refused by the schemas anyway (only
 * metadata and variables nest, and they are capped well below), so this only bounds the walk and
 * the length of the paths it reports.
 */
const MAX_TEXT_DEPTH = 64;
/** A body with thousands of bad strings gets the first ones: enough to act on. */
const MAX_REPORTED = 20;

const SURROGATE = /[\ud800-\udfff]/g;

/**
 * Why PostgreSQL cannot keep `text` exactly, or undefined. A NUL is refused by text columns and by
 * jsonb; an unpaired UTF-16 surrogate is refused by jsonb and silently turned into U+FFFD in a text
 * column, so that a later look-up by the original value would miss.
 */
export function unstorableTextProblem(text: string): string | undefined {
  if (text.includes('\u0000')) {
    return 'contains a NUL character (U+0000), which cannot be stored';
  }
  SURROGATE.lastIndex = 0;
  for (let match = SURROGATE.exec(text); match !== null; match = SURROGATE.exec(text)) {
    const unit = text.charCodeAt(match.index);
    const next = text.charCodeAt(match.index + 1);
    if (unit <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      SURROGATE.lastIndex = match.index + 2;
      continue;
    }
    return `contains an unpaired UTF-16 surrogate (\\u${unit.toString(16)}), which is not Unicode text`;
  }
  return undefined;
}

type Path = Array<string | number>;

interface Frame {
  container: Record<string, unknown> | unknown[];
  /** An object's keys; undefined for an array. */
  keys: string[] | undefined;
  next: number;
}

function frameOf(container: object): Frame {
  return Array.isArray(container)
    ? { container, keys: undefined, next: 0 }
    : { container: container as Record<string, unknown>, keys: Object.keys(container), next: 0 };
}

/**
 * Called for each string or key (and number, when asked for); `where(key)` gives its path (only worth
 * it for one reported).
 */
type Visit = (value: string | number, isKey: boolean, key: string | number | undefined, where: (key: string | number | undefined) => Path) => boolean;

/** Called on entering each object or array (the value itself too) with its size and path; false stops the walk. */
type Enter = (size: number, isArray: boolean, where: () => Path) => boolean;

/**
 * Visits every string and object key of a parsed JSON value (none without `visit`), and every number
 * with `numbers`, depth-first, in document order, until `visit` (or `entered`, told of each container
 * before its contents) returns false. Containers deeper than `maxDepth` levels (the value itself is
 * level 1) are not entered; returns the path of the first met, if any.
 */
function walkJson(root: unknown, maxDepth: number, visit: Visit | undefined, numbers = false, entered?: Enter): { deepAt: Path | undefined } {
  const path: Path = [];
  const where = (key: string | number | undefined) => (key === undefined ? [...path] : [...path, key]);
  if (typeof root === 'string' || (numbers && typeof root === 'number')) {
    visit?.(root, false, undefined, where);
  }
  if (typeof root !== 'object' || root === null) {
    return { deepAt: undefined };
  }
  if (maxDepth < 1) {
    return { deepAt: [] };
  }
  let deepAt: Path | undefined;
  const frames: Frame[] = [];
  const enter = (container: object): boolean => {
    const frame = frameOf(container);
    frames.push(frame);
    if (entered && !entered(frame.keys?.length ?? (container as unknown[]).length, frame.keys === undefined, () => [...path])) {
      return false;
    }
    for (const key of frame.keys ?? []) {
      if (visit && !visit(key, true, key, where)) {
        return false;
      }
    }
    return true;
  };
  if (!enter(root)) {
    return { deepAt };
  }
  while (frames.length > 0) {
    const frame = frames.at(-1)!;
    const size = frame.keys?.length ?? (frame.container as unknown[]).length;
    if (frame.next >= size) {
      frames.pop();
      path.pop();
      continue;
    }
    const key = frame.keys?.[frame.next] ?? frame.next;
    frame.next += 1;
    const item = (frame.container as Record<string | number, unknown>)[key];
    if (typeof item === 'string' || (numbers && typeof item === 'number')) {
      if (visit && !visit(item, false, key, where)) {
        break;
      }
    } else if (typeof item === 'object' && item !== null) {
      if (frames.length >= maxDepth) {
        deepAt ??= where(key);
        continue;
      }
      path.push(key);
      if (!enter(item)) {
        break;
      }
    }
  }
  return { deepAt };
}

/**
 * Why an object key cannot be kept exactly, or undefined. Besides text PostgreSQL refuses, a key
 * named __proto__: JSON.parse makes it an own property, but copying the object (as schema
 * validation does) turns it into the prototype, so the key and its value would vanish silently.
 */
function unstorableKeyProblem(key: string): string | undefined {
  if (key === '__proto__') {
    return 'the field name __proto__ is not accepted: it cannot be kept as data';
  }
  const problem = unstorableTextProblem(key);
  return problem && `the field name ${problem}`;
}

/**
 * Every string and object key of a parsed JSON value that could not be stored exactly (the first
 * ones, at most MAX_REPORTED), with its path.
 */
export function findUnstorableText(value: unknown): FieldError[] {
  const problems: FieldError[] = [];
  walkJson(value, MAX_TEXT_DEPTH, (text, isKey, key, where) => {
    const problem = isKey ? unstorableKeyProblem(text as string) : unstorableTextProblem(text as string);
    if (problem) {
      problems.push({ path: where(key).join('.'), message: problem });
    }
    return problems.length < MAX_REPORTED;
  });
  return problems;
}

/**
 * Whether findUnstorableText would find nothing in `value` and no object of it has more than
 * `maxKeys` fields: one walk, which stops at the first of either (the quick read of a request body).
 */
export function isStorableWithin(value: unknown, maxKeys: number): boolean {
  let clean = true;
  walkJson(
    value,
    MAX_TEXT_DEPTH,
    (text, isKey) => (clean = (isKey ? unstorableKeyProblem(text as string) : unstorableTextProblem(text as string)) === undefined),
    false,
    (count, isArray) => (clean = isArray || count <= maxKeys),
  );
  return clean;
}

/**
 * Why a number JSON.parse read cannot be given back as it was sent, or undefined. JSON.parse reads
 * numbers as doubles: one beyond a double's range (1e400) is Infinity, which JSON and jsonb write as
 * null, and a whole number beyond 2^53 loses its last digits (12345678901234567890 comes back as
 * 12345678901234567000), as a 64-bit id would.
 */
export function inexactNumberProblem(value: number): string | undefined {
  if (!Number.isFinite(value)) {
    return 'is a number too large to keep (it would come back as null): send it as a string';
  }
  if (Number.isInteger(value) && !Number.isSafeInteger(value)) {
    return `is a whole number beyond ±${Number.MAX_SAFE_INTEGER} (2^53 - 1), whose last digits would be lost: send it as a string`;
  }
  return undefined;
}

/** The first number in `value` (at most `maxDepth` levels deep) that inexactNumberProblem refuses, with its path. */
export function findInexactNumber(value: unknown, maxDepth: number): { path: Path; message: string } | undefined {
  let found: { path: Path; message: string } | undefined;
  walkJson(
    value,
    maxDepth,
    (item, isKey, key, where) => {
      const problem = !isKey && typeof item === 'number' ? inexactNumberProblem(item) : undefined;
      if (problem) {
        found = { path: where(key), message: problem };
      }
      return found === undefined;
    },
    true,
  );
  return found;
}

/** How large a parsed JSON value may be anywhere in it: bounds no valid request of a route reaches. */
export interface JsonBounds {
  /** Levels of objects and arrays; the value itself is level 1. */
  depth: number;
  /** Fields of any one object. */
  keys: number;
  /** Items of any one array. */
  items: number;
}

/** Where a value first goes past its bounds, and how: too deep, or a container with too many fields or items. */
export type OversizedJson = { path: Path; over: 'depth' } | { path: Path; over: 'fields' | 'items'; count: number };

/**
 * The first object or array of `value` past `bounds`, or undefined. One walk, which stops at the
 * first too large: a body of 300,000 fields is refused for the cost of counting them, before any
 * schema looks at each (zod took 1 to 2 s over such an object, holding the process).
 */
export function findOversizedJson(value: unknown, bounds: JsonBounds): OversizedJson | undefined {
  let found: OversizedJson | undefined;
  const { deepAt } = walkJson(value, bounds.depth, undefined, false, (count, isArray, where) => {
    if (count > (isArray ? bounds.items : bounds.keys)) {
      found = { path: where(), over: isArray ? 'items' : 'fields', count };
    }
    return found === undefined;
  });
  return found ?? (deepAt === undefined ? undefined : { path: deepAt, over: 'depth' });
}
