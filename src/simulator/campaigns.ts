import { Fifo } from './fifo.js';

/**
 * Mailjet's campaigns for CustomCampaign: the first send with a name creates the campaign, and every
 * later send with that name joins it, so its mj_campaign_id stays the same. Each campaign remembers
 * the addresses it reached, for DeduplicateCampaign.
 */
export interface Campaign {
  /** Mailjet's campaign id, reported as mj_campaign_id and CampaignID. */
  readonly id: number;
  /** Records a send to the address; false when the campaign had already reached it. */
  reach(email: string): boolean;
}

export interface Campaigns {
  /** The campaign of a CustomCampaign name, created on first use. */
  campaign(name: string): Campaign;
  /** Forgets the campaigns; ids keep counting up, so an id never names two campaigns. */
  clear(): void;
}

interface Known {
  campaign: Campaign;
  reached: Set<string>;
}

/**
 * Past `maxReached` addresses reached, over every campaign, the oldest is forgotten (as the messages
 * and contacts are, server.ts): a dev run sending every message in a campaign grew without end. A
 * campaign with no address left is forgotten with it, and gets a new id if its name comes back.
 */
export function createCampaigns(maxReached: number): Campaigns {
  let byName = new Map<string, Known>();
  /** Every address reached, oldest first, with the campaign that reached it. */
  let order = new Fifo<{ name: string; known: Known; address: string }>();
  let nextId = 1;

  const forgetOldest = () => {
    const oldest = order.shift()!;
    oldest.known.reached.delete(oldest.address);
    // Not a campaign of the same name made since (after clear()).
    if (oldest.known.reached.size === 0 && byName.get(oldest.name) === oldest.known) {
      byName.delete(oldest.name);
    }
  };

  return {
    campaign(name) {
      const known = byName.get(name);
      if (known !== undefined) {
        return known.campaign;
      }
      const created: Known = {
        reached: new Set<string>(),
        campaign: {
          id: nextId++,
          reach(email) {
            const address = email.toLowerCase();
            if (created.reached.has(address)) {
              return false;
            }
            created.reached.add(address);
            order.push({ name, known: created, address });
            // After the push: the campaign reaching holds an address, so it is never the one forgotten.
            while (order.size > maxReached) {
              forgetOldest();
            }
            return true;
          },
        },
      };
      byName.set(name, created);
      return created.campaign;
    },
    clear() {
      byName = new Map();
      order = new Fifo();
    },
  };
}
