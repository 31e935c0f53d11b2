import { RdyWindow, WAIT_MS } from '../../lib/consumer/rdy-window.js';

describe('RdyWindow (adaptive RDY, pure)', () => {
  it('starts full, then shrinks to the most messages in flight in a review period', () => {
    const w = new RdyWindow(100);
    expect(w.size).toBe(100);
    w.delivered(1, 100, 0.3);
    w.delivered(2, 100, 0.3);
    expect(w.review(0)).toBe(true);
    expect(w.size).toBe(2);
    // Nothing in flight for a period: down to 1, never 0.
    expect(w.review(0)).toBe(true);
    expect(w.size).toBe(1);
    expect(w.review(0)).toBe(false);
    expect(w.size).toBe(1);
  });

  it('does not shrink while the window is in use', () => {
    const w = new RdyWindow(8);
    for (let i = 1; i <= 8; i++) w.delivered(i, 8, 0.5);
    expect(w.review(8)).toBe(false);
    expect(w.size).toBe(8);
    // Still 8 in flight at the review: the next period starts from there.
    expect(w.review(0)).toBe(false);
  });

  it('doubles when a full window kept a message waiting at nsqd, up to the maximum', () => {
    const w = new RdyWindow(10);
    w.delivered(1, 10, 0.2);
    w.review(0);
    w.review(0);
    expect(w.size).toBe(1);
    // Fills the window; arrives as fresh as the first: nothing waited.
    expect(w.delivered(1, 1, 0.2)).toBe(false);
    // Fills it again and is older than the freshest by more than WAIT_MS: it waited for RDY.
    expect(w.delivered(1, 1, 0.2 + WAIT_MS + 1)).toBe(true);
    expect(w.size).toBe(2);
    expect(w.delivered(2, 2, 10)).toBe(true);
    expect(w.size).toBe(4);
    expect(w.delivered(4, 4, 20)).toBe(true);
    expect(w.delivered(8, 8, 30)).toBe(true);
    expect(w.size).toBe(10);
    expect(w.delivered(10, 10, 40)).toBe(false);
  });

  it('does not grow for an old message while the window was not full (nsqd could send it)', () => {
    const w = new RdyWindow(10);
    w.delivered(1, 10, 0);
    w.review(0);
    w.review(0);
    w.delivered(1, 1, 0);
    w.review(0); // a new period: the window has not been full in it yet
    expect(w.size).toBe(1);
    const grown = new RdyWindow(10);
    // 4 of 10: an old message here was held by nsqd's output buffer, not by RDY.
    expect(grown.delivered(4, 10, 0)).toBe(false);
    expect(grown.delivered(4, 10, 20)).toBe(false);
    expect(grown.size).toBe(10);
  });

  it('ignores redeliveries (their age is a requeue delay)', () => {
    const w = new RdyWindow(10);
    w.delivered(1, 10, 0.1);
    w.review(0);
    w.review(0);
    expect(w.delivered(1, 1, undefined)).toBe(false);
    expect(w.size).toBe(1);
  });

  it('works with a clock offset between hosts: only differences of age count', () => {
    const w = new RdyWindow(10);
    const offset = -5_000; // our clock 5 s behind nsqd's
    w.delivered(1, 10, offset + 0.2);
    w.review(0);
    w.review(0);
    expect(w.delivered(1, 1, offset + 0.3)).toBe(false);
    expect(w.delivered(1, 1, offset + 0.3 + WAIT_MS + 1)).toBe(true);
  });

  it('takes a new floor after a period with nothing waiting (a clock stepped forward)', () => {
    const w = new RdyWindow(10);
    w.delivered(1, 10, 0.2);
    w.review(0);
    w.review(0);
    // The clock jumps 1 s: every age is 1 s higher, but a window of 2 with 1 in flight was
    // never full, so nothing waited: the period's lowest age becomes the floor.
    w.size = 2;
    w.delivered(1, 2, 1000.2);
    w.review(0);
    w.size = 1;
    expect(w.delivered(1, 1, 1000.3)).toBe(false);
    expect(w.size).toBe(1);
  });
});
