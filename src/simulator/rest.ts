/** Shapes shared by the simulated v3 REST resources (/v3/REST/message, /v3/REST/eventcallbackurl). */

const DEFAULT_LIMIT = 10;
const MAX_LIMIT = 1000;

/** A v3 REST error, answered as {"ErrorInfo":"","ErrorMessage":…,"StatusCode":…} like Mailjet's. */
export class RestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'RestError';
  }

  toBody(): Record<string, unknown> {
    return { ErrorInfo: '', ErrorMessage: this.message, StatusCode: this.status };
  }
}

export function notFound(): RestError {
  return new RestError(404, 'Object not found');
}

/** Mailjet's list envelope with its Limit (default 10, at most 1000) and Offset paging. */
export function restPage<T>(items: readonly T[], query: URLSearchParams): { Count: number; Data: T[]; Total: number } {
  const limit = Math.min(readCount(query.get('Limit'), DEFAULT_LIMIT), MAX_LIMIT);
  const offset = readCount(query.get('Offset'), 0);
  const data = items.slice(offset, offset + limit);
  return { Count: data.length, Data: data, Total: items.length };
}

export function restOne<T>(item: T): { Count: number; Data: T[]; Total: number } {
  return { Count: 1, Data: [item], Total: 1 };
}

function readCount(value: string | null, fallback: number): number {
  const count = Number(value ?? undefined);
  return Number.isInteger(count) && count >= 0 ? count : fallback;
}
