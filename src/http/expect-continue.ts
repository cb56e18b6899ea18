// `Expect: 100-continue`: a client that sends it waits for `100 Continue` before its body. Node
// writes it as soon as the headers are in, so a request refused before its body is read (wrong
// credentials, the rate limit, no room in EVENTS_BODY_BUDGET or QUEUE_BODY_BUDGET, a stated length over the limit) still
// made the client send the whole body, only to have it discarded. It is written once the body is
// first read instead: a refusal before that goes out in its place, and Node then closes the
// connection (the body was never asked for).
//
// A request whose framing says it has no body (a GET, Content-Length: 0) is owed no 100 Continue
// (RFC 9110 § 10.1.1 lets the server omit it): nothing can follow its head, so Node's closing of
// the connection after an answer sent without one would only cost its client the kept-alive
// connection.
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Node's server keeps the connection only if the 100 Continue went out or none was expected. */
type ExpectingResponse = ServerResponse & { _expect_continue?: boolean };

/** Whether `req`'s framing says a body follows its head (RFC 9112 § 6.3). */
export function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && !/^0+$/.test(length));
}

/** Holds back `req`'s `100 Continue` until its body is first read (a reader resumes the stream). */
export function continueOnRead(req: IncomingMessage, res: ServerResponse): void {
  if (!hasBody(req)) {
    (res as ExpectingResponse)._expect_continue = false;
    return;
  }
  req.once('resume', () => {
    // Node reads off the body of a request answered without reading it: no 100 Continue then.
    if (!res.headersSent && !res.writableEnded) {
      res.writeContinue();
    }
  });
}
