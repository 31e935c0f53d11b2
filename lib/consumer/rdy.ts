// RDY arithmetic, pure. In nsqd 1.x RDY is a window: nsqd sends while in-flight < RDY, so a
// connection's RDY is set once and only changed when the consumer rebalances.

export interface RdySlot {
  /** The connection's max_rdy_count from IDENTIFY. */
  maxRdy: number;
  /** The RDY last sent. */
  rdy: number;
  /** Messages delivered on it and not yet answered. */
  inFlight: number;
}

/**
 * Target RDY for each connection: maxInFlight split evenly (clamped to each max_rdy_count).
 * With fewer maxInFlight than connections, RDY 1 goes to the `maxInFlight` connections starting
 * at `rotation` (the caller advances it to rotate RDY among them).
 */
export function targetRdy(maxInFlight: number, slots: readonly RdySlot[], rotation = 0): number[] {
  const n = slots.length;
  if (n === 0) return [];
  if (maxInFlight < n) {
    const targets = new Array<number>(n).fill(0);
    for (let k = 0; k < maxInFlight; k++)
      targets[(rotation + k) % n] = Math.min(1, slots[(rotation + k) % n].maxRdy);
    return targets;
  }
  const share = Math.floor(maxInFlight / n);
  const extra = maxInFlight % n;
  return slots.map((s, i) => Math.min(s.maxRdy, share + (i < extra ? 1 : 0)));
}

/**
 * The RDY values safe to send now on the way to `targets`: lowering is always safe; raising is
 * limited so that in-flight summed over connections can never exceed `maxInFlight`, even while
 * messages delivered under an older, larger RDY are still in flight.
 */
export function safeRdy(
  maxInFlight: number,
  slots: readonly RdySlot[],
  targets: readonly number[],
): number[] {
  const next = slots.map((s, i) => Math.min(s.rdy, targets[i]));
  let budget = maxInFlight;
  for (let i = 0; i < slots.length; i++) budget -= Math.max(next[i], slots[i].inFlight);
  // Messages still in flight under an older RDY elsewhere: take back RDY that is not in use yet.
  for (let i = 0; i < slots.length && budget < 0; i++) {
    const cut = Math.min(Math.max(0, next[i] - slots[i].inFlight), -budget);
    next[i] -= cut;
    budget += cut;
  }
  for (let i = 0; i < slots.length; i++) {
    if (targets[i] <= next[i]) continue;
    // Up to what is in flight there, a higher RDY lets nothing more in: it costs no budget.
    const floor = Math.max(next[i], slots[i].inFlight);
    const raised = Math.min(targets[i], floor + Math.max(0, budget));
    if (raised > floor) budget -= raised - floor;
    next[i] = Math.max(next[i], raised);
  }
  return next;
}
