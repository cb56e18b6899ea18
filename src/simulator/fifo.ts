/**
 * A first-in, first-out list whose oldest item goes out in constant time (amortized):
 * Array.prototype.shift() moves every other item, so a store of 100,000 messages dropping its
 * oldest at each send would copy 100,000 references per message.
 */
export class Fifo<T> {
  private items: Array<T | undefined> = [];
  /** Index of the oldest item still held; the slots before it are emptied, for the collector. */
  private head = 0;
  /** Whether view() handed out `items`: a shift must not empty a slot of an array a caller holds. */
  private shared = false;

  get size(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.size === 0) {
      return undefined;
    }
    if (this.shared) {
      this.detach();
    }
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head++;
    // Copied once the emptied slots are half the array: each item is copied about once.
    if (this.head * 2 >= this.items.length) {
      this.detach();
    }
    return item;
  }

  /** The items, oldest first, as an array that later pushes append to (until the next shift) and no shift changes. */
  view(): readonly T[] {
    if (this.head > 0) {
      this.detach();
    }
    this.shared = true;
    return this.items as T[];
  }

  /** A new array of the items held, so emptied slots go and a caller's view keeps its content. */
  private detach(): void {
    this.items = this.items.slice(this.head);
    this.head = 0;
    this.shared = false;
  }
}
