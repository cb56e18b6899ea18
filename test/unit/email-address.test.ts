import { expect } from 'chai';
import fc from 'fast-check';

import { addressKey, emailAddressProblem, fullAddressProblem, isHoldersAddress, isPlainAddress } from '../../src/domain/email-address.js';

const accepted = (address: string) => expect(emailAddressProblem(address), address).to.equal(undefined);
const refused = (address: string, reason?: RegExp) => {
  const problem = emailAddressProblem(address);
  expect(problem, address).to.be.a('string');
  if (reason) {
    expect(problem, address).to.match(reason);
  }
};

describe('emailAddressProblem', () => {
  it('when the local part uses any RFC 5322 atext symbol, then the address is accepted', () => {
    for (const address of [
      'o&reilly@example.com',
      'user=tag@example.com',
      "o'reilly@example.com",
      'a+b@example.com',
      "!#$%&'*+-/=?^_`{|}~@example.com",
      'first.last@example.com',
      'UPPER@Example.COM',
      '1@example.com',
    ]) {
      accepted(address);
    }
  });

  it('when the domain is punycode (a TLD such as xn--p1ai) or internationalised (UTF-8), then it is accepted', () => {
    for (const address of [
      'user@example.xn--p1ai',
      'user@xn--bcher-kva.de',
      'user@b\u00fccher.de',
      'user@\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444',
      'user@\u4f8b\u5b50.\u5e7f\u544a',
      'user@sub.do-main.example.co.uk',
      'user@a--b.example',
    ]) {
      accepted(address);
    }
  });

  it('when the local part is UTF-8 (RFC 6531), then it is accepted; controls, spaces and lone surrogates in it are not', () => {
    for (const address of [
      'j\u00f6rg@example.com',
      '\u7528\u6237@\u4f8b\u5b50.\u5e7f\u544a',
      '\u0434\u0436\u043e\u043d@example.com',
      '\ud83d\ude00@example.com',
    ]) {
      accepted(address);
    }
    for (const address of ['a\u00a0b@example.com', 'a\u2028b@example.com', 'a\u0085b@example.com', 'a\ud800b@example.com', 'a\u3000b@example.com']) {
      refused(address, /cannot contain/);
    }
  });

  it('when an address holds a control, format, bidi or other invisible character, anywhere, then it is refused naming the character as \\uXXXX', () => {
    const cases: Array<[string, string]> = [
      ['ad\u202emin@example.com', '\\u202e'],
      ['a\u202ab@example.com', '\\u202a'],
      ['a\u2066b@example.com', '\\u2066'],
      ['a\u200fb@example.com', '\\u200f'],
      ['a\u061cb@example.com', '\\u061c'],
      ['a\u200b@example.com', '\\u200b'],
      ['a\u200cb@example.com', '\\u200c'],
      ['a\u200db@example.com', '\\u200d'],
      ['a\u2060b@example.com', '\\u2060'],
      ['\ufeffa@example.com', '\\ufeff'],
      ['a\u00adb@example.com', '\\u00ad'],
      ['a\u034fb@example.com', '\\u034f'],
      ['a\u3164b@example.com', '\\u3164'],
      ['a\u180eb@example.com', '\\u180e'],
      ['a\u0085b@example.com', '\\u0085'],
      ['a\u007fb@example.com', '\\u007f'],
      ['a\u0000@example.com', '\\u0000'],
      ['a\u00a0b@example.com', '\\u00a0'],
      ['a\u2028b@example.com', '\\u2028'],
      ['a\ud800b@example.com', '\\ud800'],
      ['a\u{e0041}b@example.com', '\\udb40\\udc41'],
      ['\u0627\u200f\u0644@example.com', '\\u200f'],
      ['a@exa\u200bmple.com', '\\u200b'],
      ['a@exa\ufe0fmple.com', '\\ufe0f'],
      ['a@b\u00fc\u034fcher.de', '\\u034f'],
      ['a@example.com\u202e', '\\u202e'],
    ];
    for (const [address, escaped] of cases) {
      const problem = emailAddressProblem(address);
      expect(problem, escaped).to.be.a('string').and.include(`cannot contain ${escaped}`);
      expect(problem, escaped).not.to.match(/[^\x20-\x7e]/);
    }
  });

  it('when an address is in a script written right to left, with combining marks, or with emoji, then it is accepted', () => {
    for (const address of [
      '\u05d3\u05d5\u05d0\u05e8@\u05d3\u05d5\u05d2\u05de\u05d4.\u05d9\u05e9\u05e8\u05d0\u05dc',
      '\u0628\u0631\u064a\u062f@\u0645\u062b\u0627\u0644.\u0625\u062e\u062a\u0628\u0627\u0631',
      '\u0938\u0902\u092a\u0930\u094d\u0915@\u0921\u093e\u091f\u093e\u092e\u0947\u0932.\u092d\u093e\u0930\u0924',
      '\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35@\u0e44\u0e17\u0e22.\u0e44\u0e17\u0e22',
      'jo\u0308rg@example.com',
      '\ud83d\ude00@example.com',
    ]) {
      accepted(address);
    }
  });

  it('when a dot starts, ends or doubles in the local part, then it is refused', () => {
    for (const address of ['.a@example.com', 'a.@example.com', 'a..b@example.com', '.@example.com']) {
      refused(address, /dot/);
    }
  });

  it('when the local part holds characters outside atext (space, comma, brackets, backslash, @, quotes), then it is refused', () => {
    for (const address of [
      'a b@example.com',
      'a,b@example.com',
      'a(b)@example.com',
      'a<b>@example.com',
      'a\\b@example.com',
      'a@b@example.com',
      'a;b@example.com',
      'a:b@example.com',
      'a\r\nb@example.com',
      'a\u0000@example.com',
    ]) {
      refused(address);
    }
  });

  it('when the local part is quoted or the domain an address literal, then it is refused with a reason', () => {
    refused('"john doe"@example.com', /quoted/);
    refused('"a"@example.com', /quoted/);
    refused('user@[192.0.2.1]', /literal/);
    refused('user@[IPv6:2001:db8::1]', /literal/);
  });

  it('when the domain is not a host name (no dot, bad hyphens, underscores, empty labels, bad punycode, a trailing dot, numeric TLD, URL parts, tabs, zero-width characters), then it is refused', () => {
    for (const address of [
      'user@localhost',
      'user@-example.com',
      'user@example-.com',
      'user@exa_mple.com',
      'user@example..com',
      'user@.example.com',
      'user@example.com.',
      'user@xn--zz.com',
      'user@example.123',
      'user@192.168.0.1',
      'user@exa mple.com',
      'user@exa%20mple.com',
      'user@example.com/x',
      'user@example.com\n',
      'user@exa\tmple.com',
      'user@exam\u200bple.com',
      'user@a#b.com',
      'user@example.com?x',
    ]) {
      refused(address);
    }
  });

  it('when the domain holds a character no domain holds (a trailing space, a slash) or ends with a dot, then the refusal names it', () => {
    const cases: Array<[string, string]> = [
      ['user@example.com ', 'the domain cannot contain " "'],
      ['user@exa mple.com', 'the domain cannot contain " "'],
      ['user@example.com/x', 'the domain cannot contain "/"'],
      ['user@exa_mple.com', 'the domain cannot contain "_"'],
      ['user@example.com.', 'the domain cannot end with a dot'],
    ];
    for (const [address, problem] of cases) {
      expect(emailAddressProblem(address), address).to.equal(problem);
    }
  });

  it('when there is no @, nothing before it, or nothing after it, then it is refused', () => {
    for (const address of ['plain', '@example.com', 'user@', '', '@']) {
      refused(address, /needs a local part/);
    }
  });

  it('when a name comes with the address (Name <address>) or several addresses in one string, then the refusal says how to give them', () => {
    for (const address of ['Ada <ada@example.org>', '"Lovelace, Ada" <ada@example.org>', '<ada@example.org>']) {
      expect(emailAddressProblem(address), address).to.equal(
        'a name with the address in <…> ("Ada <ada@example.org>") is not an address: give {"email": "ada@example.org", "name": "Ada"}',
      );
    }
    for (const address of ['ada@example.org, bob@example.org', 'ada@example.org;bob@example.org']) {
      expect(emailAddressProblem(address), address).to.equal('holds several addresses: give them as a list, ["ada@example.org", "bob@example.org"]');
    }
  });

  it('when the local part is 64 bytes, then it is accepted; 65 bytes, or 64 characters of 2-byte UTF-8, is refused', () => {
    accepted(`${'a'.repeat(64)}@example.com`);
    refused(`${'a'.repeat(65)}@example.com`, /64 bytes/);
    refused(`${'\u00e9'.repeat(33)}@example.com`, /64 bytes/);
  });

  it('when a domain label is 63 bytes, then it is accepted; 64 is refused (in the ASCII form for IDN)', () => {
    accepted(`a@${'d'.repeat(63)}.com`);
    refused(`a@${'d'.repeat(64)}.com`, /label/);
    // 30 'ü' encode to an A-label of more than 63 characters.
    refused(`a@${'\u00fc'.repeat(60)}.com`);
  });

  it('when the address is 254 bytes, then it is accepted; 255 is refused', () => {
    const domain = `${'d'.repeat(63)}.${'e'.repeat(63)}.${'f'.repeat(63)}.com`;
    const at254 = `${'l'.repeat(254 - 1 - domain.length)}@${domain}`;
    expect(Buffer.byteLength(at254)).to.equal(254);
    accepted(at254);
    refused(`l${at254}`, /254 bytes/);
  });
});

