// How big the fault scenarios run: the fast sizes in `npm test`, the big ones in `npm run test:faults`.

export type FaultScale = 'fast' | 'full';

/** `FAULT_SCALE=full` (npm run test:faults) runs the big sizes; anything else the fast ones of `npm test`. */
export const FAULT_SCALE: FaultScale = process.env['FAULT_SCALE'] === 'full' ? 'full' : 'fast';

export function byScale<T>(sizes: { fast: T; full: T }): T {
  return sizes[FAULT_SCALE];
}
