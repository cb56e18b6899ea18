import type { SimulatedMessage, SimulatedRecipient } from './send.js';

/** One row of Mailjet's message resource: Mailjet keeps a "message" per recipient. */
export interface StoredRecipient {
  message: SimulatedMessage;
  recipient: SimulatedRecipient;
}

export interface MessageStore {
  /** Every accepted message in order; a message sent twice appears twice. */
  readonly messages: readonly SimulatedMessage[];
  add(message: SimulatedMessage): void;
  findById(messageId: string): StoredRecipient | undefined;
  /** Every recipient row, or only those of messages with this CustomID. */
  list(customId: string | undefined): StoredRecipient[];
  clear(): void;
}

/** Indexed by MessageID and CustomID, since jetpost looks messages up by both while the store grows. */
export function createMessageStore(): MessageStore {
  let messages: SimulatedMessage[] = [];
  const byId = new Map<string, StoredRecipient>();
  const byCustomId = new Map<string, StoredRecipient[]>();
  return {
    get messages() {
      return messages;
    },
    add(message) {
      messages.push(message);
      const rows = message.recipients.map((recipient) => ({ message, recipient }));
      for (const row of rows) {
        byId.set(row.recipient.messageId.toString(), row);
      }
      const sameCustomId = byCustomId.get(message.customId);
      if (sameCustomId === undefined) {
        byCustomId.set(message.customId, rows);
      } else {
        sameCustomId.push(...rows);
      }
    },
    findById: (messageId) => byId.get(messageId),
    list: (customId) =>
      customId === undefined
        ? messages.flatMap((message) => message.recipients.map((recipient) => ({ message, recipient })))
        : (byCustomId.get(customId) ?? []),
    clear() {
      // A new array, so a snapshot a caller holds keeps its content.
      messages = [];
      byId.clear();
      byCustomId.clear();
    },
  };
}

/**
 * The message resource as GET /v3/REST/message answers it. CustomID is filled only with
 * ShowCustomID=true, as at Mailjet; ID stays a bigint so it is written as a raw integer.
 */
export function toMessageResource({ message, recipient }: StoredRecipient, showCustomId: boolean): Record<string, unknown> {
  return {
    ArrivedAt: message.receivedAt.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    CampaignID: message.campaignId,
    ContactAlt: recipient.email,
    ContactID: recipient.contactId,
    CustomID: showCustomId ? message.customId : '',
    ID: recipient.messageId,
    IsClickTracked: message.tracking.clicks,
    IsHTMLPartIncluded: message.hasHtml,
    IsOpenTracked: message.tracking.opens,
    Status: recipient.status,
    UUID: recipient.messageUuid,
  };
}
