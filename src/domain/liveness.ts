// What GET /healthz answers, and the check `jetpost health` makes of an answer: a server that answers
// 200 to anything (a catch-all proxy, another app's health route saying {"status":"ok"}) on the port
// jetpost should have is not jetpost alive.
export const LIVENESS_ANSWER = { status: 'ok', service: 'jetpost' } as const;

/** True for jetpost's /healthz answer (parsed JSON), whatever else a later release adds to it. */
export function isLivenessAnswer(value: unknown): boolean {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return false;
  }
  const answer = value as Record<string, unknown>;
  return answer['status'] === LIVENESS_ANSWER.status && answer['service'] === LIVENESS_ANSWER.service;
}
