// The address syntax jetpost accepts, pure: what RFC 5321 allows in a mailbox (a dot-atom local part
// of RFC 5322 atext, a domain of LDH labels), widened to UTF-8 by RFC 6531 (SMTPUTF8), as Mailjet
// accepts it. Two RFC forms are refused on purpose, because no mail service delivers to them in
// practice and they make addresses ambiguous to compare: quoted local parts ("john doe"@…) and
// address literals (user@[192.0.2.1]).
import { domainToASCII } from 'node:url';

import { unicodeEscape } from './unicode-escape.js';

/** RFC 5321 §4.5.3.1, in octets of UTF-8 (RFC 6531 §3.3). */
export const EMAIL_ADDRESS_LIMITS = { address: 254, localPart: 64, domain: 255, label: 63 } as const;

/** RFC 5322 atext: letters, digits and these 20 symbols. */
const ASCII_ATEXT = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]$/;
/** The common case in one test: an ASCII dot-atom (each dot between two atoms, so no backtracking). */
const ASCII_DOT_ATOM = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*$/;
/**
 * What no address holds, anywhere in it: controls, format characters (bidi overrides, embeddings,
 * isolates and marks; zero-width spaces and joiners; the soft hyphen; tags), lone surrogates, spaces
 * other than the ASCII one (refused with the other ASCII characters outside atext, by name), and the
 * other default-ignorable code points (variation selectors, Hangul fillers, the combining grapheme
 * joiner). Each is invisible, or reorders the text around it: an address holding one reads on the
 * dashboard as another address, or not as it is, and no mailbox is named with one. A domain's IDNA
 * processing would even drop some of them (variation selectors), making two strings of one domain.
 * The separators (\p{Z}) are listed one by one, U+0020 left out: a lookahead leaving it out of \p{Z}
 * made this test 3 to 5 times slower.
 */
const HIDDEN_OR_CONTROL = /[\p{Cc}\p{Cf}\p{Cs}\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\p{Default_Ignorable_Code_Point}]/u;
/** What a domain may hold before conversion: ASCII letters, digits, dots and hyphens, and the letters,
 * marks and digits of other scripts (IDNA). */
const DOMAIN_CHARACTERS = /^[A-Za-z0-9.\-\p{L}\p{M}\p{N}]+$/u;
/** A domain that needs no IDNA processing: ASCII letters, digits, dots and hyphens, and no A-label. */
const PLAIN_ASCII_DOMAIN = /^[A-Za-z0-9.-]+$/;
const A_LABEL = /(?:^|\.)xn--/i;
/** An LDH label (RFC 5890 §2.3.1) once the domain is in its ASCII (A-label) form. */
const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;

const octets = (text: string) => Buffer.byteLength(text, 'utf8');

function localPartProblem(local: string): string | undefined {
  if (local.startsWith('"')) {
    return 'quoted local parts ("…"@) are not accepted';
  }
  if (octets(local) > EMAIL_ADDRESS_LIMITS.localPart) {
    return `the part before @ is longer than ${EMAIL_ADDRESS_LIMITS.localPart} bytes`;
  }
  if (ASCII_DOT_ATOM.test(local)) {
    return undefined;
  }
  if (local.split('.').some((atom) => atom === '')) {
    return 'the part before @ cannot start or end with a dot or hold two dots in a row';
  }
  for (const char of local) {
    // RFC 6531 adds any other non-ASCII character (fullAddressProblem refused the hidden ones first).
    const allowed = char === '.' || ASCII_ATEXT.test(char) || char.codePointAt(0)! > 0x7f;
    if (!allowed) {
      return `the part before @ cannot contain ${JSON.stringify(char)}`;
    }
  }
  return undefined;
}

