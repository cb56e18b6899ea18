/**
 * JSON serialization where a bigint is written as a raw integer literal, as Mailjet writes its 64-bit
 * MessageIDs. JSON.stringify throws on bigint and Node 20 has no JSON.rawJSON, so this walks the value.
 * Everything else follows JSON.stringify: toJSON() is honoured (Dates become ISO strings), undefined
 * properties are left out and undefined array items become null.
 */
export function toJson(value: unknown): string {
  return serialize(value) ?? 'null';
}

/** Returns undefined for values JSON leaves out (undefined, functions, symbols). */
function serialize(value: unknown): string | undefined {
  if (value === null) {
    return 'null';
  }
  switch (typeof value) {
    case 'bigint':
      return value.toString();
    case 'number':
      return Number.isFinite(value) ? String(value) : 'null';
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'object':
      return serializeObject(value);
    default:
      return undefined;
  }
}

function serializeObject(value: object): string | undefined {
  if ('toJSON' in value && typeof value.toJSON === 'function') {
    return serialize((value.toJSON as () => unknown).call(value));
  }
  if (Array.isArray(value)) {
    return `[${value.map((item: unknown) => serialize(item) ?? 'null').join(',')}]`;
  }
  const members: string[] = [];
  for (const [key, member] of Object.entries(value)) {
    const text = serialize(member);
    if (text !== undefined) {
      members.push(`${JSON.stringify(key)}:${text}`);
    }
  }
  return `{${members.join(',')}}`;
}
