// A budget of bytes shared by the requests in progress (POST /events and POST /queue bodies: http/body-budget.ts).
// A request reserves its bytes and releases them when it is over. When they do not fit, it waits
// in FIFO order: nothing overtakes a waiting request, so a large one gets in as soon as the ones
// ahead of it are over, however many small ones keep arriving behind it, and a waiting request
// holds no bytes (those ahead of it are not delayed by it). Only a request reserved `behind` (its
// caller has reason to put it last) is overtaken: it waits behind every other one, in FIFO order
// among its like. A request whose size is known only as
// it arrives grows its reservation as it goes. Bytes already held whatever the budget says (a body
// read whole with its headers) are taken at once, ahead of the queue, past the capacity if need be:
// waiting would hold them all the same. Pure: the caller decides how long a request may
// wait, and cancels it by releasing it.

export interface Reservation {
  /** Whether the bytes were reserved at once (`onGranted` is then never called). */
  readonly granted: boolean;
  /**
   * Adds `bytes` to a reservation that holds its bytes, if they fit now, ahead of the requests
   * waiting (a request in progress is finished first: it is what will make room). False, and
   * nothing added, when they do not fit or the reservation holds nothing.
   */
  grow(bytes: number): boolean;
  /** Gives the bytes back, or leaves the queue if still waiting; only the first call counts. */
  release(): void;
}

export interface ByteBudget {
  /**
   * Reserves `bytes` (at most the capacity: a request larger than the whole budget could never get
   * in, which the configuration rules out). When they do not fit now, `onGranted` is called once
   * they are reserved, from within the release that made room.
   */
  reserve(bytes: number, onGranted: () => void, options?: { behind?: boolean }): Reservation;
  /**
   * Counts `bytes` that are held already (so the requests waiting wait for them too), at once, even
   * past the capacity; given back by the release of the reservation returned.
   */
  take(bytes: number): Reservation;
  /** Bytes reserved now. */
  inUse(): number;
  /** Requests waiting now. */
  waiting(): number;
}

interface Entry {
  bytes: number;
  state: 'waiting' | 'held' | 'released';
  onGranted: () => void;
  behind?: boolean;
}

export function createByteBudget(capacity: number): ByteBudget {
  if (!Number.isSafeInteger(capacity) || capacity <= 0) {
    throw new RangeError(`a byte budget must be a positive whole number of bytes, not ${capacity}`);
  }
  let used = 0;
  const queue: Entry[] = [];

  const grantWaiting = () => {
    while (queue.length > 0 && used + queue[0]!.bytes <= capacity) {
      const entry = queue.shift()!;
      used += entry.bytes;
      entry.state = 'held';
      entry.onGranted();
    }
  };

  const reservationOf = (entry: Entry, granted: boolean): Reservation => ({
    granted,
    grow(more) {
      if (!Number.isSafeInteger(more) || more < 0) {
        throw new RangeError(`cannot grow a reservation by ${more} bytes`);
      }
      if (entry.state !== 'held' || used + more > capacity) {
        return false;
      }
      used += more;
      entry.bytes += more;
      return true;
    },
    release() {
      if (entry.state === 'held') {
        used -= entry.bytes;
      } else if (entry.state === 'waiting') {
        queue.splice(queue.indexOf(entry), 1);
      } else {
        return;
      }
      entry.state = 'released';
      // Leaving the queue can make room too: the request that was first may have been the one too large.
      grantWaiting();
    },
  });

  return {
    reserve(bytes, onGranted, { behind = false } = {}) {
      if (!Number.isSafeInteger(bytes) || bytes < 0 || bytes > capacity) {
        throw new RangeError(`cannot reserve ${bytes} bytes of a budget of ${capacity}`);
      }
      const entry: Entry = { bytes, state: 'waiting', onGranted, behind };
      // Its place: last when it goes behind, else before the first that goes behind.
      const firstBehind = behind ? -1 : queue.findIndex((waiting) => waiting.behind);
      const place = firstBehind === -1 ? queue.length : firstBehind;
      const granted = place === 0 && used + bytes <= capacity;
      if (granted) {
        used += bytes;
        entry.state = 'held';
      } else {
        queue.splice(place, 0, entry);
      }
      return reservationOf(entry, granted);
    },
    take(bytes) {
      if (!Number.isSafeInteger(bytes) || bytes < 0) {
        throw new RangeError(`cannot take ${bytes} bytes of a budget`);
      }
      used += bytes;
      return reservationOf({ bytes, state: 'held', onGranted: () => {} }, true);
    },
    inUse: () => used,
    waiting: () => queue.length,
  };
}
