import fc from 'fast-check';
import { BackoffState } from '../../lib/consumer/backoff.js';
import { safeRdy, targetRdy, type RdySlot } from '../../lib/consumer/rdy.js';

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

/** Connections as the consumer sees them: any RDY last sent, any count in flight. */
const slotsArb = fc.array(
  fc.record({
    maxRdy: fc.integer({ min: 1, max: 2500 }),
    rdy: fc.integer({ min: 0, max: 300 }),
    inFlight: fc.integer({ min: 0, max: 300 }),
  }),
  { minLength: 1, maxLength: 12 },
);
const maxInFlightArb = fc.integer({ min: 1, max: 500 });

describe('targetRdy', () => {
  it('never asks for more than maxInFlight in total nor more than max_rdy_count on one', () => {
    fc.assert(
      fc.property(maxInFlightArb, slotsArb, fc.nat(100), (maxInFlight, slots, rotation) => {
        const targets = targetRdy(maxInFlight, slots, rotation);
        expect(targets).toHaveLength(slots.length);
        expect(sum(targets)).toBeLessThanOrEqual(maxInFlight);
        targets.forEach((t, i) => {
          expect(t).toBeGreaterThanOrEqual(0);
          expect(t).toBeLessThanOrEqual(slots[i].maxRdy);
        });
      }),
    );
  });

  it('hands out all of maxInFlight when the connections can take it', () => {
    fc.assert(
      fc.property(maxInFlightArb, slotsArb, fc.nat(100), (maxInFlight, slots, rotation) => {
        const targets = targetRdy(maxInFlight, slots, rotation);
        if (slots.every((s) => s.maxRdy >= maxInFlight)) expect(sum(targets)).toBe(maxInFlight);
        // An even split: no connection gets more than one above another (before clamping).
        if (maxInFlight >= slots.length && slots.every((s) => s.maxRdy >= maxInFlight)) {
          expect(Math.max(...targets) - Math.min(...targets)).toBeLessThanOrEqual(1);
        }
      }),
    );
  });

  it('with fewer maxInFlight than connections, rotating moves RDY 1 over every connection', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 12 }), fc.integer({ min: 1, max: 11 }), (n, m) => {
        fc.pre(m < n);
        const slots = Array.from({ length: n }, () => ({ maxRdy: 2500, rdy: 0, inFlight: 0 }));
        const served = new Set<number>();
        for (let rotation = 0; rotation < n; rotation += m) {
          const targets = targetRdy(m, slots, rotation);
          expect(targets.every((t) => t === 0 || t === 1)).toBe(true);
          expect(sum(targets)).toBe(m);
          targets.forEach((t, i) => t && served.add(i));
        }
        expect(served.size).toBe(n);
      }),
    );
  });
});

