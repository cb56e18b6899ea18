// HTML built by a tagged template that escapes every value it is given: text from the database
// (subjects, addresses, errors, custom_ids) can never become markup, nor reorder what a page shows.
// Only fragments made by `html` itself pass through as they are.
import { unicodeEscape } from '../../domain/unicode-escape.js';

/** A piece of markup `html` made (so already safe). */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/**
 * The characters that change the direction of the text around them (overrides, embeddings, isolates,
 * marks): an app or Mailjet could write one into a subject, custom_id or error, and make it read on a
 * page as another. They are shown as escapes (`\u202e`) instead, as email-address.ts refuses them in addresses.
 */
const BIDI_CONTROL = /\p{Bidi_Control}/gu;

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!).replace(BIDI_CONTROL, unicodeEscape);
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
