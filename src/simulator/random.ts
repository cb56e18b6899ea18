/**
 * A small seeded pseudo-random generator (mulberry32). Not cryptographic: it exists so that a run with
 * the same seed repeats the same MessageIDs, UUIDs and fault decisions.
 */
export interface Random {
  /** An unsigned 32-bit integer. */
  uint32(): number;
  /** A float in [0, 1). */
  next(): number;
  /** A UUID with the version 4 layout, drawn from this generator. */
  uuid(): string;
  /** A shuffled copy of items (Fisher–Yates). */
  shuffle<T>(items: readonly T[]): T[];
}

export function createRandom(seed: number): Random {
  let state = seed >>> 0;
  const uint32 = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  const next = (): number => uint32() / 2 ** 32;
  return {
    uint32,
    next,
    uuid: () => formatUuid(uint32),
    shuffle: <T>(items: readonly T[]): T[] => {
      const copy = [...items];
      for (let i = copy.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
      }
      return copy;
    },
  };
}

function formatUuid(uint32: () => number): string {
  const hex = Array.from({ length: 4 }, () => uint32().toString(16).padStart(8, '0')).join('');
  // Version nibble 4 and variant bits 10xx, so the result passes a strict v4 check.
  const variant = ((parseInt(hex.charAt(16), 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}
