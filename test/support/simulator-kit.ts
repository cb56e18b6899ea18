// Helpers for the simulator's own tests: a simulator and callback receivers that close after each
// test, and small HTTP helpers that keep Mailjet's raw 64-bit ids readable.
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

import { createSimulator, type Simulator, type SimulatorOptions } from '../../src/simulator/server.js';

export interface Delivery {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A node:http callback receiver: answers each POST with the next queued status, else with `status` (0 = never). */
export interface Receiver {
  url: string;
  deliveries: Delivery[];
  answers: number[];
  /** The answer once `answers` is empty (default 200). */
  status: number;
  close(): Promise<void>;
}

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

export interface SimulatorKit {
  startSimulator(options?: SimulatorOptions): Promise<Simulator>;
  startReceiver(): Promise<Receiver>;
  /** Closes every simulator and receiver started since the last call; for afterEach. */
  closeAll(): Promise<void>;
}

/** Events due at once and no timer flush during a test: each test flushes when it wants. */
export const IMMEDIATE: SimulatorOptions = { eventDelaysMs: { sent: 0, open: 0, click: 0 }, flushIntervalMs: 60_000, callbackRetryDelayMs: 0 };

export function simulatorKit(defaults: SimulatorOptions = { seed: 7, ...IMMEDIATE }): SimulatorKit {
  const cleanups: Array<() => Promise<void>> = [];
  return {
    async startSimulator(options = {}) {
      const simulator = createSimulator({ ...defaults, ...options });
      cleanups.push(() => simulator.close());
      await simulator.listen(0);
      return simulator;
    },
    async startReceiver() {
      const receiver = await listenReceiver();
      cleanups.push(() => receiver.close());
      return receiver;
    },
    async closeAll() {
      await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
    },
  };
}

async function listenReceiver(): Promise<Receiver> {
  const deliveries: Delivery[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      deliveries.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const status = receiver.answers.shift() ?? receiver.status;
      if (status !== 0) {
        res.writeHead(status).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const receiver: Receiver = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`,
    deliveries,
    answers: [],
    status: 200,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  return receiver;
}

export async function call(simulator: Simulator, path: string, init: RequestInit = {}): Promise<Answer> {
  const response = await fetch(`${simulator.url}${path}`, init);
  return { status: response.status, headers: response.headers, text: await response.text() };
}

export function send(simulator: Simulator, body: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  return call(simulator, '/v3.1/send', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** The MessageIDs written in a JSON text, as their literal digits (JSON.parse would round them). */
export function rawIds(text: string, field = 'MessageID'): string[] {
  return [...text.matchAll(new RegExp(`"${field}":(\\d+)`, 'g'))].map((match) => match[1] ?? '');
}

export function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

export function eventsOf(deliveries: Delivery[]): Array<Record<string, unknown>> {
  return deliveries.flatMap((delivery) => [JSON.parse(delivery.body) as Record<string, unknown> | Array<Record<string, unknown>>].flat());
}
