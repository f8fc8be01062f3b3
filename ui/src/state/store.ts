//! The dashboard's state and the pure functions that change it.
//!
//! State is replaced, never mutated: each change returns a new `AppState`
//! sharing whatever did not change, so Preact can compare by identity. Every
//! collection is capped (feeds and the debug log keep their newest
//! `FEED_CAP` / `DEBUG_CAP` entries and drop the oldest), so memory stays flat
//! however fast events come; the full record lives in Rust's local history.

import { FEED_IDS, WINDOW_FEED_CAP } from '../bindings/constants';
import type { DebugCounters } from '../bindings/DebugCounters';
import type { DebugEntry } from '../bindings/DebugEntry';
import type { FeedId } from '../bindings/FeedId';
import type { FeedItem } from '../bindings/FeedItem';
import type { Settings } from '../bindings/Settings';
import type { Snapshot } from '../bindings/Snapshot';
import type { SourceStatus } from '../bindings/SourceStatus';
import type { Toast } from '../bindings/Toast';
import type { UiBatch } from '../bindings/UiBatch';
import { foldPending } from './approvals';

/** Newest items kept per feed in memory; older ones are in Rust's history. */
export const FEED_CAP = WINDOW_FEED_CAP;
/** Older items loaded from history per feed ("load older"). */
export const OLDER_CAP = 2000;
export const DEBUG_CAP = 2000;
/** Distinct malformed reasons counted (with "other"); later new reasons go under "other". */
export const REASON_CAP = 100;
/** The key under which reasons beyond the cap are counted. */
export const OTHER_REASONS = '…';
export const TOAST_CAP = 5;
export const CRITICAL_CAP = 50;

export interface ToastEntry {
  id: number;
  toast: Toast;
  at: number;
}

export interface FocusTarget {
  feed: FeedId;
  itemId: string;
  /** Changes on every request, so asking twice for one item works twice. */
  nonce: number;
}

export type PerFeed<T> = Record<FeedId, T>;

export interface AppState {
  status: SourceStatus;
  /** Oldest first, at most FEED_CAP each. */
  feeds: PerFeed<readonly FeedItem[]>;
  /** Items from history older than `feeds`, newest first. */
  older: PerFeed<readonly FeedItem[]>;
  olderDone: PerFeed<boolean>;
  /** Events received per feed since the window opened (not capped). */
  totals: PerFeed<number>;
  unread: PerFeed<number>;
  /** Open approval requests by resource, oldest first. */
  pending: ReadonlyMap<string, FeedItem>;
  /** Unacknowledged `critical` system notices, oldest first. */
  criticals: readonly FeedItem[];
  debug: readonly DebugEntry[];
  /** Malformed reasons and how often each was seen since the last clear. */
  reasons: ReadonlyMap<string, number>;
  counters: DebugCounters;
  settings: Settings;
  configError: string | null;
  /** What the core must tell the user (a damaged history set aside, a token dropped). */
  notice: string | null;
  /** Snoozed approval requests: item id → when they remind again (ms since epoch). */
  snoozed: Readonly<Record<string, number>>;
  nativeNotifications: boolean;
  pausedUntil: number | null;
  toasts: readonly ToastEntry[];
  focus: FocusTarget | null;
  /** Highest item / debug `seq` applied, to drop overlap between snapshot and stream. */
  lastSeq: number;
  lastDebugSeq: number;
  nextLocalId: number;
}

function perFeed<T>(make: (feed: FeedId) => T): PerFeed<T> {
  const out = {} as PerFeed<T>;
  for (const feed of FEED_IDS) out[feed] = make(feed);
  return out;
}

export function isCritical(item: FeedItem): boolean {
  const e = item.event;
  return (
    (e.type === 'system:alert' || e.type === 'system:maintenance' || e.type === 'system:update') &&
    e.level === 'critical'
  );
}

export function initialState(snapshot: Snapshot): AppState {
  const feeds = perFeed((feed) => capTail(snapshot.feeds[feed] ?? [], FEED_CAP));
  const all = FEED_IDS.flatMap((feed) => feeds[feed]).sort((a, b) => a.seq - b.seq);
  const debug = capTail(snapshot.debug, DEBUG_CAP);
  return {
    status: snapshot.status,
    feeds,
    older: perFeed(() => []),
    olderDone: perFeed(() => false),
    totals: perFeed((feed) => feeds[feed].length),
    unread: perFeed((feed) => snapshot.unread[feed] ?? 0),
    pending: foldPending(new Map(), all),
    criticals: capTail(
      all.filter((item) => isCritical(item) && !item.read),
      CRITICAL_CAP,
    ),
    debug,
    reasons: countReasons(new Map(), debug),
    counters: snapshot.counters,
    settings: snapshot.settings,
    configError: snapshot.configError,
    notice: snapshot.notice ?? null,
    snoozed: snapshot.snoozed ?? {},
    nativeNotifications: snapshot.nativeNotifications,
    pausedUntil: snapshot.pausedUntil,
    toasts: [],
    focus: null,
    lastSeq: all.reduce((max, item) => Math.max(max, item.seq), 0),
    lastDebugSeq: debug.reduce((max, entry) => Math.max(max, entry.seq), 0),
    nextLocalId: 1,
  };
}

