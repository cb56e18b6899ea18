// HTML built by a tagged template that escapes every value it is given: text from the database
// (subjects, addresses, errors, custom_ids) can never become markup. Only fragments made by `html`
// itself pass through as they are.

/** A piece of markup `html` made (so already safe). */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

export type HtmlValue = Html | string | number | bigint | boolean | null | undefined | readonly HtmlValue[];

function render(value: HtmlValue): string {
  if (value instanceof Html) {
    return value.text;
  }
  if (Array.isArray(value)) {
    return value.map(render).join('');
  }
  if (value === null || value === undefined || value === false) {
    return '';
  }
  return escapeHtml(String(value));
}

/** Markup with its values escaped (attribute values must be quoted: `href="${url}"`). */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): Html {
  return new Html(strings.reduce((out, piece, i) => out + piece + (i < values.length ? render(values[i]) : ''), ''));
}

/**
 * JSON inside a `<script type="application/json">` element: `<` is written as \u003c, so no value can
 * close the element, and U+2028/2029 cannot break a reader that treats them as line ends.
 */
export function jsonScript(id: string, value: unknown): Html {
  const json = JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
  return new Html(`<script type="application/json" id="${escapeHtml(id)}">${json}</script>`);
}