describe('safeRdy', () => {
  const exposure = (slots: readonly RdySlot[], rdy: readonly number[]) =>
    sum(slots.map((s, i) => Math.max(rdy[i], s.inFlight)));

  it('keeps the sum of RDY within maxInFlight and each RDY within max_rdy_count', () => {
    fc.assert(
      fc.property(maxInFlightArb, slotsArb, fc.nat(100), (maxInFlight, slots, rotation) => {
        const next = safeRdy(maxInFlight, slots, targetRdy(maxInFlight, slots, rotation));
        expect(sum(next)).toBeLessThanOrEqual(maxInFlight);
        next.forEach((r, i) => {
          expect(r).toBeGreaterThanOrEqual(0);
          expect(r).toBeLessThanOrEqual(slots[i].maxRdy);
        });
      }),
    );
  });

  it('never lets what can be in flight (max of RDY and in flight, summed) exceed maxInFlight', () => {
    fc.assert(
      fc.property(maxInFlightArb, slotsArb, fc.nat(100), (maxInFlight, slots, rotation) => {
        fc.pre(sum(slots.map((s) => s.inFlight)) <= maxInFlight);
        const next = safeRdy(maxInFlight, slots, targetRdy(maxInFlight, slots, rotation));
        expect(exposure(slots, next)).toBeLessThanOrEqual(maxInFlight);
      }),
    );
  });

  it('reaches the targets at once when in-flight messages leave room for them', () => {
    fc.assert(
      fc.property(maxInFlightArb, slotsArb, fc.nat(100), (maxInFlight, slots, rotation) => {
        const targets = targetRdy(maxInFlight, slots, rotation);
        fc.pre(exposure(slots, targets) <= maxInFlight);
        expect(safeRdy(maxInFlight, slots, targets)).toEqual(targets);
      }),
      {
        examples: [
          // The budget runs out on the first; the second needs none (its RDY is below in flight).
          [
            2,
            [
              { maxRdy: 10, rdy: 0, inFlight: 0 },
              { maxRdy: 10, rdy: 0, inFlight: 1 },
            ],
            0,
          ],
        ],
      },
    );
  });

  it('reaches the targets step by step as in-flight messages are answered', () => {
    fc.assert(
      fc.property(maxInFlightArb, slotsArb, (maxInFlight, slots) => {
        fc.pre(sum(slots.map((s) => s.inFlight)) <= maxInFlight);
        const state = slots.map((s) => ({ ...s }));
        const targets = targetRdy(maxInFlight, state);
        // Answer one message at a time (most loaded connection first), re-balancing each time.
        for (let step = 0; step <= sum(slots.map((s) => s.inFlight)); step++) {
          const next = safeRdy(maxInFlight, state, targets);
          expect(exposure(state, next)).toBeLessThanOrEqual(maxInFlight);
          next.forEach((r, i) => (state[i].rdy = r));
          const busiest = state.reduce((a, b) => (b.inFlight > a.inFlight ? b : a));
          if (busiest.inFlight > 0) busiest.inFlight--;
        }
        expect(safeRdy(maxInFlight, state, targets)).toEqual(targets);
      }),
    );
  });
});

describe('BackoffState', () => {
  const settingsArb = fc
    .record({
      multiplier: fc.integer({ min: 1, max: 5000 }),
      factor: fc.integer({ min: 1, max: 500 }),
    })
    // window 1: every failure counts, so these properties are about the pause levels alone.
    .map(({ multiplier, factor }) => ({
      multiplier,
      maxDelay: multiplier * factor,
      window: 1,
      failureRate: 0.5,
    }));

  /** A failure that counts: after the previous window elapsed. */
  const failAfterWindow = (b: BackoffState) => {
    b.windowElapsed();
    return b.failure();
  };

  it('doubles the window with each failure and caps it at maxDelay', () => {
    fc.assert(
      fc.property(settingsArb, fc.integer({ min: 1, max: 40 }), (settings, failures) => {
        const b = new BackoffState(settings);
        expect(b.failure()).toBe('paused');
        const windows = [b.window];
        for (let k = 1; k < failures; k++) {
          expect(failAfterWindow(b)).toBe('paused');
          windows.push(b.window);
        }
        expect(windows[0]).toBe(Math.min(settings.multiplier, settings.maxDelay));
        for (let k = 1; k < windows.length; k++) {
          expect(windows[k]).toBe(Math.min(settings.maxDelay, windows[k - 1] * 2));
        }
        // Enough failures always reach the cap.
        for (let k = 0; k < 64; k++) failAfterWindow(b);
        expect(b.window).toBe(settings.maxDelay);
      }),
    );
  });

  it('ignores results while paused', () => {
    fc.assert(
      fc.property(
        settingsArb,
        fc.integer({ min: 1, max: 10 }),
        fc.array(fc.boolean(), { maxLength: 30 }),
        (settings, failures, results) => {
          const b = new BackoffState(settings);
          b.failure();
          for (let k = 1; k < failures; k++) failAfterWindow(b);
          const level = b.level;
          for (const ok of results) expect(ok ? b.success() : b.failure()).toBe('paused');
          expect(b.level).toBe(level);
          expect(b.mode).toBe('paused');
        },
      ),
    );
  });

  it('steps down one level per success after each window, back to normal', () => {
    fc.assert(
      fc.property(settingsArb, fc.integer({ min: 1, max: 20 }), (settings, failures) => {
        const b = new BackoffState(settings);
        b.failure();
        for (let k = 1; k < failures; k++) failAfterWindow(b);
        const level = b.level;
        expect(level).toBeGreaterThanOrEqual(1);
        for (let k = level - 1; k >= 0; k--) {
          expect(b.windowElapsed()).toBe('testing');
          expect(b.success()).toBe(k === 0 ? 'normal' : 'paused');
          expect(b.level).toBe(k);
        }
        // In normal mode a success changes nothing.
        expect(b.success()).toBe('normal');
        expect(b.level).toBe(0);
      }),
    );
  });

  it('a failure while testing goes one level up and pauses again', () => {
    fc.assert(
      fc.property(settingsArb, fc.integer({ min: 1, max: 10 }), (settings, failures) => {
        const b = new BackoffState(settings);
        b.failure();
        for (let k = 1; k < failures; k++) failAfterWindow(b);
        const before = b.window;
        expect(failAfterWindow(b)).toBe('paused');
        expect(b.window).toBe(Math.min(settings.maxDelay, before * 2));
      }),
    );
  });

  it('windowElapsed outside a pause changes nothing', () => {
    const b = new BackoffState({ multiplier: 100, maxDelay: 1000, window: 1, failureRate: 0.5 });
    expect(b.windowElapsed()).toBe('normal');
    expect(b.level).toBe(0);
  });
});

