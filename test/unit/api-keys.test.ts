import { expect } from 'chai';

import { apiKeyMatches, apiKeyPrefix, generateApiKey, hashApiKey } from '../../src/services/api-keys.js';

/** The documented shape: `jp_<12 lower-case alphanumerics>_<43 base64url characters (256 bits)>`. */
const KEY_SHAPE = /^jp_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$/;

/** `key` with the character at `index` replaced by a different one of the same alphabet. */
function changeOneCharacter(key: string, index: number): string {
  const replacement = key[index] === 'a' ? 'b' : 'a';
  return `${key.slice(0, index)}${replacement}${key.slice(index + 1)}`;
}

describe('generateApiKey', () => {
  it('when keys are generated, then each matches the documented shape and carries its prefix', () => {
    for (let round = 0; round < 200; round += 1) {
      const { key, prefix } = generateApiKey();
      expect(key).to.match(KEY_SHAPE);
      expect(prefix).to.match(/^[a-z0-9]{12}$/);
      expect(key.startsWith(`jp_${prefix}_`)).to.equal(true);
    }
  });

  it('when keys are generated, then they differ each time (keys, prefixes and hashes)', () => {
    const generated = Array.from({ length: 200 }, () => generateApiKey());

    expect(new Set(generated.map((g) => g.key)).size).to.equal(200);
    expect(new Set(generated.map((g) => g.prefix)).size).to.equal(200);
    expect(new Set(generated.map((g) => g.hash.toString('hex'))).size).to.equal(200);
  });

  it('when a key is generated, then its hash is the 32-byte SHA-256 of the key', () => {
    const { key, hash } = generateApiKey();

    expect(hash).to.be.instanceOf(Buffer);
    expect(hash.length).to.equal(32);
    expect(hash.equals(hashApiKey(key))).to.equal(true);
  });
});

describe('apiKeyPrefix', () => {
  it('when the key is well-formed, then its prefix is found', () => {
    const { key, prefix } = generateApiKey();

    expect(apiKeyPrefix(key)).to.equal(prefix);
    expect(apiKeyPrefix(`jp_abcdefghijkl_${'x'.repeat(43)}`)).to.equal('abcdefghijkl');
  });

  it('when the key is malformed, then there is no prefix', () => {
    const secret = 'x'.repeat(43);
    for (const key of [
      '',
      'jp_',
      `jp_abcdefghijk_${secret}`, // prefix one short
      `jp_abcdefghijklm_${secret}`, // prefix one long
      `jp_ABCDEFGHIJKL_${secret}`, // upper-case prefix
      `jp_abcdefghijkl_${secret.slice(1)}`, // secret one short
      `jp_abcdefghijkl_${secret}x`, // secret one long
      `jp_abcdefghijkl_${secret.slice(1)}!`, // outside base64url
      `xx_abcdefghijkl_${secret}`,
      ` jp_abcdefghijkl_${secret}`,
      `jp_abcdefghijkl_${secret}\n`,
      `Bearer jp_abcdefghijkl_${secret}`,
    ]) {
      expect(apiKeyPrefix(key), JSON.stringify(key)).to.equal(undefined);
    }
  });
});

describe('apiKeyMatches', () => {
  it('when the key is the one generated, then it matches its stored hash', () => {
    const { key, hash } = generateApiKey();

    expect(apiKeyMatches(key, hash)).to.equal(true);
  });

  it('when any single character of the key changes, then it does not match', () => {
    const { key, hash } = generateApiKey();

    for (let index = 0; index < key.length; index += 1) {
      expect(apiKeyMatches(changeOneCharacter(key, index), hash), `index ${index}`).to.equal(false);
    }
  });

  it('when another key, a truncated key or an empty key is given, then it does not match', () => {
    const { key, hash } = generateApiKey();

    expect(apiKeyMatches(generateApiKey().key, hash)).to.equal(false);
    expect(apiKeyMatches(key.slice(0, -1), hash)).to.equal(false);
    expect(apiKeyMatches('', hash)).to.equal(false);
  });

  it('when the stored hash is not 32 bytes, then nothing matches (and nothing throws)', () => {
    const { key, hash } = generateApiKey();

    expect(apiKeyMatches(key, hash.subarray(0, 16))).to.equal(false);
    expect(apiKeyMatches(key, Buffer.alloc(0))).to.equal(false);
  });
});
