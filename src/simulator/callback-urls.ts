import { type CallbackTarget, EVENT_TYPES, type EventType, isHttpUrl } from './callbacks.js';
import { notFound, RestError } from './rest.js';

/** A row of /v3/REST/eventcallbackurl, with Mailjet's field names. */
export interface CallbackUrlRow {
  APIKeyID: number;
  EventType: EventType;
  ID: number;
  IsBackup: boolean;
  Status: 'alive' | 'dead';
  Url: string;
  /** 1: one event per POST; 2: grouped, a JSON array per POST. */
  Version: 1 | 2;
}

type EditableFields = Pick<CallbackUrlRow, 'EventType' | 'IsBackup' | 'Status' | 'Url' | 'Version'>;

/** In-memory /v3/REST/eventcallbackurl: one row per (EventType, IsBackup), as Mailjet enforces. */
export interface CallbackUrlRegistry {
  /** Rows matching the EventType, Backup, Status and Version filters of a GET, unpaged. */
  list(query: URLSearchParams): CallbackUrlRow[];
  /** The following throw a RestError (404, or 400 for invalid or conflicting fields). */
  get(id: string): CallbackUrlRow;
  create(body: unknown): CallbackUrlRow;
  /**
   * A partial update, like Mailjet's PUT. Giving the Url registers it again: a suspended row comes
   * back alive unless the body sets Status itself.
   */
  update(id: string, body: unknown): CallbackUrlRow;
  remove(id: string): void;
  /** Where events of a type go: the alive primary URL, else the alive backup. */
  targetFor(type: EventType): CallbackTarget | undefined;
  /**
   * Marks a row "dead", as Mailjet does with a URL that kept failing; ignored when the row is gone or
   * has been given another URL since.
   */
  suspend(id: string, url: string): void;
}

/** Mailjet's internal event type numbers, which its MJ18 message shows. */
const EVENT_TYPE_CODES: Record<EventType, number> = { click: 1, bounce: 2, spam: 3, blocked: 4, unsub: 5, open: 6, sent: 7 };
const API_KEY_ID = 1;

const FIELD_CHECKS: { [K in keyof EditableFields]: (value: unknown) => boolean } = {
  EventType: (value) => typeof value === 'string' && (EVENT_TYPES as readonly string[]).includes(value),
  IsBackup: (value) => typeof value === 'boolean',
  Status: (value) => value === 'alive' || value === 'dead',
  Url: (value) => typeof value === 'string' && isHttpUrl(value),
  Version: (value) => value === 1 || value === 2,
};

const LIST_FILTERS: Array<[param: string, matches: (row: CallbackUrlRow, value: string) => boolean]> = [
  ['EventType', (row, value) => row.EventType === value],
  ['Backup', (row, value) => String(row.IsBackup) === value],
  ['Status', (row, value) => row.Status === value],
  ['Version', (row, value) => String(row.Version) === value],
];

export function createCallbackUrlRegistry(): CallbackUrlRegistry {
  const rows = new Map<number, CallbackUrlRow>();
  let nextId = 1;

  const get = (id: string): CallbackUrlRow => {
    const row = rows.get(Number(id));
    if (row === undefined) {
      throw notFound();
    }
    return row;
  };

  const save = (row: CallbackUrlRow): CallbackUrlRow => {
    const taken = [...rows.values()].some((other) => other.ID !== row.ID && other.EventType === row.EventType && other.IsBackup === row.IsBackup);
    if (taken) {
      const value = `${EVENT_TYPE_CODES[row.EventType]}|${row.IsBackup}`;
      throw new RestError(400, `MJ18 A EventCallbackURL resource with value "${value}" for EventType|Backup already exists.`);
    }
    rows.set(row.ID, row);
    return row;
  };

  return {
    list: (query) =>
      [...rows.values()].filter((row) =>
        LIST_FILTERS.every(([param, matches]) => {
          const value = query.get(param);
          return value === null || matches(row, value);
        }),
      ),
    get,
    create(body) {
      const fields = readFields(body);
      if (fields.EventType === undefined || fields.Url === undefined) {
        throw new RestError(400, 'MJ03 A value is required for "EventType" and "Url".');
      }
      const row = save({
        APIKeyID: API_KEY_ID,
        EventType: fields.EventType,
        ID: nextId,
        IsBackup: fields.IsBackup ?? false,
        Status: fields.Status ?? 'alive',
        Url: fields.Url,
        Version: fields.Version ?? 1,
      });
      nextId++;
      return row;
    },
    update(id, body) {
      const fields = readFields(body);
      const revived = fields.Url !== undefined && fields.Status === undefined ? { Status: 'alive' as const } : {};
      return save({ ...get(id), ...revived, ...fields });
    },
    remove(id) {
      rows.delete(get(id).ID);
    },
    targetFor(type) {
      const alive = [...rows.values()].filter((row) => row.EventType === type && row.Status === 'alive');
      const row = alive.find((candidate) => !candidate.IsBackup) ?? alive[0];
      return row && { url: row.Url, grouped: row.Version === 2, id: String(row.ID) };
    },
    suspend(id, url) {
      const row = rows.get(Number(id));
      if (row?.Url === url) {
        row.Status = 'dead';
      }
    },
  };
}

/** The editable fields present in a POST or PUT body, each checked; unknown and read-only ones are ignored. */
function readFields(body: unknown): Partial<EditableFields> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new RestError(400, 'Malformed JSON: the body must be an object.');
  }
  const input = body as Record<string, unknown>;
  const fields: Record<string, unknown> = {};
  for (const [name, check] of Object.entries(FIELD_CHECKS)) {
    const value = input[name];
    if (value === undefined) {
      continue;
    }
    if (!check(value)) {
      throw new RestError(400, `Invalid value for property "${name}".`);
    }
    fields[name] = value;
  }
  return fields;
}