function domainProblem(domain: string): string | undefined {
  if (domain.startsWith('[')) {
    return 'address literals (user@[…]) are not accepted: give a domain name';
  }
  if (octets(domain) > EMAIL_ADDRESS_LIMITS.domain) {
    return `the domain is longer than ${EMAIL_ADDRESS_LIMITS.domain} bytes`;
  }
  // domainToASCII parses a URL host: it would cut "example.com/x" at the slash and drop tabs and
  // zero-width characters, so only characters a domain may hold reach it.
  // Named as the local part's are: "a@example.com " (a form field not trimmed) is to read as a space.
  const stray = [...domain].find((char) => !DOMAIN_CHARACTERS.test(char));
  if (stray !== undefined) {
    return `the domain cannot contain ${JSON.stringify(stray)}`;
  }
  if (domain.endsWith('.')) {
    return 'the domain cannot end with a dot';
  }
  // UTS #46 processing (what browsers and mail clients do): lower-cases, turns U-labels into
  // A-labels (xn--…) and refuses invalid punycode ('' for a domain it refuses). A plain ASCII
  // domain only needs lower-casing.
  const ascii = PLAIN_ASCII_DOMAIN.test(domain) && !A_LABEL.test(domain) ? domain.toLowerCase() : domainToASCII(domain);
  if (ascii === '') {
    return 'the domain is not a valid domain name';
  }
  const labels = ascii.split('.');
  if (labels.length < 2) {
    return 'the domain needs at least one dot (e.g. example.com)';
  }
  if (octets(ascii) > EMAIL_ADDRESS_LIMITS.domain) {
    return `the domain is longer than ${EMAIL_ADDRESS_LIMITS.domain} bytes in its ASCII form`;
  }
  for (const label of labels) {
    if (label.length > EMAIL_ADDRESS_LIMITS.label) {
      return `a domain label is longer than ${EMAIL_ADDRESS_LIMITS.label} bytes`;
    }
    if (!LDH_LABEL.test(label)) {
      return 'each part of the domain holds letters, digits and inner hyphens only';
    }
  }
  // An all-numeric last label would make the domain read as an IPv4 address (RFC 3696 §2).
  if (/^\d+$/.test(labels.at(-1)!)) {
    return 'the domain cannot end in an all-numeric label';
  }
  return undefined;
}

/**
 * Most addresses in one test, without the steps below: an ASCII dot-atom, an @, and at least two LDH
 * labels of 1 to 63 characters, the last not all digits. An A-label (xn--…) still needs its punycode
 * checked, and the lengths in octets are the lengths here (ASCII), checked apart.
 */
const PLAIN_ADDRESS =
  /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+(?!\d+$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** An A-label anywhere in an address (in the local part too: the quick yes is then only not given). */
const A_LABEL_ANYWHERE = /[@.]xn--/i;

/** Whether `address` is plainly valid: a quick yes for most addresses, no verdict otherwise (see emailAddressProblem). */
export function isPlainAddress(address: string): boolean {
  return (
    address.length <= EMAIL_ADDRESS_LIMITS.address &&
    PLAIN_ADDRESS.test(address) &&
    address.indexOf('@') <= EMAIL_ADDRESS_LIMITS.localPart &&
    !A_LABEL_ANYWHERE.test(address)
  );
}

/** Why `address` is not an address jetpost sends to, or undefined when it is one. */
export function emailAddressProblem(address: string): string | undefined {
  return isPlainAddress(address) ? undefined : fullAddressProblem(address);
}

/** emailAddressProblem step by step, for any address (exported for the test that holds isPlainAddress to it). */
export function fullAddressProblem(address: string): string | undefined {
  if (octets(address) > EMAIL_ADDRESS_LIMITS.address) {
    return `longer than ${EMAIL_ADDRESS_LIMITS.address} bytes`;
  }
  const hidden = HIDDEN_OR_CONTROL.exec(address);
  if (hidden !== null) {
    // Written as an escape: the character itself would do in the message what it did in the address.
    return `cannot contain ${unicodeEscape(hidden[0])} (a control character, an invisible one, or one that changes the direction of text)`;
  }
  if (DISPLAY_FORM.test(address)) {
    // What mail headers and most mail libraries write; the name goes in a field of its own here.
    return 'a name with the address in <…> ("Ada <ada@example.org>") is not an address: give {"email": "ada@example.org", "name": "Ada"}';
  }
  if (SEVERAL.test(address)) {
    return 'holds several addresses: give them as a list, ["ada@example.org", "bob@example.org"]';
  }
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) {
    return 'needs a local part, an @ and a domain, e.g. ada@example.org';
  }
  return localPartProblem(address.slice(0, at)) ?? domainProblem(address.slice(at + 1));
}

