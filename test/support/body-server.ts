// For tests of the body parsers: an express app on a loopback port, and a POST whose body is
// written in parts, a moment apart, so that a parser sees it arrive in several chunks.
import { once } from 'node:events';
import { type IncomingMessage, request } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { Express } from 'express';

export interface BodyServer {
  port: number;
  close(): Promise<void>;
}

export async function listenOnLoopback(app: Express): Promise<BodyServer> {
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export interface Answer {
  status: number;
  type: string | undefined;
  body: string;
}

/** POSTs `parts` (written one after the other, a moment apart) with `type` (none if undefined) and reads the answer. */
export async function postInParts(port: number, path: string, type: string | undefined, parts: readonly Buffer[]): Promise<Answer> {
  const length = parts.reduce((sum, part) => sum + part.length, 0);
  const headers = { 'content-length': length, ...(type === undefined ? {} : { 'content-type': type }) };
  const req = request({ port, host: '127.0.0.1', method: 'POST', path, headers });
  // Listened for first: the answer may come before the last write returns.
  const answered = once(req, 'response') as Promise<[IncomingMessage]>;
  for (const part of parts) {
    req.write(part);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  req.end();
  const [res] = await answered;
  const chunks: Buffer[] = [];
  for await (const chunk of res) {
    chunks.push(chunk as Buffer);
  }
  return { status: res.statusCode!, type: res.headers['content-type'], body: Buffer.concat(chunks).toString('utf8') };
}
