// A request written by hand over a socket of its own, for what fetch cannot send: a body that
// stops half-way, or comes a few bytes at a time. Each asks for `Connection: close`, so its answer
// is whole once the server has closed the connection.
import net from 'node:net';

export interface RawRequest {
  socket: net.Socket;
  /** The raw answer, once the server closed the connection. */
  answer: Promise<string>;
}

/**
 * Writes the request's head (`Host` and `Connection: close` added; its request line says `version`)
 * and `body`, the first part of its body (more may follow on `socket`).
 */
export function rawRequest(url: string, method: string, path: string, headers: Record<string, string>, body = '', version = 'HTTP/1.1'): RawRequest {
  const { port } = new URL(url);
  const socket = net.connect(Number(port), '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  const answer = new Promise<string>((resolve) => socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8'))));
  socket.on('error', () => {});
  const lines = Object.entries({ Host: 'jetpost.test', ...headers, Connection: 'close' }).map(([name, value]) => `${name}: ${value}\r\n`);
  socket.write(`${method} ${path} ${version}\r\n${lines.join('')}\r\n${body}`);
  return { socket, answer };
}

/** A raw answer (not chunked) as a fetch Response, for the checks that take one. */
export function parseAnswer(raw: string): Response {
  const [head = '', ...rest] = raw.split('\r\n\r\n');
  const [statusLine = '', ...headerLines] = head.split('\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(statusLine)?.[1]);
  const headers = new Headers(headerLines.map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).trim()] as [string, string]));
  // A Response of a status that has no body (a 304) must be given none, not even ''.
  return new Response([204, 205, 304].includes(status) ? null : rest.join('\r\n\r\n'), { status, headers });
}