describe('isPlainAddress (the quick yes of emailAddressProblem)', () => {
  const piece = fc.oneof(
    fc.string({ unit: fc.constantFrom(...'aZ09-._+!=@"[]'), maxLength: 70 }),
    fc.constantFrom('xn--p1ai', 'XN--zz', '123', 'example', 'com', '', '-a', 'a-', 'l'.repeat(63), 'l'.repeat(64), '\u00e9', ' '),
  );
  const address = fc.oneof(
    fc.tuple(piece, fc.array(piece, { minLength: 1, maxLength: 4 })).map(([local, labels]) => `${local}@${labels.join('.')}`),
    fc.emailAddress(),
    fc.string({ maxLength: 30 }),
  );

  it('when 20,000 generated addresses are checked, then each it accepts the full rules accept too', () => {
    let plain = 0;
    fc.assert(
      fc.property(address, (candidate) => {
        if (isPlainAddress(candidate)) {
          plain += 1;
          expect(fullAddressProblem(candidate), candidate).to.equal(undefined);
        }
      }),
      { numRuns: 20_000 },
    );
    expect(plain).to.be.above(1000);
  });

  it('when an address is at the length limits or ends in an all-numeric label, then the quick yes is not given', () => {
    expect(isPlainAddress(`${'l'.repeat(64)}@example.com`)).to.equal(true);
    expect(isPlainAddress(`${'l'.repeat(65)}@example.com`)).to.equal(false);
    expect(isPlainAddress(`a@${'l'.repeat(63)}.com`)).to.equal(true);
    expect(isPlainAddress(`a@${'l'.repeat(64)}.com`)).to.equal(false);
    expect(isPlainAddress(`a@${'l.'.repeat(125)}com`)).to.equal(false);
    expect(isPlainAddress('a@example.123')).to.equal(false);
    expect(isPlainAddress('a@123.example')).to.equal(true);
  });
});

