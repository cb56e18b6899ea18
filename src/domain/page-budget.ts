// How much of its lists a dashboard page shows: every page is at most PAGE_BYTES of HTML, whatever
// the database holds (a link scanner's clicks on 10,000-character links full of `&`, which HTML
// escaping makes five bytes each; a bounce's error copied onto every status change). A page measures
// its frame (everything but its lists' rows), fits as many rows as the rest holds, and says how many
// of each list it left out. Pure: the caller renders and measures the rows.

/** The most bytes of HTML (as UTF-8) a dashboard page answers. */
export const PAGE_BYTES = 2 * 1024 * 1024;

export interface RowSizes {
  /** The list's rows, in the order they are taken: the first is kept first. */
  count: number;
  /** The bytes of row `index`; asked only of the rows the fitting reaches, each once. */
  bytesOf(index: number): number;
}

/**
 * How many of each list's first rows fit in `budget` bytes, taken in turns (every list's first row,
 * then every list's second, and so on), so that one list of large rows does not crowd out the
 * others. A list stops at its first row that does not fit: each shows its first rows with no gap
 * (what a notice can name plainly), and the other lists go on filling what is left.
 */
export function fitInTurns(lists: readonly RowSizes[], budget: number): number[] {
  const kept = lists.map(() => 0);
  const open = lists.map((list) => list.count > 0);
  let left = budget;
  while (open.includes(true)) {
    lists.forEach((list, i) => {
      if (!open[i]) {
        return;
      }
      const bytes = list.bytesOf(kept[i]!);
      if (bytes > left) {
        open[i] = false;
        return;
      }
      left -= bytes;
      kept[i] = kept[i]! + 1;
      open[i] = kept[i] < list.count;
    });
  }
  return kept;
}
