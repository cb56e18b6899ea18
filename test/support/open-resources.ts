// Resources a test opens through test support (jetpost services, databases and their pools, proxies)
// are registered while open. The root afterEach (test/hooks.ts) fails the test that left one open, as
// graphile-worker's tests do with _allWorkerPools, so that a forgotten stop shows where it happened
// instead of as a hang at the end of the run (mocha never runs with --exit). What a suite's `before`
// hook opens may live until its `after` hook; the root afterAll checks that nothing at all is left.

interface OpenResource {
  what: string;
  /** Opened while a test (or its beforeEach) ran, rather than by a suite's before hook. */
  byTest: boolean;
}

const open = new Map<symbol, OpenResource>();
let testRunning = false;

/** Registers a resource as open; call the returned function when it is closed. */
export function trackOpen(what: string): () => void {
  const id = Symbol(what);
  open.set(id, { what, byTest: testRunning });
  return () => {
    open.delete(id);
  };
}

export function testStarted(): void {
  testRunning = true;
}

/** What the test that just ended left open (forgotten from then on, so that one leak fails one test). */
export function testEnded(): string[] {
  testRunning = false;
  const left: string[] = [];
  for (const [id, resource] of open) {
    if (resource.byTest) {
      left.push(resource.what);
      open.delete(id);
    }
  }
  return left;
}

/** Everything still open. */
export function stillOpen(): string[] {
  return [...open.values()].map((resource) => resource.what);
}