// An event is kept aside when its email is not the address of the recipient holding its MessageID.
// Mailjet (or the mail system behind it) may write that address in another case or Unicode form: the
// event is then still the holder's, or a delivered message would be left unapplied.
describe("isHoldersAddress (the address check of an event's email)", () => {
  it('when the address differs in case (ß and SS, a final sigma, the dotted İ and dotless ı), Unicode form (NFKC, full-width, IDN) or a final dot, then it is the holder’s', () => {
    for (const [holder, event] of [
      ['josé@bücher.example', 'JOSÉ@xn--bcher-kva.example'],
      ['josé@bücher.example', 'jose\u0301@BÜCHER.example'],
      ['JOSÉ@XN--BCHER-KVA.EXAMPLE', 'josé@bücher.example'],
      ['İnci@istanbul.example', 'inci@istanbul.example'],
      ['ınci@example.com', 'INCI@example.com'],
      ['straße@example.com', 'STRASSE@example.com'],
      ['ΟΔΟΣ@ελλάδα.gr', 'οδοσ@xn--hxakic4aa.gr'],
      ['a@example.com', 'a＠ｅｘａｍｐｌｅ.com'],
      ['a@b.example', 'A@B。EXAMPLE'],
      ['a@example.com', 'A@EXAMPLE.COM.'],
      ['ǆ@example.com', 'Ǆ@example.com'],
      ['ffi@example.com', 'ﬃ@example.com'],
      ['раураl@раураl.com', 'РАУРАL@xn--l-7sba6dbr.com'],
      ['x@STRAẞE.example', 'x@strasse.example'],
      ['x@ΣΑΣ.gr', 'x@σασ.gr'],
      ['οδος@example.gr', 'ΟΔΟΣ@example.gr'],
    ]) {
      expect(isHoldersAddress(holder!, event!), `${holder} / ${event}`).to.equal(true);
    }
    expect(isHoldersAddress('a@example.com', null)).to.equal(true);
  });

  it('when the address is another mailbox (another letter, script or domain), then it is not the holder’s', () => {
    for (const [holder, event] of [
      ['holder@example.com', 'other@example.com'],
      ['josé@bücher.example', 'jose@bücher.example'],
      ['a@bücher.example', 'a@bucher.example'],
      ['paypal@example.com', 'раураl@example.com'],
      ['a@example.com', 'a@example.co'],
      ['a@example.com', 'a＠example.co'],
      // UTS #46 keeps ß and ς in a domain (IDNA2008 made them letters of their own), and maps İ to i
      // with a dot above: each is another domain than ss, σ or a plain i.
      ['x@faß.example', 'x@fass.example'],
      ['x@FASS.example', 'x@faß.example'],
      ['x@σας.gr', 'x@σασ.gr'],
      ['x@STRAẞE.example', 'x@straße.example'],
      ['inci@İstanbul.example', 'inci@istanbul.example'],
    ]) {
      expect(isHoldersAddress(holder!, event!), `${holder} / ${event}`).to.equal(false);
    }
  });
});

