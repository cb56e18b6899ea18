// The Mailjet simulator as the fault scenarios wire it (in the test process, calling back to a jetpost
// child's /events), and what it accepted: which messages were sent twice, which never.
import { customIdForJob } from '../../../src/domain/mailjet-payload.js';
import { createSimulator, type Simulator, type SimulatorOptions } from '../../../src/simulator/server.js';

export const SIMULATOR_KEY = 'fault-suite-key';
export const SIMULATOR_SECRET = 'fault-suite-secret';
export const EVENTS_USER = 'mailjet';
export const EVENTS_PASSWORD = 'fault-suite-events';

/** The simulator (with the children's API key), listening on a free port, calling back to 127.0.0.1:<eventsPort>/events. */
export async function startFaultSimulator(eventsPort: number, options: SimulatorOptions = {}): Promise<Simulator> {
  const simulator = createSimulator({
    apiKey: SIMULATOR_KEY,
    apiSecret: SIMULATOR_SECRET,
    callbackUrl: `http://${EVENTS_USER}:${EVENTS_PASSWORD}@127.0.0.1:${eventsPort}/events`,
    // A child being restarted misses callbacks for a second or two: retry them soon.
    callbackRetryDelayMs: 250,
    ...options,
  });
  await simulator.listen(0);
  return simulator;
}

/** The CustomID jetpost gives a job's message. */
export function customIdOf(jobId: string): string {
  return customIdForJob(jobId);
}

/** How often the simulator accepted each CustomID. */
export function acceptedCopies(simulator: Simulator): Map<string, number> {
  const copies = new Map<string, number>();
  for (const accepted of simulator.messages) {
    copies.set(accepted.customId, (copies.get(accepted.customId) ?? 0) + 1);
  }
  return copies;
}

/** CustomIDs the simulator accepted more than once: messages sent twice. */
export function sentTwice(simulator: Simulator): string[] {
  return [...acceptedCopies(simulator)].filter(([, count]) => count > 1).map(([customId]) => customId);
}

/** Jobs whose CustomID the simulator never accepted. */
export function neverSent(simulator: Simulator, jobIds: readonly string[]): string[] {
  const copies = acceptedCopies(simulator);
  return jobIds.filter((id) => !copies.has(customIdOf(id)));
}