describe('BackoffState: failure rate', () => {
  const rateArb = fc.record({
    window: fc.integer({ min: 2, max: 100 }),
    failureRate: fc.double({ min: 0.05, max: 1, noNaN: true }),
  });
  const make = (r: { window: number; failureRate: number }) =>
    new BackoffState({ multiplier: 100, maxDelay: 1000, ...r });

  it('with failures only, pauses once half a window of results is in', () => {
    fc.assert(
      fc.property(rateArb, (r) => {
        const b = make(r);
        const needed = Math.ceil(r.window / 2);
        for (let k = 1; k < needed; k++) expect(b.failure()).toBe('normal');
        expect(b.failure()).toBe('paused');
      }),
    );
  });

  it('never pauses while the share of failures in every window stays below the rate', () => {
    fc.assert(
      fc.property(
        rateArb,
        fc.array(fc.boolean(), { minLength: 1, maxLength: 300 }),
        (r, failedList) => {
          const b = make(r);
          const seen: boolean[] = [];
          for (const failed of failedList) {
            seen.push(failed);
            const last = seen.slice(-r.window);
            const share = last.filter(Boolean).length / last.length;
            const mustPause =
              failed && last.length >= Math.ceil(r.window / 2) && share >= r.failureRate;
            expect(failed ? b.failure() : b.success()).toBe(mustPause ? 'paused' : 'normal');
            if (mustPause) return; // the rest is the pause, tested above
          }
        },
      ),
    );
  });

  it('5 % random failures with the defaults: practically never a pause', () => {
    const b = new BackoffState({ multiplier: 100, maxDelay: 1000, window: 20, failureRate: 0.5 });
    let pauses = 0;
    let seed = 1;
    const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
    for (let k = 0; k < 100_000; k++) {
      const mode = random() < 0.05 ? b.failure() : b.success();
      if (mode === 'paused') {
        pauses++;
        b.windowElapsed();
        b.success();
      }
    }
    expect(pauses).toBe(0);
  });

  it('results from before a pause are forgotten once intake is back to normal', () => {
    const b = make({ window: 10, failureRate: 0.5 });
    for (let k = 0; k < 5; k++) b.failure();
    expect(b.mode).toBe('paused');
    b.windowElapsed();
    expect(b.success()).toBe('normal');
    // One more failure right after: not enough results yet to pause again.
    expect(b.failure()).toBe('normal');
  });
});
