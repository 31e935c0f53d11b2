import { RdyWindow, WAIT_MS } from '../../lib/consumer/rdy-window.js';

/** A window shrunk to 1 by two idle review periods, whose floor (offset + transit) is 0.2 ms. */
function idleWindow(max = 10): RdyWindow {
  const w = new RdyWindow(max);
  w.delivered(1, max, 1000.2, 1000);
  w.review(0);
  w.review(0);
  expect(w.size).toBe(1);
  return w;
}

describe('RdyWindow (adaptive RDY, pure)', () => {
  it('starts full, and shrinks nothing before a whole period of deliveries', () => {
    const w = new RdyWindow(100);
    expect(w.size).toBe(100);
    // No delivery yet (a paused channel, a connection in front of nothing): stays full.
    expect(w.review(0)).toBe(false);
    expect(w.review(0)).toBe(false);
    expect(w.needsReview(0)).toBe(false);
    // The first deliveries came late in a period: that period does not count.
    w.delivered(1, 100, 10.3, 10);
    expect(w.review(1)).toBe(false);
    expect(w.size).toBe(100);
    expect(w.needsReview(1)).toBe(true);
  });

  it('then shrinks to the most messages in flight in a review period, never below 1', () => {
    const w = new RdyWindow(100);
    w.delivered(1, 100, 10.3, 10);
    w.review(1);
    w.delivered(2, 100, 11.3, 11);
    w.freed(12);
    w.freed(12);
    expect(w.review(0)).toBe(true);
    expect(w.size).toBe(2);
    expect(w.review(0)).toBe(true);
    expect(w.size).toBe(1);
    expect(w.review(0)).toBe(false);
    expect(w.size).toBe(1);
    expect(w.needsReview(0)).toBe(false);
  });

  it('does not shrink while the window is in use', () => {
    const w = new RdyWindow(8);
    w.delivered(1, 8, 100.5, 100);
    w.review(1);
    for (let i = 2; i <= 8; i++) w.delivered(i, 8, 100 + i, 99 + i);
    w.freed(110);
    expect(w.review(7)).toBe(false);
    expect(w.size).toBe(8);
  });

  it('doubles when it stayed full for a whole period with nothing answered (a holding handler)', () => {
    const w = idleWindow();
    // One message held: full, and no slot freed during the period.
    w.delivered(1, 1, 2000.3, 2000);
    expect(w.review(1)).toBe(true);
    expect(w.size).toBe(2);
    w.delivered(2, 2, 2010.3, 2010);
    expect(w.review(2)).toBe(true);
    expect(w.size).toBe(4);
    // Answered meanwhile: no longer held, so no growth.
    w.delivered(4, 4, 2020.3, 2020);
    w.freed(2021);
    expect(w.review(4)).toBe(false);
    expect(w.size).toBe(4);
  });

  it('doubles when a message reached nsqd before the slot it took was freed, up to the maximum', () => {
    const w = idleWindow();
    // Answered at 2000; the next message reached nsqd at 2010: it did not wait. No growth.
    w.freed(2000);
    expect(w.delivered(1, 1, 2010.3, 2010)).toBe(false);
    // Answered at 2020; the next one had reached nsqd at 2015 (and waited for the slot).
    w.freed(2020);
    expect(w.delivered(1, 1, 2020.4, 2015)).toBe(true);
    expect(w.size).toBe(2);
    w.freed(2030);
    expect(w.delivered(2, 2, 2030.4, 2016)).toBe(true);
    expect(w.size).toBe(4);
    w.freed(2040);
    expect(w.delivered(4, 4, 2040.4, 2017)).toBe(true);
    w.freed(2050);
    expect(w.delivered(8, 8, 2050.4, 2018)).toBe(true);
    expect(w.size).toBe(10);
    w.freed(2060);
    expect(w.delivered(10, 10, 2060.4, 2019)).toBe(false);
  });

  it('does not grow for a wait of WAIT_MS or less (a stream that keeps up)', () => {
    const w = idleWindow();
    w.freed(3000);
    expect(w.delivered(1, 1, 3000.3, 3000 - WAIT_MS + 0.5)).toBe(false);
    expect(w.size).toBe(1);
  });

  it('does not grow when the window was not full (nsqd could have sent the message earlier)', () => {
    const w = new RdyWindow(10);
    w.delivered(1, 10, 1000.2, 1000);
    w.freed(1100);
    // 4 of 10 in flight: a message older than the last answer was held by nsqd's output
    // buffer or by our own event loop, not by RDY.
    expect(w.delivered(4, 10, 1101, 1080)).toBe(false);
    expect(w.size).toBe(10);
  });

  it('grows for a redelivery only when it takes a freed slot at once', () => {
    const w = idleWindow();
    // However old: a redelivery's age is its requeue delay, not a wait.
    w.freed(5000);
    expect(w.delivered(1, 1, 5010, undefined)).toBe(false);
    expect(w.size).toBe(1);
    w.freed(5020);
    // Within WAIT_MS of the slot freed: nsqd had it queued.
    expect(w.delivered(1, 1, 5020.5, undefined)).toBe(true);
    expect(w.size).toBe(2);
  });

  it('works with any clock offset between the hosts', () => {
    const w = new RdyWindow(10);
    const nsqdAhead = 5_000; // nsqd's clock 5 s ahead of ours
    w.delivered(1, 10, 1000.2, 1000 + nsqdAhead);
    w.review(0);
    w.review(0);
    w.freed(2000);
    expect(w.delivered(1, 1, 2010.3, 2010 + nsqdAhead)).toBe(false);
    w.freed(2020);
    expect(w.delivered(1, 1, 2020.4, 2015 + nsqdAhead)).toBe(true);
  });

  it('takes a new floor after a period in which nothing waited (a clock stepped forward)', () => {
    const w = idleWindow(); // floor 0.2 ms
    // Our clock jumps 1 s ahead: every message looks 1 s older than it is, so one grows the
    // window by mistake.
    w.freed(4000);
    expect(w.delivered(1, 1, 4000.3, 3000)).toBe(true);
    // Nothing filled the window for the rest of the period: its lowest age is the new floor.
    expect(w.review(0)).toBe(true);
    expect(w.size).toBe(1);
    w.freed(4010);
    expect(w.delivered(1, 1, 4010.3, 3010)).toBe(false);
    expect(w.size).toBe(1);
  });
});
