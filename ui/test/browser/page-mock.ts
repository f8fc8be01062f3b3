//! The Rust side, as the page sees it, for the browser tests.
//!
//! Bundled by the test runner (esbuild, IIFE) and injected before the app's
//! own scripts. It installs Tauri's IPC mock (`@tauri-apps/api/mocks`
//! `mockIPC`), answers the app's commands from the fixtures, records every
//! call, and delivers `UiBatch`es through the app's real `Channel` exactly
//! as Tauri does (the channel callback with an ordered `index`). The Node
//! side drives it through `window.__mock`.

import { mockIPC } from '@tauri-apps/api/mocks';
import type { DebugEntry } from '../../src/bindings/DebugEntry';
import type { Event } from '../../src/bindings/Event';
import type { FeedItem } from '../../src/bindings/FeedItem';
import type { Language } from '../../src/bindings/Language';
import type { Settings } from '../../src/bindings/Settings';
import type { Snapshot } from '../../src/bindings/Snapshot';
import type { UiBatch } from '../../src/bindings/UiBatch';
import { item, poison, sampleDebug, sampleEvents, sampleItems, snapshotOf, USER } from '../fixtures/events';

export interface MockConfig {
  fixture: 'sample' | 'xss' | 'empty';
  language: Language;
}

/** Strings that would run script or add elements if rendered as HTML. */
export const PAYLOADS = [
  '<img src=x onerror="window.__pwned=(window.__pwned||0)+1" data-xss>',
  '<script data-xss>window.__pwned=1</script>',
  '"><svg data-xss onload="window.__pwned=1"></svg>',
  '<a data-xss href="javascript:window.__pwned=1">click</a>',
  '<iframe data-xss src="javascript:window.__pwned=1"></iframe>',
  'javascript:window.__pwned=1',
  "{{constructor.constructor('window.__pwned=1')()}}",
  '<b data-xss>bold</b>&amp;&lt;',
];

interface Call {
  cmd: string;
  args: unknown;
}

interface FloodOptions {
  /** Events per second offered to the page. */
  rate: number;
  seconds: number;
  /** Largest batch, as the Rust side caps them (≤ 500 events). */
  batchMax: number;
}

export interface FloodResult {
  sent: number;
  batches: number;
  ms: number;
  frames: number;
  start: number;
  end: number;
}

interface MockApi {
  calls: Call[];
  snapshot: Snapshot;
  emit(batch: Partial<UiBatch>): void;
  /** Items for these events, with fresh `seq`s after everything so far. */
  items(events: Event[]): FeedItem[];
  flood(options: FloodOptions): Promise<FloodResult>;
  longTasks: { start: number; duration: number }[];
}

declare global {
  interface Window {
    __mock: MockApi;
    __mockConfig?: MockConfig;
    __pwned?: number;
  }
}

const config: MockConfig = window.__mockConfig ?? { fixture: 'sample', language: 'en' };
const now = Date.now();

function buildSnapshot(): Snapshot {
  if (config.fixture === 'empty') return snapshotOf([], [], config.language);
  if (config.fixture === 'sample') {
    const items = sampleItems(now);
    return snapshotOf(items, sampleDebug(now, items), config.language);
  }
  let n = 0;
  const payload = (): string => PAYLOADS[n++ % PAYLOADS.length] as string;
  const items = sampleEvents(now)
    .map((e) => poison(e, payload))
    .map((e, i) => item(i + 1, e, false));
  for (const i of items) {
    if (i.event.type === 'data:change') i.event.changes = { [payload()]: payload() };
  }
  const debug: DebugEntry[] = sampleDebug(now, items).map((d) => ({
    ...d,
    channel: `ws:${payload()}`,
    raw: payload(),
    reason: d.outcome === 'malformed' ? payload() : undefined,
  })) as DebugEntry[];
  const snap = snapshotOf(items, debug, config.language);
  snap.status = {
    kind: 'redis',
    url: payload(),
    connection: { state: 'offline', reason: payload() },
    missedSince: now - 3_600_000,
  };
  snap.configError = payload();
  snap.notice = payload();
  snap.settings = poison(snap.settings, payload);
  snap.settings.language = config.language;
  return snap;
}

