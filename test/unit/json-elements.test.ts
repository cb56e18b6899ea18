import { expect } from 'chai';
import fc from 'fast-check';

import { type JsonElement, splitJsonBody } from '../../src/domain/json-elements.js';
import { storableText, unstorableCharacter } from '../../src/domain/storable-text.js';

const UNLIMITED = { maxDepth: Number.MAX_SAFE_INTEGER, maxLength: Number.MAX_SAFE_INTEGER, maxElements: Number.MAX_SAFE_INTEGER };

function elements(text: string, limits = UNLIMITED): JsonElement[] {
  const split = splitJsonBody(text, limits);
  if (!split.ok) {
    throw new Error(`expected JSON, got: ${split.reason}`);
  }
  return split.elements;
}

function valueOf(element: JsonElement): unknown {
  if (!('value' in element)) {
    throw new Error(`element ${element.index} was not parsed`);
  }
  return element.value;
}

/** What splitJsonBody makes of a value: integers written with more than 15 digits become strings. */
function lossless(value: unknown): unknown {
  if (typeof value === 'number') {
    // As written in JSON: -0 is 0, and long integers are strings.
    const written = JSON.stringify(value);
    return /^-?\d{16,}$/.test(written) ? written : (JSON.parse(written) as number);
  }
  if (Array.isArray(value)) {
    return value.map(lossless);
  }
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, lossless(inner)]));
  }
  return value;
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

