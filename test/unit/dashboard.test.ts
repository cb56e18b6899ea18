// The dashboard's pure parts: session tokens, HTML escaping, the throughput minutes, search guessing.
import { expect } from 'chai';

import { minuteStart, searchField, THROUGHPUT_MINUTES, throughputMinutes } from '../../src/domain/dashboard.js';
import { createSession, csrfToken, csrfTokenMatches, SESSION_TTL_MS, sessionKey, verifySession } from '../../src/domain/dashboard-session.js';
import { html, jsonScript } from '../../src/http/dashboard/html.js';

describe('dashboard sessions', () => {
  const key = sessionKey('admin-key-0123456789');
  const now = new Date('2030-01-01T00:00:00Z');

  it('a token is valid until its expiry, and not a millisecond after', () => {
    const session = createSession(key, now);
    expect(session.expiresAt.getTime()).to.equal(now.getTime() + SESSION_TTL_MS);
    expect(verifySession(key, session.token, new Date(session.expiresAt.getTime() - 1))?.token).to.equal(session.token);
    expect(verifySession(key, session.token, session.expiresAt)).to.equal(undefined);
  });

  it('a token signed with another admin key, or changed in any character, is refused', () => {
    const session = createSession(key, now);
    expect(verifySession(sessionKey('another-admin-key'), session.token, now)).to.equal(undefined);
    for (let i = 0; i < session.token.length; i++) {
      const c = session.token[i]!;
      const changed = `${session.token.slice(0, i)}${c === 'A' ? 'B' : c === '.' ? '-' : 'A'}${session.token.slice(i + 1)}`;
      expect(verifySession(key, changed, now), `character ${i}`).to.equal(undefined);
    }
  });

  it('the CSRF token is bound to its session', () => {
    const one = createSession(key, now);
    const two = createSession(key, now);
    expect(csrfTokenMatches(key, one, csrfToken(key, one))).to.equal(true);
    expect(csrfTokenMatches(key, one, csrfToken(key, two))).to.equal(false);
    expect(csrfTokenMatches(key, one, '')).to.equal(false);
  });
});

describe('dashboard HTML', () => {
  it('escapes every value, in text and in attributes, but not the fragments html made', () => {
    const value = `<script>x</script>"'&`;
    expect(html`<p title="${value}">${value}${html`<b>ok</b>`}</p>`.text).to.equal(
      '<p title="&lt;script&gt;x&lt;/script&gt;&quot;&#39;&amp;">&lt;script&gt;x&lt;/script&gt;&quot;&#39;&amp;<b>ok</b></p>',
    );
    expect(html`${[value, null, undefined, false, 0]}`.text).to.equal('&lt;script&gt;x&lt;/script&gt;&quot;&#39;&amp;0');
  });

  it('JSON in a script element cannot close it', () => {
    const text = jsonScript('data', { a: '</script><script>alert(1)</script>\u2028' }).text;
    expect(text.match(/<\/script>/g)).to.have.length(1);
    expect(JSON.parse(text.slice(text.indexOf('>') + 1, text.lastIndexOf('</script>')))).to.deep.equal({ a: '</script><script>alert(1)</script>\u2028' });
  });
});

describe('dashboard throughput and search', () => {
  it('has one entry per minute of the last hour, the empty minutes at zero', () => {
    const now = new Date('2030-01-01T12:34:56Z');
    const minutes = throughputMinutes(now, [
      { minute: new Date('2030-01-01T12:34:00Z'), enqueued: 7, accepted: 0 },
      { minute: new Date('2030-01-01T11:35:00Z'), enqueued: 0, accepted: 3 },
    ]);
    expect(minutes).to.have.length(THROUGHPUT_MINUTES);
    expect(minutes[0]).to.deep.equal({ minute: new Date('2030-01-01T11:35:00Z'), enqueued: 0, accepted: 3 });
    expect(minutes.at(-1)).to.deep.equal({ minute: new Date('2030-01-01T12:34:00Z'), enqueued: 7, accepted: 0 });
  });

  it("puts a time in the minute it falls in, a minute's first millisecond included", () => {
    expect(minuteStart(Date.parse('2030-01-01T12:34:59.999Z'))).to.equal(Date.parse('2030-01-01T12:34:00Z'));
    expect(minuteStart(Date.parse('2030-01-01T12:35:00Z'))).to.equal(Date.parse('2030-01-01T12:35:00Z'));
  });

  it("adds up the counts of one minute (the table's and this process's not yet written), and leaves out minutes outside the hour", () => {
    const now = new Date('2030-01-01T12:34:56Z');
    const minutes = throughputMinutes(now, [
      { minute: new Date('2030-01-01T12:34:00Z'), enqueued: 7, accepted: 2 },
      { minute: new Date('2030-01-01T12:34:00Z'), enqueued: 1, accepted: 1 },
      { minute: new Date('2030-01-01T11:34:00Z'), enqueued: 100, accepted: 100 },
      { minute: new Date('2030-01-01T12:35:00Z'), enqueued: 100, accepted: 100 },
    ]);
    expect(minutes.at(-1)).to.deep.equal({ minute: new Date('2030-01-01T12:34:00Z'), enqueued: 8, accepted: 3 });
    expect(minutes.reduce((sum, minute) => sum + minute.enqueued + minute.accepted, 0)).to.equal(11);
  });

  it('guesses what a search is for', () => {
    expect(searchField('ada@example.org')).to.equal('recipient');
    expect(searchField('12345')).to.equal('job_id');
    expect(searchField('order-12')).to.equal('custom_id');
    expect(searchField('0123')).to.equal('custom_id');
    expect(searchField('9223372036854775807')).to.equal('job_id');
    // Past the bigint maximum: no job's id (a MessageID can be up to 2^64-1).
    expect(searchField('9223372036854775808')).to.equal('custom_id');
  });
});
