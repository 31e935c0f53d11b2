// One connection's adaptive RDY window, pure. nsqd writes a connection's messages out at once
// only when its in-flight count reaches RDY (or its output buffer fills); otherwise it holds
// them for up to outputBufferTimeout (25 ms) to save system calls. With RDY at maxInFlight a
// light stream waits that long for every message. So RDY follows the work actually in flight:
// it shrinks to the most messages in flight over the last review period, where each delivery
// uses up the window and is written at once, and doubles as soon as a message is seen to have
// waited at nsqd for a slot of a full window, so a backlog gets all of maxInFlight within a few
// round trips.

/**
 * How long before a slot was freed a message must have reached nsqd to count as waiting for it,
 * ms: above the clock's resolution and a loopback round trip, so a stream that merely keeps up
 * does not grow the window.
 */
export const WAIT_MS = 2;

export class RdyWindow {
  /** The most RDY this connection may have now (the controller also caps it by its share). */
  size: number;
  /** The most messages in flight in this review period. */
  private peak = 0;
  /** A delivery in this period found the window full: messages may have waited for RDY. */
  private filled = false;
  /** When the last message on this connection was answered (a slot freed), our clock, ms. */
  private freedAt = -Infinity;
  /**
   * The lowest age (our clock at arrival minus nsqd's timestamp) seen: the clocks' offset plus
   * the shortest transit. nsqd's timestamp plus it is when the message reached nsqd, on our
   * clock, whatever the offset between the hosts.
   */
  private floor = Infinity;
  /** The lowest age in this review period. */
  private periodFloor = Infinity;

  constructor(private readonly max: number) {
    // Full at first: a consumer often starts in front of a backlog.
    this.size = max;
  }

  /** A message on this connection was answered at `now` (our clock, ms). */
  freed(now: number): void {
    this.freedAt = now;
  }

  /**
   * A message arrived at `receivedAt` (ms, our clock); `inFlight` counts it, `rdy` is the RDY
   * it came under, `timestampMs` is when nsqd first received it (nsqd's clock; undefined for a
   * redelivery, which was not waiting for a slot but for its requeue delay). True when the
   * window grew.
   */
  delivered(
    inFlight: number,
    rdy: number,
    receivedAt: number,
    timestampMs: number | undefined,
  ): boolean {
    if (inFlight > this.peak) this.peak = inFlight;
    if (inFlight >= rdy) this.filled = true;
    if (timestampMs === undefined) return false;
    const age = receivedAt - timestampMs;
    if (age < this.periodFloor) this.periodFloor = age;
    if (age < this.floor) this.floor = age;
    // At nsqd before the last slot was freed, with the window full: it waited for that slot.
    const waited = timestampMs + this.floor < this.freedAt - WAIT_MS;
    if (!this.filled || !waited || this.size >= this.max) return false;
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
