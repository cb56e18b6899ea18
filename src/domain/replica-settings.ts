// The settings every replica on one database must share for jetpost's guarantees to hold, as each
// writes them in its heartbeat (sql/43_…) and compares them with the others'. A secret is written
// as a hash, never in clear, and a difference is named, never shown.
import { createHash } from 'node:crypto';

/** Setting name → what it is in one process: its value, or `sha256:…` of a secret, or `unset`. */
export type SettingPrints = Readonly<Record<string, string>>;

/** What a setting is, for the heartbeat. */
export interface SharedSetting {
  readonly name: string;
  readonly value: string | number | undefined;
  /** A key or password: only its hash leaves the process. */
  readonly secret?: boolean;
}

/**
 * 64 bits of SHA-256, under a prefix of jetpost's own: equal secrets print alike on every replica.
 * The secrets compared are random keys or passwords checked for length and variety at start (config.ts).
 */
function secretPrint(name: string, value: string): string {
  return `sha256:${createHash('sha256').update(`jetpost replica setting\0${name}\0${value}`).digest('hex').slice(0, 16)}`;
}

export function settingPrints(settings: readonly SharedSetting[]): SettingPrints {
  return Object.fromEntries(
    settings.map(({ name, value, secret }) => [name, value === undefined ? 'unset' : secret ? secretPrint(name, String(value)) : String(value)]),
  );
}

export interface SettingDifference {
  readonly name: string;
  /** Both values, for a setting that is no secret; undefined for a secret. */
  readonly mine: string | undefined;
  readonly theirs: string | undefined;
}

/**
 * The settings both processes print that differ. One only the other prints (another release of
 * jetpost, during a rolling upgrade) is not compared.
 */
export function settingDifferences(mine: SettingPrints, theirs: SettingPrints, secrets: ReadonlySet<string>): SettingDifference[] {
  return Object.keys(mine)
    .filter((name) => Object.hasOwn(theirs, name) && theirs[name] !== mine[name])
    .map((name) => (secrets.has(name) ? { name, mine: undefined, theirs: undefined } : { name, mine: mine[name], theirs: theirs[name] }));
}
