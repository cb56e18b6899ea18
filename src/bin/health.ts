// `jetpost health`: the container's HEALTHCHECK. Asks GET /healthz of the service this environment
// configures, where it listens (HOST, PORT): a fixed http://127.0.0.1 missed a service bound to one
// interface. Exit 0 when it answers 200 with jetpost's own answer (another server on that port may
// answer 200 to anything), else 1 with one line on stderr saying why.
import { ConfigError, loadListenAddress } from '../config.js';
import { isLivenessAnswer, LIVENESS_ANSWER } from '../domain/liveness.js';
import { localUrl } from '../domain/local-url.js';
import { unicodeEscape } from '../domain/unicode-escape.js';
import { answerArguments } from './arguments.js';

/** Under the HEALTHCHECK's --timeout (5 s), so that the reason is printed rather than the check killed. */
const TIMEOUT_MS = 4_000;
/** jetpost's answer is a few dozen bytes: more is read only to be quoted in the reason. */
const MAX_ANSWER_BYTES = 4_096;

/** The start of the answer's body, as text (a server streaming without end is not read to its end). */
async function answerStart(response: Response): Promise<string> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  // Leaving the loop early cancels the rest of the body.
  for await (const chunk of (response.body ?? []) as AsyncIterable<Uint8Array>) {
    chunks.push(chunk);
    length += chunk.length;
    if (length >= MAX_ANSWER_BYTES) {
      break;
    }
  }
  return Buffer.concat(chunks).subarray(0, MAX_ANSWER_BYTES).toString('utf8');
}

function parsed(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

async function check(): Promise<number> {
  let url: string;
  try {
    const { host, port } = loadListenAddress();
    if (port === 0) {
      // Port 0 would be asked as such, and refused: the service took a port only it knows.
      process.stderr.write(
        'jetpost health: PORT is 0, so the service listens on a free port it chose, which this check cannot know: set PORT to a fixed port\n',
      );
      return 78;
    }
    url = `${localUrl(host, port)}/healthz`;
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`jetpost health: ${error.message}\n`);
      return 78;
    }
    throw error;
  }
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS), redirect: 'manual' });
    if (!response.ok) {
      await response.body?.cancel();
      process.stderr.write(`jetpost health: ${url} answered ${response.status}\n`);
      return 1;
    }
    const text = await answerStart(response);
    if (isLivenessAnswer(parsed(text))) {
      return 0;
    }
    process.stderr.write(
      `jetpost health: ${url} answered ${response.status}, but not as jetpost does (${JSON.stringify(LIVENESS_ANSWER)}): another server listens at HOST and PORT. It answered: ${text.slice(0, 200).replace(/[\p{Cc}\p{Cf}]/gu, unicodeEscape)}\n`,
    );
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : error instanceof Error ? error.message : String(error);
    process.stderr.write(`jetpost health: ${url} did not answer: ${cause}\n`);
  }
  return 1;
}

const USAGE = `usage: jetpost health

Exits 0 when the service at HOST and PORT (the environment variables the service reads) answers
GET /healthz as jetpost does, else 1 with the reason on stderr (78: bad settings, 2: an argument).
`;

process.exitCode = answerArguments('jetpost health', process.argv.slice(2), USAGE) ?? (await check());
