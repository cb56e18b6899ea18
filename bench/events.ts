// Mailjet event callbacks as Mailjet sends them (grouped, "Version 2"), for messages jetpost really
// holds: the MessageID is written as a raw JSON integer (it exceeds 2^53), as Mailjet does.
export interface SentMessage {
  /** Decimal MessageID. */
  messageId: string;
  messageUuid: string;
  email: string;
  jobId: string;
}

export type EventKind = 'sent' | 'open';

export function mailjetEvent(kind: EventKind, message: SentMessage, time: number): string {
  const common = `"time":${time},"MessageID":${message.messageId},"Message_GUID":${JSON.stringify(message.messageUuid)},"email":${JSON.stringify(message.email)},"mj_campaign_id":0,"mj_contact_id":1,"customcampaign":""`;
  const own =
    kind === 'sent'
      ? `"mj_message_id":"${message.messageId}","smtp_reply":"250 2.0.0 OK"`
      : '"ip":"127.0.0.1","geo":"FR","agent":"Mozilla/5.0 (jetpost bench)"';
  return `{"event":"${kind}",${common},${own},"CustomID":"jetpost-${message.jobId}","Payload":""}`;
}

/** JSON array bodies of `groupSize` events each, one event of this kind per message. */
export function eventBodies(kind: EventKind, messages: readonly SentMessage[], groupSize: number): string[] {
  const time = Math.floor(Date.now() / 1000);
  const bodies: string[] = [];
  for (let offset = 0; offset < messages.length; offset += groupSize) {
    bodies.push(
      `[${messages
        .slice(offset, offset + groupSize)
        .map((message) => mailjetEvent(kind, message, time))
        .join(',')}]`,
    );
  }
  return bodies;
}
