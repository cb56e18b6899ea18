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

export function createCampaigns(): Campaigns {
  const byName = new Map<string, Campaign>();
  let nextId = 1;
  return {
    campaign(name) {
      const known = byName.get(name);
      if (known !== undefined) {
        return known;
      }
      const reached = new Set<string>();
      const created: Campaign = {
        id: nextId++,
        reach(email) {
          const address = email.toLowerCase();
          if (reached.has(address)) {
            return false;
          }
          reached.add(address);
          return true;
        },
      };
      byName.set(name, created);
      return created;
    },
    clear() {
      byName.clear();
    },
  };
}
