// Waiting on something that may never finish (a query to a frozen database, a peer that stops
// answering) without hanging on it: each shutdown step gets a deadline and moves on after it.

/**
 * Resolves true when `work` is fulfilled within `ms`, false when `ms` passed first (the work goes on
 * unobserved); rejects when `work` rejects in time.
 */
export async function finishedWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([work.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
