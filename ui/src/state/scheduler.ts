//! Turns a stream of batches into at most one state change per frame.
//!
//! The Channel handler only queues. The queue is folded into the state in
//! one go at an animation frame, so 20k events/s cost one render per frame,
//! not one per batch. Two limits keep a flood from eating the window:
//!
//! - at most one fold every `MIN_INTERVAL_MS` (ten a second): nobody reads a
//!   list that changes faster, and every fold costs a render, a layout and a
//!   paint of the visible rows. A quiet stream is not delayed by it: a batch
//!   after a pause is folded at the next frame.
//! - a hidden window gets no animation frames: a timer folds the queue then
//!   instead (`FALLBACK_MS` after the frame was asked for), and a queue that
//!   grows past `MAX_QUEUED` entries is folded at once, so the queue stays
//!   bounded whatever the frame rate.

import type { UiBatch } from '../bindings/UiBatch';

/** Queued entries (items + debug entries + batches) that force a fold now. */
export const MAX_QUEUED = 20_000;
/** Shortest time between two folds. */
export const MIN_INTERVAL_MS = 100;
/** Fold this long after asking for a frame even if none comes. */
export const FALLBACK_MS = 250;

export interface FrameApi {
  now(): number;
  request(cb: () => void): number;
  cancel(handle: number): void;
  setTimer(cb: () => void, ms: number): number;
  clearTimer(handle: number): void;
}

export const browserFrames: FrameApi = {
  now: () => performance.now(),
  request: (cb) => requestAnimationFrame(cb),
  cancel: (handle) => cancelAnimationFrame(handle),
  setTimer: (cb, ms) => window.setTimeout(cb, ms),
  clearTimer: (handle) => window.clearTimeout(handle),
};

export class BatchScheduler {
  private queue: UiBatch[] = [];
  private queued = 0;
  private frame: number | null = null;
  /** Waiting out `MIN_INTERVAL_MS` before asking for a frame. */
  private delay: number | null = null;
  /** Folds if the frame asked for does not come (hidden window). */
  private fallback: number | null = null;
  private lastFlush = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly flushTo: (batches: UiBatch[]) => void,
    private readonly frames: FrameApi = browserFrames,
  ) {}

  push(batch: UiBatch): void {
    this.queue.push(batch);
    this.queued += batch.items.length + batch.debug.length + 1;
    if (this.queued >= MAX_QUEUED) {
      this.flush();
      return;
    }
    if (this.frame !== null || this.delay !== null) return;
    const wait = this.lastFlush + MIN_INTERVAL_MS - this.frames.now();
    if (wait > 0) {
      this.delay = this.frames.setTimer(() => {
        this.delay = null;
        this.askFrame();
      }, wait);
    } else {
      this.askFrame();
    }
  }

  private askFrame(): void {
    this.frame = this.frames.request(() => {
      this.frame = null;
      this.flush();
    });
    this.fallback = this.frames.setTimer(() => {
      this.fallback = null;
      this.flush();
    }, FALLBACK_MS);
  }

  /** Folds everything queued into the state now. */
  flush(): void {
    if (this.frame !== null) this.frames.cancel(this.frame);
    if (this.delay !== null) this.frames.clearTimer(this.delay);
    if (this.fallback !== null) this.frames.clearTimer(this.fallback);
    this.frame = null;
    this.delay = null;
    this.fallback = null;
    if (this.queue.length === 0) return;
    const batches = this.queue;
    this.queue = [];
    this.queued = 0;
    this.lastFlush = this.frames.now();
    this.flushTo(batches);
  }

  get pendingBatches(): number {
    return this.queue.length;
  }
}