const snapshot = buildSnapshot();
let settings: Settings = snapshot.settings;
let nextSeq = 1_000_000;
let nextDebugSeq = 1_000_000;
let channelId: number | null = null;
let index = 0;

const calls: Call[] = [];

mockIPC((cmd, args) => {
  calls.push({ cmd, args: cmd === 'subscribe' ? null : args });
  switch (cmd) {
    case 'subscribe':
      channelId = (args as { channel: { id: number } }).channel.id;
      return null;
    case 'snapshot':
      return structuredClone(snapshot);
    case 'history':
      return [];
    case 'search': {
      // Substring over the snapshot's items, newest first: enough for the
      // screen; the real search is tested in Rust (tests/search.rs).
      const { query } = args as { query: { text: string } };
      const found = Object.values(snapshot.feeds)
        .flat()
        .filter((i) => i !== undefined && JSON.stringify(i.event).includes(query.text))
        .sort((a, b) => b.seq - a.seq);
      return { items: found, more: false, tookMs: 3 };
    }
    case 'export_search':
      return '/home/user/Downloads/tidings-search-20261203-120000.csv';
    case 'get_settings':
      return settings;
    case 'set_settings': {
      const edited = (args as { settings: Settings }).settings;
      // A threshold of 999 plays a settings file Rust cannot write.
      if (edited.lowStockThreshold === 999) {
        throw { code: 'saveFailed', message: 'cannot write settings to /ro/tidings-desk.toml: read-only' };
      }
      settings = edited;
      return settings;
    }
    case 'pause_notifications':
      return Date.now() + (args as { minutes: number }).minutes * 60_000;
    case 'snooze': {
      const { howLong } = args as { howLong: { minutes: number } | 'tomorrowNine' };
      return Date.now() + (howLong === 'tomorrowNine' ? 86_400_000 : howLong.minutes * 60_000);
    }
    case 'mark_read':
    case 'mark_all_read':
    case 'open_item':
    case 'acknowledge':
    case 'send_test_notification':
    case 'report_ui_error':
      return null;
    default:
      throw new Error(`the mock does not know the command ${cmd}`);
  }
});

function emit(batch: Partial<UiBatch>): void {
  if (channelId === null) throw new Error('the app has not subscribed yet');
  const full: UiBatch = { items: [], debug: [], toasts: [], ...batch };
  (
    window as unknown as { __TAURI_INTERNALS__: { runCallback(id: number, data: unknown): void } }
  ).__TAURI_INTERNALS__.runCallback(channelId, { index: index++, message: full });
}

function items(events: Event[]): FeedItem[] {
  return events.map((e) => item(nextSeq++, e));
}

const longTasks: { start: number; duration: number }[] = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) longTasks.push({ start: e.startTime, duration: e.duration });
}).observe({ type: 'longtask', buffered: true });

/**
 * Offers `rate` events/s for `seconds` to the app. The batch text is built
 * in a worker (test/browser/flood-worker.ts), as the Rust side builds it off
 * the page's thread; the page parses each message and hands it to the
 * app's Channel in a task of its own, as Tauri delivers channel messages.
 */
function flood(options: FloodOptions): Promise<FloodResult> {
  let sent = 0;
  let batches = 0;
  let frames = 0;
  let done = false;
  const countFrame = (): void => {
    frames++;
    if (!done) requestAnimationFrame(countFrame);
  };
  requestAnimationFrame(countFrame);
  const start = performance.now();
  const worker = new Worker('/__test/flood-worker.js');
  return new Promise((resolve, reject) => {
    worker.onerror = (e) => reject(new Error(`flood worker: ${e.message}`));
    worker.onmessage = (ev: MessageEvent<{ text?: string; sent?: number; done?: boolean }>) => {
      if (ev.data.text !== undefined) {
        emit(JSON.parse(ev.data.text) as UiBatch);
        batches++;
        sent = ev.data.sent ?? sent;
      }
      if (ev.data.done) {
        done = true;
        worker.terminate();
        const end = performance.now();
        resolve({ sent, batches, ms: end - start, frames, start, end });
      }
    };
    worker.postMessage({ ...options, seq: nextSeq, debugSeq: nextDebugSeq, now });
    nextSeq += options.rate * options.seconds;
    nextDebugSeq += options.rate * options.seconds;
  });
}

window.__mock = { calls, snapshot, emit, items, flood, longTasks };
export { USER };
