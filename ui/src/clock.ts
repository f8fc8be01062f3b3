//! One shared ticking clock for every relative time on screen.
//!
//! A single interval runs while at least one component listens, and stops
//! when none does; every `useNow()` gets the same `now`, so all "N s ago"
//! labels and the reconnect countdown change together, once a second.

import { useEffect, useState } from 'preact/hooks';

type Listener = (now: number) => void;

const listeners = new Set<Listener>();
let timer: ReturnType<typeof setInterval> | null = null;
export const TICK_MS = 1000;

function tick(): void {
  const now = Date.now();
  for (const listener of listeners) listener(now);
}

export function subscribeClock(listener: Listener): () => void {
  listeners.add(listener);
  if (timer === null) timer = setInterval(tick, TICK_MS);
  return () => {
    listeners.delete(listener);
    if (listeners.size === 0 && timer !== null) {
      clearInterval(timer);
      timer = null;
    }
  };
}

/** Number of listeners (tests check the timer stops with the last one). */
export function clockListeners(): number {
  return listeners.size;
}

export function clockRunning(): boolean {
  return timer !== null;
}

/** The current time, re-rendering the caller once per tick. */
export function useNow(): number {
  const [now, setNow] = useState(Date.now);
  useEffect(() => subscribeClock(setNow), []);
  return now;
}
