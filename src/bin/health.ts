// `jetpost health`: the container's HEALTHCHECK. Asks GET /healthz of the service this environment
// configures, where it listens (HOST, PORT): a fixed http://127.0.0.1 missed a service bound to one
// interface. Exit 0 when it answers 200, else 1 with one line on stderr saying why.
import { ConfigError, loadListenAddress } from '../config.js';
import { localUrl } from '../domain/local-url.js';
import { answerArguments } from './arguments.js';

/** Under the HEALTHCHECK's --timeout (5 s), so that the reason is printed rather than the check killed. */
const TIMEOUT_MS = 4_000;

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
    const response = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    await response.body?.cancel();
    if (response.ok) {
      return 0;
    }
    process.stderr.write(`jetpost health: ${url} answered ${response.status}\n`);
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : error instanceof Error ? error.message : String(error);
    process.stderr.write(`jetpost health: ${url} did not answer: ${cause}\n`);
  }
  return 1;
}

const USAGE = `usage: jetpost health

Exits 0 when the service at HOST and PORT (the environment variables the service reads) answers
GET /healthz, else 1 with the reason on stderr.
`;

process.exitCode = answerArguments('jetpost health', process.argv.slice(2), USAGE) ?? (await check());
