// nock doubles of Mailjet's Send API. Answers are built as text so that 64-bit MessageIDs go out as
// raw JSON integers, the way Mailjet writes them (a JS number would already have lost digits).
import nock from 'nock';

import { MAILJET_TEST_KEY, MAILJET_TEST_ORIGIN, MAILJET_TEST_SECRET } from './service.js';

/** Above 2^53: JavaScript numbers cannot hold these exactly. */
export const BIG_ID_BASE = 576460765503091475n;

export interface SendCall {
  Messages: Array<{
    CustomID: string;
    To: Array<{ Email: string }>;
    Cc?: Array<{ Email: string }>;
    Bcc?: Array<{ Email: string }>;
    [field: string]: unknown;
  }>;
}

type Entry = { kind: 'success' } | { kind: 'error'; statusCode?: number; code?: string; message?: string };

let nextId = BIG_ID_BASE;

/** A Send API body: one entry per message, success entries with a fresh big MessageID per recipient. */
export function sendResponseText(
  call: SendCall,
  entryFor: (message: SendCall['Messages'][number], index: number) => Entry = () => ({ kind: 'success' }),
): {
  text: string;
  ids: string[];
  anyError: boolean;
} {
  const ids: string[] = [];
  let anyError = false;
  const entries = call.Messages.map((message, index) => {
    const entry = entryFor(message, index);
    if (entry.kind === 'error') {
      anyError = true;
      return `{"Status":"error","Errors":[{"ErrorIdentifier":"e-${index}","ErrorCode":"${entry.code ?? 'mj-0013'}","StatusCode":${entry.statusCode ?? 400},"ErrorMessage":"${entry.message ?? 'Email "x" is not a valid email address.'}","ErrorRelatedTo":["To[0].Email"]}]}`;
    }
    const list = (field: 'To' | 'Cc' | 'Bcc') =>
      (message[field] ?? [])
        .map((to) => {
          nextId += 1n;
          ids.push(nextId.toString());
          return `{"Email":${JSON.stringify(to.Email)},"MessageUUID":"00000000-0000-4000-8000-${nextId.toString().slice(-12)}","MessageID":${nextId.toString()},"MessageHref":"https://api.mailjet.com/v3/REST/message/${nextId.toString()}"}`;
        })
        .join(',');
    return `{"Status":"success","CustomID":${JSON.stringify(message.CustomID)},"To":[${list('To')}],"Cc":[${list('Cc')}],"Bcc":[${list('Bcc')}]}`;
  });
  return { text: `{"Messages":[${entries.join(',')}]}`, ids, anyError };
}

export interface MailjetDouble {
  calls: SendCall[];
  /** MessageIDs handed out, in order. */
  ids: string[];
  scope: nock.Scope;
}

/**
 * Intercepts every POST /v3.1/send (with the test credentials) and answers success for each message,
 * or what `entryFor` says; a call with an error entry gets Mailjet's mixed 400.
 */
export function mockMailjetSend(entryFor?: (message: SendCall['Messages'][number], index: number) => Entry): MailjetDouble {
  const double: MailjetDouble = { calls: [], ids: [], scope: nock(MAILJET_TEST_ORIGIN) };
  double.scope = nock(MAILJET_TEST_ORIGIN)
    .persist()
    .post('/v3.1/send')
    .basicAuth({ user: MAILJET_TEST_KEY, pass: MAILJET_TEST_SECRET })
    .reply((_uri: string, body: nock.Body) => {
      const call = body as SendCall;
      double.calls.push(call);
      const { text, ids, anyError } = sendResponseText(call, entryFor);
      double.ids.push(...ids);
      return [anyError ? 400 : 200, text, { 'content-type': 'application/json' }];
    });
  return double;
}

export function isolateNetwork(): void {
  nock.disableNetConnect();
  nock.enableNetConnect('127.0.0.1');
}

export function restoreNetwork(): void {
  nock.cleanAll();
  nock.enableNetConnect();
}
