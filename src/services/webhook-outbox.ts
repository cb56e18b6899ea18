// The webhook outbox step of every transition that writes status changes (cancel, a send's results,
// events, the lease reaper): the deliveries of the changes, queued in the transition's own
// transaction (only for the types each app's webhook is subscribed to), and a NOTIFY that wakes the
// dispatchers of every replica when it commits.
import { notify, type NotifyChannels } from '../db/notify.js';
import type { Queryable } from '../db/pool.js';
import { insertDeliveries } from '../db/webhook-deliveries-repo.js';
import type { RecordedChange } from '../domain/status-change.js';

export async function queueWebhookDeliveries(tx: Queryable, channels: NotifyChannels, changes: readonly RecordedChange[]): Promise<void> {
  if ((await insertDeliveries(tx, changes)) > 0) {
    await notifyWebhooks(tx, channels);
  }
}

/** Wakes the dispatchers of every replica when the caller's transaction commits. */
export async function notifyWebhooks(tx: Queryable, channels: NotifyChannels): Promise<void> {
  await notify(tx, channels.webhooks);
}
