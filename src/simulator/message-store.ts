import { Fifo } from './fifo.js';
import type { SimulatedMessage, SimulatedRecipient } from './send.js';

/** One row of Mailjet's message resource: Mailjet keeps a "message" per recipient. */
export interface StoredRecipient {
  message: SimulatedMessage;
  recipient: SimulatedRecipient;
}

export interface MessageStore {
  /** The accepted messages kept, oldest first; a message sent twice appears twice. */
  readonly messages: readonly SimulatedMessage[];
  /** Messages forgotten to stay within the cap since the store was made or cleared. */
  readonly dropped: number;
  add(message: SimulatedMessage): void;
  findById(messageId: string): StoredRecipient | undefined;
  /** Every recipient row, or only those of messages with this CustomID. */
  list(customId: string | undefined): readonly StoredRecipient[];
  /** Whether the message was forgotten to stay within the cap (its events waiting are given up with it). */
  forgot(message: SimulatedMessage): boolean;
  clear(): void;
}

/**
 * Indexed by MessageID and CustomID, since jetpost looks messages up by both while the store grows.
 * Past maxMessages the oldest message is forgotten, with its rows in both indexes: its look-ups
 * then answer as Mailjet's for a message it no longer lists (none found by CustomID, 404 by id).
 */
export function createMessageStore(maxMessages: number): MessageStore {
  let messages = new Fifo<SimulatedMessage>();
  const byId = new Map<string, StoredRecipient>();
  const byCustomId = new Map<string, Fifo<StoredRecipient>>();
  let forgotten = new WeakSet<SimulatedMessage>();
  let dropped = 0;

  const forget = (message: SimulatedMessage): void => {
    for (const recipient of message.recipients) {
      byId.delete(recipient.messageId.toString());
    }
    // The oldest message of all is the oldest of its CustomID: its rows lead that list.
    const sameCustomId = byCustomId.get(message.customId);
    for (let row = 0; row < message.recipients.length; row++) {
      sameCustomId?.shift();
    }
    if (sameCustomId?.size === 0) {
      byCustomId.delete(message.customId);
    }
    forgotten.add(message);
    dropped++;
  };

  return {
    get messages() {
      return messages.view();
    },
    get dropped() {
      return dropped;
    },
    add(message) {
      // The oldest goes first: a view a caller holds then keeps what it showed, without the new one.
      while (messages.size >= maxMessages) {
        forget(messages.shift()!);
      }
      messages.push(message);
      const sameCustomId = byCustomId.get(message.customId) ?? new Fifo<StoredRecipient>();
      byCustomId.set(message.customId, sameCustomId);
      for (const recipient of message.recipients) {
        const row = { message, recipient };
        byId.set(recipient.messageId.toString(), row);
        sameCustomId.push(row);
      }
    },
    findById: (messageId) => byId.get(messageId),
    list: (customId) =>
      customId === undefined
        ? messages.view().flatMap((message) => message.recipients.map((recipient) => ({ message, recipient })))
        : (byCustomId.get(customId)?.view() ?? []),
    forgot: (message) => forgotten.has(message),
    clear() {
      // A new list, so a snapshot a caller holds keeps its content.
      messages = new Fifo();
      byId.clear();
      byCustomId.clear();
      forgotten = new WeakSet();
      dropped = 0;
    },
  };
}

/**
 * The message resource as GET /v3/REST/message answers it. CustomID is filled only with
 * ShowCustomID=true and ContactAlt only with ShowContactAlt=true, as at Mailjet; ID stays a bigint so
 * it is written as a raw integer.
 */
export function toMessageResource(
  { message, recipient }: StoredRecipient,
  { showCustomId, showContactAlt }: { showCustomId: boolean; showContactAlt: boolean },
): Record<string, unknown> {
  return {
    ArrivedAt: message.receivedAt.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    CampaignID: message.campaignId,
    ContactAlt: showContactAlt ? recipient.email : '',
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
