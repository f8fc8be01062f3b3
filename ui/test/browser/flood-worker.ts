//! The flood's producer, in a worker: builds `UiBatch` JSON text at the
//! requested rate (at most `batchMax` events a batch, one batch at least every
//! 25 ms, as the Rust pipeline batches) and posts it to the page, which only
//! parses and delivers it (test/browser/page-mock.ts).

import type { DebugEntry } from '../../src/bindings/DebugEntry';
import type { Event } from '../../src/bindings/Event';
import type { FeedId } from '../../src/bindings/FeedId';
import type { FeedItem } from '../../src/bindings/FeedItem';
import { item, sampleEvents } from '../fixtures/events';

interface Start {
  rate: number;
  seconds: number;
  batchMax: number;
  seq: number;
  debugSeq: number;
  now: number;
}

function floodEvent(templates: readonly Event[], n: number): Event {
  const base = templates[n % templates.length] as Event;
  const ts = Date.now();
  switch (base.type) {
    case 'inventory:change': {
      const oldQuantity = n % 300;
      const newQuantity = (n * 7) % 300;
      return {
        ...base,
        productId: `P-${n % 5000}`,
        oldQuantity,
        newQuantity,
        changeAmount: newQuantity - oldQuantity,
        timestamp: ts,
      };
    }
    case 'order:status':
      return {
        ...base,
        orderId: `o-${n}`,
        orderNumber: `SO-2026-${String(n % 1_000_000).padStart(6, '0')}`,
        timestamp: ts,
      };
    case 'approval:request':
    case 'approval:approved':
    case 'approval:rejected':
      return {
        ...base,
        resourceId: `r-${n % 3000}`,
        resourceNumber: `SO-2026-${String(n % 3000).padStart(6, '0')}`,
        timestamp: ts,
      };
    case 'finance:payment':
    case 'finance:refund':
    case 'finance:overdue':
      return {
        ...base,
        recordNumber: `PM-2026-${String(n % 1_000_000).padStart(6, '0')}`,
        amount: (n % 100_000) + 0.5,
        timestamp: ts,
      };
    default:
      return { ...base, timestamp: ts } as Event;
  }
}

self.onmessage = (ev: MessageEvent<Start>) => {
  const { rate, seconds, batchMax, now } = ev.data;
  let { seq, debugSeq } = ev.data;
  // Critical alerts would each raise a banner; the flood is ordinary traffic.
  const templates = sampleEvents(now).filter((e) => e.type !== 'system:alert');
  const total = rate * seconds;
  const unread: { [key in FeedId]?: number } = {};
  const start = performance.now();
  let sent = 0;
  const tick = (): void => {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate));
    while (sent < due) {
      const n = Math.min(batchMax, due - sent);
      const items: FeedItem[] = [];
      const debug: DebugEntry[] = [];
      for (let k = 0; k < n; k++) {
        const it = item(seq++, floodEvent(templates, sent + k));
        items.push(it);
        unread[it.feed] = (unread[it.feed] ?? 0) + 1;
        debug.push({
          seq: debugSeq++,
          channel: `ws:${it.channel}`,
          receivedAt: it.receivedAt,
          outcome: 'typed',
          raw: JSON.stringify(it.event),
        });
      }
      sent += n;
      const counters = { received: sent, typed: sent, legacy: 0, malformed: 0, duplicates: 0 };
      postMessage({ text: JSON.stringify({ items, debug, toasts: [], unread, counters }), sent });
    }
    if (sent >= total) postMessage({ done: true });
    else setTimeout(tick, 25);
  };
  tick();
};
