// The JSON of a status change, pure: the webhook body and the entries of the polling feed.
import type { StatusChangeRow } from '../db/status-changes-repo.js';

export function changeJson(change: StatusChangeRow) {
  return {
    /** The change's id: a repeated delivery of the same change carries the same id. */
    id: change.id,
    type: change.newStatus,
    created_at: change.createdAt.toISOString(),
    job_id: change.jobId,
    custom_id: change.customId,
    recipient: change.recipient,
    old_status: change.oldStatus,
    new_status: change.newStatus,
    details: change.details,
    metadata: change.metadata,
  };
}
