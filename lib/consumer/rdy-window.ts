// One connection's adaptive RDY window, pure. nsqd writes a connection's messages out at once
// only when its in-flight count reaches RDY (or its output buffer fills); otherwise it holds
// them for up to outputBufferTimeout (25 ms) to save system calls. With RDY at maxInFlight a
// light stream waits that long for every message. So RDY follows the work actually in flight:
// every review period it shrinks to the most messages that were in flight, where each delivery
// uses up the window and is written at once. It doubles when a message is seen to have waited
// at nsqd for a slot of a full window (a backlog; for a redelivery, taking a freed slot at
// once), and when the window stayed full through a whole period without a slot freed
// (a handler holding messages, e.g. to batch them).

/**
 * How long before a slot was freed a message must have reached nsqd to count as waiting for it,
 * ms: above the clock's resolution and a loopback round trip, so a stream that merely keeps up
 * does not grow the window.
 */
export const WAIT_MS = 2;

export class RdyWindow {
  /** The most RDY this connection may have now (the controller also caps it by its share). */
  size: number;
  /** Reviews shrink nothing before a whole period of deliveries was seen. */
  private phase: 'waiting' | 'first period' | 'running' = 'waiting';
  /** The most messages in flight in this review period. */
  private peak = 0;
  /** A delivery in this period found the window full: messages may have waited for RDY. */
  private sawFull = false;
  /** A message was answered (a slot freed) in this period. */
  private freedInPeriod = false;
  /** When the last message on this connection was answered, our clock, ms. */
  private freedAt = -Infinity;
  /**
   * The lowest age (our clock at arrival minus nsqd's timestamp) seen: the clocks' offset plus
   * the shortest transit. nsqd's timestamp plus it is when the message reached nsqd, on our
   * clock, whatever the offset between the hosts.
   */
  private minAge = Infinity;
  /** The lowest age in this review period. */
  private periodMinAge = Infinity;

  constructor(private readonly max: number) {
    // Full at first: a consumer often starts in front of a backlog.
    this.size = max;
  }

  /** Whether a review can change anything: off while nothing arrives, so idle costs no timer. */
  needsReview(inFlight: number): boolean {
    return this.phase !== 'waiting' && (this.size > 1 || inFlight > 0);
  }

  /** A message on this connection was answered at `now` (our clock, ms). */
  freed(now: number): void {
    this.freedAt = now;
    this.freedInPeriod = true;
  }

  /**
   * A message arrived at `receivedAt` (ms, our clock); `inFlight` (as nsqd counts it) includes
   * it, `rdy` is the RDY it came under, `timestampMs` is when nsqd first received it (nsqd's
   * clock; undefined for a redelivery, which waited for its requeue delay, not for a slot).
   * True when the window grew.
   */
  delivered(
    inFlight: number,
    rdy: number,
    receivedAt: number,
    timestampMs: number | undefined,
  ): boolean {
    if (this.phase === 'waiting') this.phase = 'first period';
    if (inFlight > this.peak) this.peak = inFlight;
    if (inFlight >= rdy) this.sawFull = true;
    if (timestampMs === undefined) return this.redelivered(rdy, receivedAt);
    const age = receivedAt - timestampMs;
    if (age < this.periodMinAge) this.periodMinAge = age;
    if (age < this.minAge) this.minAge = age;
    // At nsqd before the last slot was freed, with the window full: it waited for that slot.
    const waited = timestampMs + this.minAge < this.freedAt - WAIT_MS;
    if (!this.sawFull || !waited) return false;
    this.sawFull = false;
    return this.grow(rdy);
  }

  /** Ends a review period; `inFlight` is in flight now (as nsqd counts it). True on a change. */
  review(inFlight: number): boolean {
    let changed = false;
    if (this.phase === 'running') {
      if (inFlight >= this.size && !this.freedInPeriod) {
        // Full for a whole period and nothing answered: the handler waits for more messages.
        changed = this.grow(this.size);
      } else if (Math.max(1, this.peak) < this.size) {
        this.size = Math.max(1, this.peak);
        changed = true;
      }
      // A period whose deliveries never found the window full had nothing waiting for RDY: its
      // lowest age is a true minimum (this follows a clock that was stepped forward).
      if (!this.sawFull && this.periodMinAge !== Infinity) this.minAge = this.periodMinAge;
    } else if (this.phase === 'first period') {
      this.phase = 'running';
    }
    this.peak = inFlight;
    this.sawFull = false;
    this.freedInPeriod = false;
    this.periodMinAge = Infinity;
    return changed;
  }

  /**
   * A redelivery's timestamp says nothing of waiting for a slot (it is the first publish's).
   * One that took a freed slot of a full window at once shows that nsqd had it queued
   * (redeliveries after a consumer went away, requeues coming due together, after backoff).
   */
  private redelivered(rdy: number, receivedAt: number): boolean {
    if (!this.sawFull || receivedAt - this.freedAt > WAIT_MS) return false;
    this.sawFull = false;
    return this.grow(rdy);
  }

  private grow(from: number): boolean {
    if (this.size >= this.max) return false;
    this.size = Math.min(this.max, Math.max(this.size, from, 1) * 2);
    return true;
  }
}
