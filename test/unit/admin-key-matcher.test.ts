import { expect } from 'chai';

import { adminKeyMatcher } from '../../src/http/auth.js';

describe('adminKeyMatcher', () => {
  const current = 'dGhpcyBpcyBhIHJhbmRvbSBrZXk-7Qx_Zp';
  const previous = 'b2xkIGtleQ-ü€-odd-length-31ch';

  it('when given the current key or the previous one, then it names which; anything else, of any length, is none of them', () => {
    const which = adminKeyMatcher([current, previous]);

    expect(which(current)).to.equal(0);
    expect(which(previous)).to.equal(1);
    for (const other of ['', ' ', current.slice(0, -1), `${current} `, `${previous}\n`, previous.normalize('NFD'), 'x'.repeat(10_000), current + previous]) {
      expect(which(other), JSON.stringify(other.slice(0, 40))).to.equal(-1);
    }
  });

  it('when there is no admin key, then nothing matches, the empty key included', () => {
    expect(adminKeyMatcher([])('')).to.equal(-1);
  });
});
