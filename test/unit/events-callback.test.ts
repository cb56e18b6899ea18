import { expect } from 'chai';

import { eventsCallbackUrl, planCallbacks, sameEndpoint } from '../../src/domain/events-callback.js';

describe('Mailjet event callback URL and registration plan', () => {
  const credentials = { username: 'mailjet', password: 'p@ss:w/rd' };

  it('when PUBLIC_URL has a path, with or without a trailing slash, a query or credentials, then /events goes under that path with our credentials', () => {
    expect(eventsCallbackUrl('https://host.example.com', credentials).toString()).to.equal('https://mailjet:p%40ss%3Aw%2Frd@host.example.com/events');
    expect(eventsCallbackUrl('https://host.example.com/jetpost/', credentials).pathname).to.equal('/jetpost/events');
    expect(eventsCallbackUrl('https://host.example.com/jetpost', credentials).pathname).to.equal('/jetpost/events');
    const odd = eventsCallbackUrl('http://old:creds@host.example.com:8080/a/b/?x=1#top', credentials);
    expect(odd.toString()).to.equal('http://mailjet:p%40ss%3Aw%2Frd@host.example.com:8080/a/b/events');
    // What Mailjet sends back decodes to the configured credentials.
    expect(decodeURIComponent(odd.password)).to.equal('p@ss:w/rd');
  });

  it('when a registration points at our endpoint with other credentials, then it is ours; another host, port, path or scheme is not', () => {
    const ours = eventsCallbackUrl('https://host.example.com/jetpost/', credentials);
    expect(sameEndpoint('https://x:y@host.example.com/jetpost/events', ours)).to.equal(true);
    for (const other of [
      'https://host.example.com/events',
      'http://host.example.com/jetpost/events',
      'https://host.example.com:444/jetpost/events',
      'https://crm.example.com/jetpost/events',
      'not a url',
    ]) {
      expect(sameEndpoint(other, ours), other).to.equal(false);
    }
  });

  it('when planning, then existing rows are updated, missing ones created, and rows pointing elsewhere listed as foreign', () => {
    const primary = eventsCallbackUrl('https://host.example.com/', credentials);
    const backup = eventsCallbackUrl('https://standby.example.com/', credentials);
    const plan = planCallbacks(
      [
        { id: 1, eventType: 'sent', url: 'https://a:b@host.example.com/events', isBackup: false },
        { id: 2, eventType: 'open', url: 'https://crm.example.com/hook', isBackup: false },
        { id: 3, eventType: 'open', url: 'https://a:b@standby.example.com/events', isBackup: true },
        { id: 4, eventType: 'click', url: 'https://elsewhere.example.com/hook', isBackup: true },
      ],
      ['sent', 'open', 'click'],
      primary,
      backup,
    );

    expect(plan.writes.map((w) => [w.eventType, w.isBackup, w.existingId, w.url.host])).to.deep.equal([
      ['sent', false, 1, 'host.example.com'],
      ['open', false, 2, 'host.example.com'],
      ['click', false, null, 'host.example.com'],
      ['sent', true, null, 'standby.example.com'],
      ['open', true, 3, 'standby.example.com'],
      ['click', true, 4, 'standby.example.com'],
    ]);
    expect(plan.foreign.map((row) => row.id)).to.deep.equal([2, 4]);
    // Without --backup, backup rows are not this run's business.
    expect(
      planCallbacks([{ id: 4, eventType: 'click', url: 'https://elsewhere.example.com/hook', isBackup: true }], ['click'], primary, null).foreign,
    ).to.deep.equal([]);
  });
});
