//! Turns a stream of batches into at most one state change per frame.
//!
//! The Channel handler only queues. The queue is folded into the state once
//! per `requestAnimationFrame`, so 20k events/s cost one render per frame, not
//! one per batch. A hidden window gets no animation frames: a timer flushes
//! then instead, and a queue that grows past `MAX_QUEUED` entries is folded in
//! at once, so the queue is bounded whatever the frame rate.

import type { UiBatch } from '../bindings/UiBatch';

export const MAX_QUEUED = 5000;
/** Flush this long after the first queued batch even without a frame. */
export const FALLBACK_MS = 250;

export interface FrameApi {
  request(cb: () => void): number;
  cancel(handle: number): void;
  setTimer(cb: () => void, ms: number): number;
  clearTimer(handle: number): void;
}

export const browserFrames: FrameApi = {
  request: (cb) => requestAnimationFrame(cb),
  cancel: (handle) => cancelAnimationFrame(handle),
  setTimer: (cb, ms) => window.setTimeout(cb, ms),
  clearTimer: (handle) => window.clearTimeout(handle),
};

export class BatchScheduler {
  private queue: UiBatch[] = [];
  private queued = 0;
  private frame: number | null = null;
  private timer: number | null = null;

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
    if (this.frame === null) this.frame = this.frames.request(() => this.flush());
    if (this.timer === null) this.timer = this.frames.setTimer(() => this.flush(), FALLBACK_MS);
  }

  /** Folds everything queued into the state now. */
  flush(): void {
    if (this.frame !== null) this.frames.cancel(this.frame);
    if (this.timer !== null) this.frames.clearTimer(this.timer);
    this.frame = null;
    this.timer = null;
    if (this.queue.length === 0) return;
    const batches = this.queue;
    this.queue = [];
    this.queued = 0;
    this.flushTo(batches);
  }

  get pendingBatches(): number {
    return this.queue.length;
  }
}
