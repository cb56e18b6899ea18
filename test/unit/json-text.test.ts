import { expect } from 'chai';

import { findInexactNumber, findOversizedJson, findUnstorableText, isStorableWithin, unstorableTextProblem } from '../../src/domain/json-text.js';
import { isBase64 } from '../../src/http/base64.js';

describe('unstorableTextProblem', () => {
  it('when text holds a NUL, then it says so', () => {
    expect(unstorableTextProblem('a\u0000b')).to.match(/NUL/);
  });

  it('when text holds an unpaired surrogate (high or low, alone, reversed, at either end), then it says so', () => {
    for (const text of ['\ud800', '\udc00', 'a\ud83d', '\ude00a', '\ude00\ud83d', 'ok \ud83d\ude00 then \ud83d', `${'x'.repeat(1_000_000)}\udfff`]) {
      expect(unstorableTextProblem(text), JSON.stringify(text.slice(-10))).to.match(/unpaired UTF-16 surrogate/);
    }
  });

  it('when text is valid Unicode (pairs, astral planes, U+FFFF, BOM, controls other than NUL), then it is storable', () => {
    for (const text of ['', 'plain', '\ud83d\ude00\ud83d\ude00', '\u{10ffff}', '\uffff\ufffe\ufeff', 'tab\tand\u0001', 'caf\u00e9']) {
      expect(unstorableTextProblem(text), JSON.stringify(text)).to.equal(undefined);
    }
  });
});

describe('findUnstorableText', () => {
  it('when strings and keys at any depth hold NUL or lone surrogates, then each is reported with its path, in document order', () => {
    const value = { a: 'ok', b: ['x', '\u0000', { 'k\ud800': 1, c: 'y\udc00' }], d: { e: { f: '\u0000' } } };

    expect(findUnstorableText(value).map((problem) => problem.path)).to.deep.equal(['b.1', 'b.2.k\ud800', 'b.2.c', 'd.e.f']);
    expect(findUnstorableText(value)[1]!.message).to.match(/^the field name contains/);
  });

  it('when a key is __proto__ (which an object copy would turn into the prototype, dropping it), then it is reported', () => {
    const value = JSON.parse('{"metadata":{"__proto__":{"x":1},"a":2},"headers":{"__proto__":"v"}}');

    expect(findUnstorableText(value).map((problem) => problem.path)).to.deep.equal(['metadata.__proto__', 'headers.__proto__']);
  });

  it('when the value is a bare string, number, null or empty container, then only a bad bare string is reported (path "")', () => {
    expect(findUnstorableText('\u0000')).to.deep.equal([{ path: '', message: 'contains a NUL character (U+0000), which cannot be stored' }]);
    for (const value of [1, null, true, [], {}, 'fine']) {
      expect(findUnstorableText(value)).to.deep.equal([]);
    }
  });

  it('when the value nests a million levels deep or holds a million strings, then the walk ends without overflowing', () => {
    const deep = JSON.parse(`${'['.repeat(1_000_000)}"\\u0000"${']'.repeat(1_000_000)}`);
    expect(findUnstorableText(deep)).to.deep.equal([]);
    const wide = JSON.parse(`[${Array.from({ length: 1_000_000 }, () => '"\\u0000"').join(',')}]`);
    expect(findUnstorableText(wide)).to.have.length(20);
  });

  it('when a bad string sits 60 levels deep, then it is found', () => {
    expect(findUnstorableText(JSON.parse(`${'['.repeat(60)}"\\u0000"${']'.repeat(60)}`)).map((problem) => problem.path)).to.deep.equal([
      Array(60).fill('0').join('.'),
    ]);
  });
});

