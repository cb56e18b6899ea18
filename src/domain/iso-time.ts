// Dates as ISO 8601 text for PostgreSQL, pure.

/**
 * toISOString once per distinct time in a row: the jobs of a batch share their run_at, a callback's
 * events often their second, and formatting a date cost more than everything else done per job or
 * event with it.
 */
export function isoTimeFormatter(): (date: Date) => string {
  let lastMs = Number.NaN;
  let last = '';
  return (date) => {
    const ms = date.getTime();
    if (ms !== lastMs) {
      last = date.toISOString();
      lastMs = ms;
    }
    return last;
  };
}