/** The newest `cap` entries of `list` (the list itself when short enough). */
export function capTail<T>(list: readonly T[], cap: number): readonly T[] {
  return list.length > cap ? list.slice(list.length - cap) : list;
}

/** `list` + `extra`, keeping the newest `cap`. Copies only what is kept. */
export function appendCapped<T>(list: readonly T[], extra: readonly T[], cap: number): readonly T[] {
  if (extra.length === 0) return list;
  if (extra.length >= cap) return extra.slice(extra.length - cap);
  const keepOld = Math.min(list.length, cap - extra.length);
  const out = list.slice(list.length - keepOld);
  for (const e of extra) out.push(e);
  return out;
}

function countReasons(
  reasons: ReadonlyMap<string, number>,
  entries: readonly DebugEntry[],
): ReadonlyMap<string, number> {
  let next: Map<string, number> | null = null;
  for (const entry of entries) {
    if (entry.outcome !== 'malformed') continue;
    next ??= new Map(reasons);
    let reason = entry.reason ?? '';
    if (!next.has(reason)) {
      // REASON_CAP - 1 named reasons, and '…' for the rest.
      const named = next.size - (next.has(OTHER_REASONS) ? 1 : 0);
      if (named >= REASON_CAP - 1) reason = OTHER_REASONS;
    }
    next.set(reason, (next.get(reason) ?? 0) + 1);
  }
  return next ?? reasons;
}

/** Applies a run of batches in order (one animation frame's worth). */
export function applyBatches(state: AppState, batches: readonly UiBatch[], now: number): AppState {
  if (batches.length === 0) return state;
  const newItems: FeedItem[] = [];
  const newDebug: DebugEntry[] = [];
  let { lastSeq, lastDebugSeq, status, counters, unread, focus, nextLocalId, notice, snoozed } = state;
  let toasts: ToastEntry[] | null = null;
  for (const batch of batches) {
    for (const item of batch.items) {
      // The stream may repeat what the snapshot already had; seq is global and increasing.
      if (item.seq <= lastSeq) continue;
      lastSeq = item.seq;
      newItems.push(item);
    }
    for (const entry of batch.debug) {
      if (entry.seq <= lastDebugSeq) continue;
      lastDebugSeq = entry.seq;
      newDebug.push(entry);
    }
    if (batch.status) status = batch.status;
    if (batch.counters) counters = batch.counters;
    if (batch.unread) unread = { ...unread, ...batch.unread };
    if (batch.toasts.length) {
      toasts ??= [...state.toasts];
      for (const toast of batch.toasts) toasts.push({ id: nextLocalId++, toast, at: now });
    }
    if (batch.focus) focus = { ...batch.focus, nonce: nextLocalId++ };
    if (batch.notice) notice = batch.notice;
    if (batch.snoozed) snoozed = batch.snoozed;
  }

  let feeds = state.feeds;
  let totals = state.totals;
  let criticals = state.criticals;
  if (newItems.length) {
    const byFeed = new Map<FeedId, FeedItem[]>();
    for (const item of newItems) {
      const list = byFeed.get(item.feed);
      if (list) list.push(item);
      else byFeed.set(item.feed, [item]);
    }
    feeds = { ...feeds };
    totals = { ...totals };
    for (const [feed, list] of byFeed) {
      feeds[feed] = appendCapped(feeds[feed] ?? [], list, FEED_CAP);
      totals[feed] = (totals[feed] ?? 0) + list.length;
    }
    const newCriticals = newItems.filter((item) => isCritical(item) && !item.read);
    if (newCriticals.length) criticals = appendCapped(criticals, newCriticals, CRITICAL_CAP);
  }

  return {
    ...state,
    status,
    notice,
    snoozed,
    counters,
    unread,
    focus,
    nextLocalId,
    lastSeq,
    lastDebugSeq,
    feeds,
    totals,
    criticals,
    pending: newItems.length ? foldPending(state.pending, newItems) : state.pending,
    debug: appendCapped(state.debug, newDebug, DEBUG_CAP),
    reasons: countReasons(state.reasons, newDebug),
    toasts: toasts ? toasts.slice(-TOAST_CAP) : state.toasts,
  };
}