// One address, for suppressions and the dashboard's search (address_key() in the database, held to
// this by test/http/suppression-domains.test.ts): the local part lower-cased letter by letter, the
// domain as UTS #46 maps it.
describe('addressKey (the key of suppressions and of the search by recipient)', () => {
  it('when a local part holds a sigma or a sharp s, then each letter is lower-cased one for one: Σ is σ wherever it stands, ẞ is ß, and ς and ss stay apart', () => {
    expect(addressKey('ΟΔΟΣ@example.gr')).to.equal('οδοσ@example.gr');
    expect(addressKey('ΣΑΣ@example.gr')).to.equal('σασ@example.gr');
    expect(addressKey('σας@example.gr')).to.equal('σας@example.gr');
    expect(addressKey('STRAẞE@example.de')).to.equal('straße@example.de');
    expect(addressKey('STRASSE@example.de')).to.equal('strasse@example.de');
    expect(addressKey('İnci@example.com')).to.equal('inci@example.com');
  });

  it('when a domain holds a sigma or a sharp s, then it is the domain UTS #46 maps it to: ẞ is ss, Σ is σ, and ß and ς stay', () => {
    expect(addressKey('x@STRAẞE.de')).to.equal('x@strasse.de');
    expect(addressKey('x@straße.de')).to.equal('x@xn--strae-oqa.de');
    expect(addressKey('x@ΣΑΣ.gr')).to.equal(addressKey('x@σασ.gr'));
    expect(addressKey('x@σας.gr')).to.not.equal(addressKey('x@σασ.gr'));
  });
});