/** `Name <address>` or `"Name" <address>`: an address as a header writes it, with a display name. */
const DISPLAY_FORM = /<[^<>]*@[^<>]*>\s*$/;
/** Two addresses separated by a comma or a semicolon, as a header's list writes them. */
const SEVERAL = /@[^@,;]*[,;][^@]*@/;

/** Printable ASCII: the quick path of the keys (any other text takes the whole one, to the same key). */
const PRINTABLE_ASCII = /^[ -~]*$/;

/**
 * Each letter lower-cased one for one, as sql/44's unicode_lower() does: no final sigma by context
 * (Σ is σ wherever it stands, as in the database) and İ is i. Only İ has a lower case of two
 * characters; each other letter's own toLowerCase is that letter's simple mapping.
 */
function lowerEachLetter(text: string): string {
  return PRINTABLE_ASCII.test(text) ? text.toLowerCase() : Array.from(text, (letter) => (letter === 'İ' ? 'i' : letter.toLowerCase())).join('');
}

/** A domain's key: the ASCII form UTS #46 maps it to (A-labels, what DNS and every mail server use). */
function domainKey(domain: string): string {
  return PLAIN_ASCII_DOMAIN.test(domain) ? domain.toLowerCase() : domainToASCII(domain) || lowerEachLetter(domain);
}

/**
 * The form in which two addresses are one mailbox, the key suppressions and the dashboard's search
 * use (address_key() in the database, sql/48_…; docs/admin.md states the rule): the local part with
 * each letter lower-cased one for one (ß and ẞ are one, ss another; Σ and σ are one, ς another: a
 * receiving server may keep those apart), the domain as UTS #46 maps it, in its ASCII form (ẞ is ss,
 * ß and ς stay letters of their own), so that user@bücher.example and user@xn--bcher-kva.example
 * compare equal. For an address emailAddressProblem accepted.
 */
export function addressKey(address: string): string {
  const at = address.lastIndexOf('@');
  return `${lowerEachLetter(address.slice(0, at))}@${domainKey(address.slice(at + 1))}`;
}

/**
 * The key an event's `email` and the address of the recipient holding its MessageID are compared by
 * (isHoldersAddress). Its local part is looser than addressKey's on purpose: the check it serves keeps
 * an event aside only when the address cannot be the holder's, spelt by another mail system, so it
 * takes Unicode compatibility normalisation (NFKC: full-width forms, a full-width @, ligatures) and
 * case folded both ways, so that a case mapping that is not one-to-one (ß and SS, a final sigma, the
 * dotted İ, whose lower case is i and a combining dot) still compares equal. Its domain is addressKey's
 * (UTS #46), without a final dot: faß.example and fass.example are two domains, whoever spells them.
 */
export function eventAddressKey(address: string): string {
  if (PRINTABLE_ASCII.test(address)) {
    const folded = address.toLowerCase();
    return folded.endsWith('.') ? folded.slice(0, -1) : folded;
  }
  const normalized = address.normalize('NFKC');
  const at = normalized.lastIndexOf('@');
  const local = (at < 0 ? normalized : normalized.slice(0, at))
    .toUpperCase()
    .toLowerCase()
    .replace(/i\u0307/g, 'i');
  return at < 0 ? local : `${local}@${domainKey(normalized.slice(at + 1).replace(/\.$/, ''))}`;
}

/**
 * Whether an event's `email` can be the address of the recipient holding its MessageID: the one
 * check of every path that applies an event (events-repo's statement and its late matches). An event
 * without an email cannot say otherwise.
 */
export function isHoldersAddress(holderEmail: string, eventEmail: string | null | undefined): boolean {
  return eventEmail === null || eventEmail === undefined || eventAddressKey(eventEmail) === eventAddressKey(holderEmail);
}
