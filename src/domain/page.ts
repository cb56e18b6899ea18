// Lists read newest first and paged by id (`before`): where the next page starts. One rule for every
// such list (the admin's jobs and webhook deliveries), so that the API, the CLI and the dashboard
// agree on when a list has more.

/**
 * Rows a page filtered on a column without an index looks through (the next ones by id below
 * `before`): a rare value would otherwise cost a walk through the whole table (or an app's history)
 * on every request, past the statement timeout once it holds millions of rows.
 */
export const LIST_WINDOW = 5_000;

/** What a page that looked through a window saw of it: how many rows, and the lowest id among them. */
export interface ListWindow {
  rows: number;
  lowestId: string | null;
}

/**
 * The next page's `before`: the last id of a full page. A short page is the last one, unless it
 * looked through a full window: then older rows may still match, and the next page starts below it.
 */
export function nextBefore(rows: readonly { id: string }[], limit: number, window?: ListWindow): string | null {
  if (rows.length === limit) {
    return rows.at(-1)!.id;
  }
  return window !== undefined && window.rows === LIST_WINDOW ? window.lowestId : null;
}
