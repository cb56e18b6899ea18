// Registering this jetpost's /events as Mailjet's event callback (npm run mailjet:register-callback):
// every event type, grouped, at the primary URL and, when asked, a backup URL. A registration that
// another system set (it points elsewhere) is left alone unless the operator forces it, and then
// nothing at all is changed: a refusal never leaves half the types switched.
import { type CallbackWrite, planCallbacks, type RegisteredCallback } from '../domain/events-callback.js';
import { CALLBACK_EVENT_TYPES, type MailjetClient } from '../mailjet/client.js';

export interface CallbackRegistration extends CallbackWrite {
  action: 'created' | 'updated';
}

export type CallbackRegistrationResult =
  { kind: 'registered'; registrations: CallbackRegistration[]; overwritten: RegisteredCallback[] } | { kind: 'refused'; foreign: RegisteredCallback[] };

export async function registerEventCallbacks(
  mailjet: Pick<MailjetClient, 'listEventCallbacks' | 'saveEventCallback'>,
  options: { primary: URL; backup: URL | null; force: boolean },
): Promise<CallbackRegistrationResult> {
  const plan = planCallbacks(await mailjet.listEventCallbacks(), CALLBACK_EVENT_TYPES, options.primary, options.backup);
  if (plan.foreign.length > 0 && !options.force) {
    return { kind: 'refused', foreign: plan.foreign };
  }
  const registrations: CallbackRegistration[] = [];
  for (const write of plan.writes) {
    await mailjet.saveEventCallback(write);
    registrations.push({ ...write, action: write.existingId === null ? 'created' : 'updated' });
  }
  return { kind: 'registered', registrations, overwritten: plan.foreign };
}
