// Mailjet event callbacks as Mailjet writes them, for the tests that post to /events.

/** A Mailjet event as Mailjet writes it: MessageID as a raw JSON integer, whatever its size. */
export function eventText(type: string, messageId: string, email: string, time: number, extra: Record<string, unknown> = {}): string {
  const fields = JSON.stringify({
    event: type,
    time,
    email,
    Message_GUID: '',
    mj_campaign_id: 0,
    mj_contact_id: 1,
    customcampaign: '',
    CustomID: '',
    Payload: '',
    ...extra,
  });
  return `{"MessageID":${messageId},${fields.slice(1)}`;
}
