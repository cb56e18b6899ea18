// Pages that look through a window of rows (domain/page.ts): their query returns, on every row, how
// many rows the window held (`window_rows`) and the lowest id among them (`window_lowest`), and a
// single row, its other columns null, when nothing in the window matched.
import type { ListWindow } from '../domain/page.js';
import type { Row } from './pool.js';

export function listWindow(row: Row | undefined): ListWindow {
  return { rows: Number(row?.['window_rows'] ?? 0), lowestId: (row?.['window_lowest'] as string | null) ?? null };
}
