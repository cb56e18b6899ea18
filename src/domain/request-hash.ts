// The hashes kept with an Idempotency-Key, which tell a retry of a request from another request.
import { createHash } from 'node:crypto';

import type { NewJob } from './message.js';

export interface RequestHashes {
  /**
   * Of the request as read, the keys of its free-form objects (metadata, variables, headers) in the
   * order the app sent them: what every release has stored (idempotency_keys.request_hash).
   */
  asSent: string;
  /**
   * Of the request with the keys of those objects sorted, at every depth: a retry whose JSON library
   * orders keys otherwise (Go, Python and Java ones do) hashes alike. Equal to asSent when they
   * already were in order, and then not stored (idempotency_keys.sorted_request_hash is null).
   */
  sorted: string;
}

/** What an Idempotency-Key holds of the request that took it. */
export interface StoredRequestHashes {
  requestHash: string;
  /** Null when it is requestHash, or when a release before sorted hashes stored the row. */
  sortedRequestHash: string | null;
}

const sha256 = (jobs: readonly NewJob[]) => createHash('sha256').update(JSON.stringify(jobs)).digest('hex');

/**
 * `value` with the keys of every object in it sorted, or `value` itself when they already are (no
 * copy). Object.fromEntries defines each key as its own, `__proto__` too. Integer-like keys come
 * first in their numeric order ("2" before "10"), as JavaScript lists them whatever the order sent.
 */
function withSortedKeys(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) {
    return value;
  }
  if (Array.isArray(value)) {
    const items = value.map(withSortedKeys);
    return items.every((item, index) => item === value[index]) ? value : items;
  }
  const object = value as Record<string, unknown>;
  const keys = Object.keys(object);
  const sorted = Object.fromEntries([...keys].sort().map((key) => [key, withSortedKeys(object[key])]));
  const sortedKeys = Object.keys(sorted);
  const unchanged = sortedKeys.every((key, index) => key === keys[index] && sorted[key] === object[key]);
  return unchanged ? value : sorted;
}

/** The job with its free-form objects' keys sorted, or the job itself when they already are. */
function sortedJob(job: NewJob): NewJob {
  const metadata = withSortedKeys(job.metadata) as NewJob['metadata'];
  const variables = withSortedKeys(job.content.variables) as Record<string, unknown> | undefined;
  const headers = withSortedKeys(job.content.headers) as Record<string, string> | undefined;
  if (metadata === job.metadata && variables === job.content.variables && headers === job.content.headers) {
    return job;
  }
  // Spread and assigned in place: every field keeps its position, so only the keys sorted differ.
  const content = variables === job.content.variables && headers === job.content.headers ? job.content : { ...job.content, variables, headers };
  return { ...job, content, metadata };
}

export function requestHashes(jobs: readonly NewJob[]): RequestHashes {
  const asSent = sha256(jobs);
  const sorted = jobs.map(sortedJob);
  return { asSent, sorted: sorted.every((job, index) => job === jobs[index]) ? asSent : sha256(sorted) };
}

/**
 * Whether a request is the one an Idempotency-Key holds: the same as sent (as before sorted hashes:
 * a row stored by an earlier release, or by one during a rolling upgrade), or the same once sorted.
 */
export function isSameRequest(stored: StoredRequestHashes, request: RequestHashes): boolean {
  return stored.requestHash === request.asSent || (stored.sortedRequestHash ?? stored.requestHash) === request.sorted;
}

/** The sorted hash as stored: null when it is the hash as sent. */
export function storedSortedHash(hashes: RequestHashes): string | null {
  return hashes.sorted === hashes.asSent ? null : hashes.sorted;
}