describe('findOversizedJson', () => {
  const deep = (value: unknown, depth: number) => findOversizedJson(value, { depth, keys: 10, items: 10 });

  it('when containers nest up to the limit, then nothing; one level more, then where (the value itself is level 1)', () => {
    expect(deep({ a: { b: [1] } }, 3)).to.equal(undefined);
    expect(deep({ a: { b: [[]] } }, 3)).to.deep.equal({ path: ['a', 'b', 0], over: 'depth' });
    expect(deep({ a: 1, b: [1, 2], c: { d: 'x' } }, 2)).to.equal(undefined);
    expect(deep('text', 0)).to.equal(undefined);
    expect(deep({}, 0)).to.deep.equal({ path: [], over: 'depth' });
  });

  it('when a value nests a million levels deep, then it is found without overflowing', () => {
    expect(deep(JSON.parse(`${'{"a":'.repeat(1_000_000)}1${'}'.repeat(1_000_000)}`), 32)?.over).to.equal('depth');
  });

  it('when an object has more fields or a list more items than allowed, at any depth, then the first such, with its count', () => {
    const fields = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]));
    const bounds = { depth: 8, keys: 3, items: 2 };
    expect(findOversizedJson({ a: fields(3), b: [1, 2] }, bounds)).to.equal(undefined);
    expect(findOversizedJson(fields(4), bounds)).to.deep.equal({ path: [], over: 'fields', count: 4 });
    expect(findOversizedJson({ a: { b: [1, fields(300_000)] } }, bounds)).to.deep.equal({ path: ['a', 'b', 1], over: 'fields', count: 300_000 });
    expect(findOversizedJson({ a: [[1, 2, 3]] }, bounds)).to.deep.equal({ path: ['a', 0], over: 'items', count: 3 });
  });
});

describe('isStorableWithin', () => {
  it('when a value holds unstorable text or an object with more fields than allowed, at any depth, then false; else true', () => {
    expect(isStorableWithin({ a: ['x', { b: 'y' }], c: { d: 1, e: 2 } }, 2)).to.equal(true);
    expect(isStorableWithin({ a: ['x', { b: 'y\u0000' }] }, 2)).to.equal(false);
    expect(isStorableWithin(JSON.parse('{"a":{"__proto__":1}}'), 2)).to.equal(false);
    expect(isStorableWithin({ a: [{ b: 1, c: 2, d: 3 }] }, 2)).to.equal(false);
    // Lists are not counted: their fields' schemas check a list's length before its items.
    expect(isStorableWithin({ a: [1, 2, 3, 4, 5] }, 2)).to.equal(true);
  });
});

describe('isBase64', () => {
  it('when text is padded standard base64 (or empty), then true', () => {
    for (const text of ['', 'QQ==', 'QUI=', 'QUJD', 'a+/9', Buffer.from('any bytes \u00ff').toString('base64')]) {
      expect(isBase64(text), text).to.equal(true);
    }
  });

  it('when the length, alphabet or padding is wrong, then false', () => {
    for (const text of ['Q', 'QUI', 'QUJD=', 'Q===', '=QUJ', 'QU=D', 'QU==QUJD', 'a-_9', 'QUJD\n', 'QU JD', 'QUJ\u00e9']) {
      expect(isBase64(text), JSON.stringify(text)).to.equal(false);
    }
  });

  it('when 20 MB of base64 are checked, then it answers without overflowing the stack', () => {
    const text = Buffer.alloc(15 * 1024 * 1024, 7).toString('base64');
    expect(isBase64(text)).to.equal(true);
    expect(isBase64(`${text.slice(0, -4)}*AAA`)).to.equal(false);
  });
});

describe('findInexactNumber', () => {
  it('when a value holds Infinity (1e400 as read) or a whole number beyond 2^53, then the first is reported with its path', () => {
    expect(findInexactNumber(JSON.parse('{"a":[1,{"b":1e400}],"c":-1e400}'), 32)).to.deep.include({ path: ['a', 1, 'b'] });
    expect(findInexactNumber({ id: 2 ** 53 }, 32)?.message).to.match(/beyond ±9007199254740991/);
    expect(findInexactNumber(-(2 ** 60), 32)?.path).to.deep.equal([]);
  });

  it('when every number is a safe whole number or a finite fraction, then nothing is reported', () => {
    expect(findInexactNumber({ a: [Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 0.1, -0, 1.5e-300, 12345.678], s: '1e400' }, 32)).to.equal(undefined);
  });
});
