// Mailjet's MessageIDs are 64-bit integers, routinely above 2^53, so jetpost carries them as decimal
// strings from the moment they are parsed; PostgreSQL stores them as bigint. Their MessageUUIDs are
// checked as they are parsed too, so that one the database would refuse is never recorded.
import { unstorableCharacter } from './storable-text.js';

const MAX_BIGINT = 9223372036854775807n;

/**
 * A Mailjet id as a canonical decimal string, or undefined when it is not one. Big ids arrive as
 * strings (parsed losslessly); a JS number is only trusted while it is a safe integer, since a
 * larger one has already lost digits.
 */
export function toIdString(value: unknown): string | undefined {
  if (typeof value === 'string' && /^\d{1,20}$/.test(value)) {
    const id = BigInt(value);
    return id <= MAX_BIGINT ? id.toString() : undefined;
  }
  if (typeof value === 'bigint') {
    return value >= 0n && value <= MAX_BIGINT ? value.toString() : undefined;
  }
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) {
    return String(value);
  }
  return undefined;
}

const MAX_UNSIGNED = 18446744073709551615n;

/**
 * A 64-bit unsigned integer past 2^63-1, as a decimal string; undefined for anything else. Mailjet's
 * reference says only "64-bit"; such an id (none seen: theirs have 17 to 19 digits) would not fit the
 * bigint columns, so it is never stored, but it still says that Mailjet has the message.
 */
export function unstorableId(value: unknown): string | undefined {
  const id = typeof value === 'bigint' ? value : typeof value === 'string' && /^\d{19,20}$/.test(value) ? BigInt(value) : undefined;
  return id !== undefined && id > MAX_BIGINT && id <= MAX_UNSIGNED ? id.toString() : undefined;
}

/** Whether a canonical id string fits the bigint columns (see toIdString). */
export function isStorableId(id: string): boolean {
  return toIdString(id) !== undefined;
}

/** Mailjet's MessageUUIDs have 36 characters; a far longer one would not fit its index's entry (about 2.7 kB). */
const MAX_UUID_LENGTH = 255;

/**
 * A MessageUUID as it is stored: '' when Mailjet gives none (SandboxMode's is ''), undefined when it
 * cannot be kept as it came (a NUL, which a text column refuses; an unpaired surrogate, which would be
 * stored changed; over MAX_UUID_LENGTH), so that no event could be matched by it.
 */
export function toUuidString(value: unknown): string | undefined {
  if (typeof value !== 'string') {
    return '';
  }
  return value.length > MAX_UUID_LENGTH || unstorableCharacter(value) !== undefined ? undefined : value;
}
