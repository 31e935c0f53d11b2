// One connection's adaptive RDY window, pure. nsqd writes a connection's messages out at once
// only when its in-flight count reaches RDY (or its output buffer fills); otherwise it holds
// them for up to outputBufferTimeout (25 ms) to save system calls. With RDY at maxInFlight a
// light stream waits that long for every message. So RDY follows the work actually in flight:
// it shrinks to the most messages in flight over the last review period, where each delivery
// uses up the window and is written at once, and doubles as soon as messages are seen waiting
// at nsqd for a window that was full, so a backlog gets the whole of maxInFlight within a few
// round trips.

/** How much older than the freshest deliveries a message must arrive to count as waiting, ms. */
export const WAIT_MS = 2;

export class RdyWindow {
  /** The most RDY this connection may have now (the controller also caps it by its share). */
  size: number;
  /** The most messages in flight in this review period. */
  private peak = 0;
  /** A delivery in this period found the window full: messages may have waited for RDY. */
  private filled = false;
  /**
   * The lowest age (our clock minus nsqd's timestamp) seen: clock offset plus transit, so that
   * a delivery's age above it is time spent waiting at nsqd. Offsets between hosts cancel out.
   */
  private floor = Infinity;
  /** The lowest age in this review period. */
  private periodFloor = Infinity;

  constructor(private readonly max: number) {
    // Full at first: a consumer often starts in front of a backlog.
    this.size = max;
  }

  /**
   * A message arrived; `inFlight` counts it, `rdy` is the RDY it came under, `ageMs` is how
   * long since nsqd first received it (undefined for a redelivery, whose age says nothing).
   * True when the window grew.
   */
  delivered(inFlight: number, rdy: number, ageMs: number | undefined): boolean {
    if (inFlight > this.peak) this.peak = inFlight;
    if (inFlight >= rdy) this.filled = true;
    if (ageMs === undefined) return false;
    if (ageMs < this.periodFloor) this.periodFloor = ageMs;
    if (ageMs < this.floor) this.floor = ageMs;
    if (!this.filled || ageMs - this.floor <= WAIT_MS || this.size >= this.max) return false;
    this.size = Math.min(this.max, Math.max(this.size, rdy, 1) * 2);
    this.filled = false;
    return true;
  }

  /** Ends a review period; `inFlight` is in flight now. True when the window shrank. */
  review(inFlight: number): boolean {
    // A period whose deliveries never filled the window had nothing waiting for RDY: its
    // lowest age is a true floor (this follows a clock that was stepped forward).
    if (!this.filled && this.periodFloor !== Infinity) this.floor = this.periodFloor;
    const used = Math.max(1, this.peak);
    const shrank = used < this.size;
    if (shrank) this.size = used;
    this.peak = inFlight;
    this.filled = false;
    this.periodFloor = Infinity;
    return shrank;
  }
}