function markInList(list: readonly FeedItem[], ids: ReadonlySet<string> | null): readonly FeedItem[] {
  let changed = false;
  const out = list.map((item) => {
    if (item.read || (ids && !ids.has(item.id))) return item;
    changed = true;
    return { ...item, read: true };
  });
  return changed ? out : list;
}

/** Marks items read locally (the Rust side is told by the caller). */
export function markRead(state: AppState, ids: readonly string[]): AppState {
  const set = new Set(ids);
  const feeds = { ...state.feeds };
  const older = { ...state.older };
  const unread = { ...state.unread };
  for (const feed of FEED_IDS) {
    const before = feeds[feed];
    feeds[feed] = markInList(before, set);
    older[feed] = markInList(older[feed], set);
    if (feeds[feed] !== before) {
      const newlyRead = before.filter((item) => !item.read && set.has(item.id)).length;
      unread[feed] = Math.max(0, unread[feed] - newlyRead);
    }
  }
  return { ...state, feeds, older, unread };
}

/** Marks one feed, or all feeds when `feed` is null, read locally. */
export function markAllRead(state: AppState, feed: FeedId | null): AppState {
  const feeds = { ...state.feeds };
  const older = { ...state.older };
  const unread = { ...state.unread };
  for (const id of FEED_IDS) {
    if (feed !== null && id !== feed) continue;
    feeds[id] = markInList(feeds[id], null);
    older[id] = markInList(older[id], null);
    unread[id] = 0;
  }
  return { ...state, feeds, older, unread };
}

export function acknowledge(state: AppState, itemId: string): AppState {
  return {
    ...markRead(state, [itemId]),
    criticals: state.criticals.filter((item) => item.id !== itemId),
  };
}

export function dismissToast(state: AppState, id: number): AppState {
  return { ...state, toasts: state.toasts.filter((t) => t.id !== id) };
}

export function clearDebug(state: AppState): AppState {
  return { ...state, debug: [], reasons: new Map() };
}

/** Appends a page of history (newest first) below what a feed already shows. */
export function addOlder(state: AppState, feed: FeedId, items: readonly FeedItem[], limit: number): AppState {
  const have = new Set(state.feeds[feed].map((i) => i.id));
  for (const i of state.older[feed]) have.add(i.id);
  const fresh = items.filter((i) => !have.has(i.id)).sort((a, b) => b.seq - a.seq);
  const merged = [...state.older[feed], ...fresh];
  return {
    ...state,
    older: { ...state.older, [feed]: merged.slice(0, OLDER_CAP) },
    olderDone: {
      ...state.olderDone,
      [feed]: items.length < limit || merged.length >= OLDER_CAP,
    },
  };
}

/** The smallest `seq` a feed shows, for paging history backwards. */
export function oldestSeq(state: AppState, feed: FeedId): number | null {
  const older = state.older[feed];
  const last = older[older.length - 1];
  if (last) return last.seq;
  const first = state.feeds[feed][0];
  return first ? first.seq : null;
}

export function setSettings(state: AppState, settings: Settings): AppState {
  return { ...state, settings };
}

export function focusOn(state: AppState, feed: FeedId, itemId: string): AppState {
  return { ...state, focus: { feed, itemId, nonce: state.nextLocalId }, nextLocalId: state.nextLocalId + 1 };
}

/** Finds which feed holds an item (for a toast that names only the item). */
export function feedOfItem(state: AppState, itemId: string): FeedId | null {
  for (const feed of FEED_IDS) {
    if (state.feeds[feed].some((i) => i.id === itemId)) return feed;
    if (state.older[feed].some((i) => i.id === itemId)) return feed;
  }
  return null;
}

/**
 * The signed-in user: the Redis source's user id, else the id in the user's
 * own notification channel (`user:{id}:notifications`) when the gateway's
 * token decides it.
 */
export function currentUser(state: AppState): string | null {
  const configured = state.settings.source.userId;
  if (configured) return configured;
  const mine = state.feeds.mine[state.feeds.mine.length - 1];
  const match = mine ? /^(?:ws:)?user:(.+):notifications$/.exec(mine.channel) : null;
  return match?.[1] ?? null;
}

/** Newest-first rows of a feed: live items, then older ones from history. */
export function rowsOf(state: AppState, feed: FeedId): FeedItem[] {
  const live = state.feeds[feed];
  const out: FeedItem[] = new Array(live.length);
  for (let i = 0; i < live.length; i++) out[i] = live[live.length - 1 - i] as FeedItem;
  for (const item of state.older[feed]) out.push(item);
  return out;
}
