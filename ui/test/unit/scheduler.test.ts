// The batch scheduler: batches are queued and folded into the state in one
// go at an animation frame, at most every MIN_INTERVAL_MS, with a timer
// fallback when no frame comes and an immediate fold when the queue is full.
import { describe, expect, it } from 'vitest';
import type { UiBatch } from '../../src/bindings/UiBatch';
import { BatchScheduler, FALLBACK_MS, MAX_QUEUED, MIN_INTERVAL_MS, type FrameApi } from '../../src/state/scheduler';

/** A hand-driven clock, frame source and timer queue. */
class FakeFrames implements FrameApi {
  time = 1000;
  frames = new Map<number, () => void>();
  timers = new Map<number, { at: number; cb: () => void }>();
  private next = 1;
  now = (): number => this.time;
  request = (cb: () => void): number => {
    const id = this.next++;
    this.frames.set(id, cb);
    return id;
  };
  cancel = (id: number): void => void this.frames.delete(id);
  setTimer = (cb: () => void, ms: number): number => {
    const id = this.next++;
    this.timers.set(id, { at: this.time + ms, cb });
    return id;
  };
  clearTimer = (id: number): void => void this.timers.delete(id);
  /** Runs the pending animation frames. */
  frame(): void {
    const due = [...this.frames.values()];
    this.frames.clear();
    for (const cb of due) cb();
  }
  /** Moves the clock on, firing timers that fall due. */
  advance(ms: number): void {
    this.time += ms;
    for (const [id, t] of [...this.timers]) {
      if (t.at <= this.time && this.timers.has(id)) {
        this.timers.delete(id);
        t.cb();
      }
    }
  }
}

const batch = (items = 1): UiBatch => ({
  items: Array.from({ length: items }, () => ({}) as UiBatch['items'][number]),
  debug: [],
  toasts: [],
});

function setup() {
  const frames = new FakeFrames();
  const folds: UiBatch[][] = [];
  const scheduler = new BatchScheduler((b) => folds.push(b), frames);
  return { frames, folds, scheduler };
}

describe('BatchScheduler', () => {
  it('folds every batch queued before a frame in one go at that frame', () => {
    const { frames, folds, scheduler } = setup();
    scheduler.push(batch());
    scheduler.push(batch());
    scheduler.push(batch());
    expect(folds).toHaveLength(0);
    frames.frame();
    expect(folds).toHaveLength(1);
    expect(folds[0]).toHaveLength(3);
  });

  it('keeps batch order', () => {
    const { frames, folds, scheduler } = setup();
    const a = batch(1);
    const b = batch(2);
    scheduler.push(a);
    scheduler.push(b);
    frames.frame();
    expect(folds[0]).toEqual([a, b]);
    expect(folds[0]?.[0]).toBe(a);
  });

  it('does not fold again within MIN_INTERVAL_MS of the last fold', () => {
    const { frames, folds, scheduler } = setup();
    scheduler.push(batch());
    frames.frame();
    scheduler.push(batch());
    frames.frame(); // no frame was asked for yet
    expect(folds).toHaveLength(1);
    frames.advance(MIN_INTERVAL_MS);
    frames.frame();
    expect(folds).toHaveLength(2);
  });

  it('folds at the next frame after a quiet spell (no added delay)', () => {
    const { frames, folds, scheduler } = setup();
    scheduler.push(batch());
    frames.frame();
    frames.advance(5 * MIN_INTERVAL_MS);
    scheduler.push(batch());
    frames.frame();
    expect(folds).toHaveLength(2);
  });

  it('folds on a timer when no animation frame comes (hidden window)', () => {
    const { frames, folds, scheduler } = setup();
    scheduler.push(batch());
    frames.advance(FALLBACK_MS - 1);
    expect(folds).toHaveLength(0);
    frames.advance(1);
    expect(folds).toHaveLength(1);
    frames.frame(); // the frame that was asked for was cancelled
    expect(folds).toHaveLength(1);
  });

  it('folds at once when the queue reaches MAX_QUEUED entries', () => {
    const { folds, scheduler } = setup();
    scheduler.push(batch(MAX_QUEUED / 2));
    expect(folds).toHaveLength(0);
    scheduler.push(batch(MAX_QUEUED / 2));
    expect(folds).toHaveLength(1);
    expect(scheduler.pendingBatches).toBe(0);
  });

  it('an empty flush does nothing', () => {
    const { folds, scheduler } = setup();
    scheduler.flush();
    expect(folds).toHaveLength(0);
  });
});