describe('splitJsonBody', () => {
  it('when the body is an array, then each element comes with its exact source text and its value', () => {
    const text = ' [ {"a":"],\\"[{"} ,\n[1,[2]], "x\\\\" ,null,-1.5e3 ] ';

    expect(elements(text).map((e) => [e.index, e.source, valueOf(e)])).to.deep.equal([
      [0, '{"a":"],\\"[{"}', { a: '],"[{' }],
      [1, '[1,[2]]', [1, [2]]],
      [2, '"x\\\\"', 'x\\'],
      [3, 'null', null],
      [4, '-1.5e3', -1500],
    ]);
  });

  it('when the body is one value (not an array), then it is the only element', () => {
    expect(elements('{"event":"open"}').map(valueOf)).to.deep.equal([{ event: 'open' }]);
    expect(elements(' "sent" ').map(valueOf)).to.deep.equal(['sent']);
    expect(elements('[]')).to.deep.equal([]);
  });

  it('when integers have more than 15 digits, then they come back as their exact digits, wherever they are', () => {
    const [element] = elements('{"MessageID":576460765503091475,"n":[-9223372036854775808,123456789012345,1.2345678901234567,1e300]}');

    expect(valueOf(element!)).to.deep.equal({ MessageID: '576460765503091475', n: ['-9223372036854775808', 123456789012345, 1.2345678901234567, 1e300] });
    expect(element!.source).to.contain('576460765503091475');
  });

  it('when a body is too long to be parsed in one piece, then its elements are parsed one by one into the same values and sources', () => {
    const element = (i: number) => `{"MessageID":${576460765503091475n + BigInt(i)},"n":[${i},1.5,"x\\\\"]}`;
    const long = Array.from({ length: 20_000 }, (_, i) => element(i));
    const text = `[${long.join(',')}]`;
    expect(text.length).to.be.greaterThan(1024 * 1024);

    const split = elements(text);

    expect(split.map((e) => [e.index, e.source, valueOf(e)])).to.deep.equal(
      long.map((source, i) => [i, source, { MessageID: String(576460765503091475n + BigInt(i)), n: [i, 1.5, 'x\\'] }]),
    );
    expect(elements(`[${long.slice(0, 3).join(',')}]`)).to.deep.equal(split.slice(0, 3));
  });

  it('when a body is parsed in runs of elements, then elements across runs, and one longer than a run, come back as each alone', () => {
    const element = (i: number) =>
      i === 700
        ? `{"Payload":"${'p'.repeat(100_000)}","MessageID":${576460765503091475n + BigInt(i)}}`
        : `{"MessageID":${576460765503091475n + BigInt(i)},"n":[${i},1.5,"x\\\\"],"dup":1,"dup":${i}}`;
    const items = Array.from({ length: 3_000 }, (_, i) => element(i));
    const text = `\r\n[ ${items.join(' ,\n\t')} ]\n`;
    expect(text.length).to.be.within(300 * 1024, 1024 * 1024);

    expect(elements(text).map((e) => [e.index, e.source, valueOf(e)])).to.deep.equal(items.map((source, i) => [i, source, valueOf(elements(source)[0]!)]));
    const broken = splitJsonBody(text.replace('"dup":2999', '"dup":02999'), UNLIMITED);
    expect(broken).to.deep.equal({ ok: false, tooMany: false, reason: 'element 2999 is not valid JSON' });
  });

  it('when an element is nested deeper or is longer than the limits, then it is handed back unparsed, and the others parsed', () => {
    const deep = `{"a":${'['.repeat(5000)}${']'.repeat(5000)}}`;
    const large = `{"a":"${'x'.repeat(20_000)}"}`;
    const result = elements(`[{"ok":1},${deep},${large}]`, { ...UNLIMITED, maxDepth: 32, maxLength: 15_000 });

    expect(valueOf(result[0]!)).to.deep.equal({ ok: 1 });
    expect(result[1]).to.deep.equal({ index: 1, source: deep, tooDeep: true, tooLarge: false });
    expect(result[2]).to.deep.equal({ index: 2, source: large, tooDeep: false, tooLarge: true });
  });

  it('when a body is nested a million levels deep, then it is split without overflowing the stack', () => {
    const text = `[${'['.repeat(1_000_000)}${']'.repeat(1_000_000)},{"after":true}]`;

    const result = elements(text, { ...UNLIMITED, maxDepth: 32 });

    expect(result).to.have.length(2);
    expect(result[0]).to.include({ tooDeep: true });
    expect(valueOf(result[1]!)).to.deep.equal({ after: true });
  });

  it('when a body holds more elements than the limit, then ok is false (too many) before the rest is read', () => {
    expect(splitJsonBody('[1,2,3]', { ...UNLIMITED, maxElements: 3 }).ok).to.equal(true);
    expect(splitJsonBody('[1,2,3,4,', { ...UNLIMITED, maxElements: 3 })).to.deep.include({ ok: false, tooMany: true });
    expect(splitJsonBody('[1,2,3', { ...UNLIMITED, maxElements: 3 })).to.deep.include({ ok: false, tooMany: false });
  });

  it('when the body is not JSON, then ok is false with a reason', () => {
    for (const text of [
      '',
      '   ',
      '[',
      '[{"a":1}',
      '[{"a":1},]',
      '[,]',
      '{"a":1} {"b":2}',
      '[{"a":1}]]',
      '{"a":"x',
      '{"a":1]',
      'nope',
      '[01234567890123456789]',
      '[1 2]',
      '{"a" 1}',
    ]) {
      const split = splitJsonBody(text, UNLIMITED);
      expect(split.ok, JSON.stringify(text)).to.equal(false);
      expect(split, JSON.stringify(text)).to.have.property('reason').that.is.a('string').and.not.equal('');
    }
  });

  it('when any JSON value is written as an array body, then the elements are its items, sources included', () => {
    fc.assert(
      fc.property(fc.array(fc.jsonValue()), fc.constantFrom(undefined, 2), (items, indent) => {
        const result = elements(JSON.stringify(items, null, indent));
        expect(result.map(valueOf)).to.deep.equal(items.map(lossless));
        if (indent === undefined) {
          expect(result.map((e) => e.source)).to.deep.equal(items.map((item) => JSON.stringify(item)));
        }
      }),
      { numRuns: 500 },
    );
  });

  it('when strings hold runs of backslashes and quotes, then each string ends at its real closing quote', () => {
    const tricky = fc.string({ unit: fc.constantFrom('\\', '"', 'a', ']', ',', '{') });
    fc.assert(
      fc.property(fc.array(fc.oneof(tricky, fc.dictionary(tricky, tricky))), (items) => {
        const result = elements(JSON.stringify(items));
        expect(result.map(valueOf)).to.deep.equal(items);
        expect(result.map((e) => e.source)).to.deep.equal(items.map((item) => JSON.stringify(item)));
      }),
      { numRuns: 1000 },
    );
    expect(splitJsonBody('["a\\\\"]', UNLIMITED).ok).to.equal(true);
    expect(splitJsonBody('["a\\\\\\"]', UNLIMITED).ok).to.equal(false);
    expect(splitJsonBody('["\\', UNLIMITED).ok).to.equal(false);
  });

  it('when a body is JSON text with one character changed, then it is accepted exactly when JSON.parse accepts it', () => {
    const mutated = fc
      .tuple(fc.jsonValue(), fc.nat(), fc.constantFrom('', '[', ']', '{', '}', '"', '\\', ',', ':', '0', '-', 'e', ' ', 'x'))
      .map(([value, at, character]) => {
        const text = JSON.stringify([value]);
        const position = at % (text.length + 1);
        return text.slice(0, position) + character + text.slice(position + 1);
      });
    fc.assert(
      fc.property(fc.oneof(mutated, fc.string()), (text) => {
        expect(splitJsonBody(text, UNLIMITED).ok, text).to.equal(isJson(text));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('storableText', () => {
  it('when text holds NUL or unpaired surrogates, then they are written as escapes and pairs are kept', () => {
    expect(storableText('a\u0000b\ud800c\udfffd\ud83d\ude00', 100)).to.deep.equal({ text: 'a\\u0000b\\ud800c\\udfffd\ud83d\ude00', truncated: false });
    expect(unstorableCharacter('a\u0000')).to.equal('a NUL character');
    expect(unstorableCharacter('\udc00x')).to.equal('an unpaired surrogate');
    expect(unstorableCharacter('ok \ud83d\ude00')).to.equal(undefined);
  });

  it('when text is longer than the limit, then it is cut without splitting a surrogate pair', () => {
    expect(storableText('abcdef', 4)).to.deep.equal({ text: 'abcd', truncated: true });
    expect(storableText('abc\ud83d\ude00', 4)).to.deep.equal({ text: 'abc', truncated: true });
  });
});
