//! What the user can do, as functions that tell the Rust side (through
//! `ipc`) and update the local state at once, so the screen answers
//! immediately. A command that fails shows as a toast with the reason.

import type { FeedId } from './bindings/FeedId';
import type { FeedItem } from './bindings/FeedItem';
import type { SearchQuery } from './bindings/SearchQuery';
import type { SearchResults } from './bindings/SearchResults';
import type { Language } from './bindings/Language';
import type { Settings } from './bindings/Settings';
import type { SnoozeFor } from './bindings/SnoozeFor';
import { errorText, type Ipc } from './ipc';
import type { Translator } from './i18n';
import type { Store } from './state/observable';
import {
  acknowledge,
  addOlder,
  clearDebug,
  dismissToast,
  feedOfItem,
  focusOn,
  markAllRead,
  markRead,
  OLDER_CAP,
  oldestSeq,
  setSettings,
  TOAST_CAP,
  type AppState,
} from './state/store';

export const HISTORY_PAGE = 200;

export function createActions(store: Store<AppState>, ipc: Ipc, t: () => Translator) {
  const fail = (error: unknown): void => {
    store.update((s) => ({
      ...s,
      toasts: [
        ...s.toasts,
        {
          id: s.nextLocalId,
          at: Date.now(),
          toast: { title: t()('common.error', { error: errorText(error, t()) }), body: '', urgency: 'normal' as const },
        },
      ].slice(-TOAST_CAP),
      nextLocalId: s.nextLocalId + 1,
    }));
  };

  return {
    markRead(ids: string[]): void {
      if (ids.length === 0) return;
      store.update((s) => markRead(s, ids));
      ipc.markRead(ids).catch(fail);
    },
    markAllRead(feed: FeedId | null): void {
      store.update((s) => markAllRead(s, feed));
      ipc.markAllRead(feed).catch(fail);
    },
    /** Rust opens the item's http(s) link; the UI never navigates. */
    openItem(itemId: string): void {
      store.update((s) => markRead(s, [itemId]));
      ipc.openItem(itemId).catch(fail);
    },
    acknowledge(itemId: string): void {
      store.update((s) => acknowledge(s, itemId));
      ipc.acknowledge(itemId).catch(fail);
    },
    /** Snoozes a pending approval request (shown as snoozed at once). */
    snooze(itemId: string, howLong: SnoozeFor): void {
      ipc
        .snooze(itemId, howLong)
        .then((until) => store.update((s) => ({ ...s, snoozed: { ...s.snoozed, [itemId]: until } })))
        .catch(fail);
    },
    pauseNotifications(minutes: number): void {
      const until = Date.now() + minutes * 60_000;
      store.update((s) => ({ ...s, pausedUntil: until }));
      ipc
        .pauseNotifications(minutes)
        .then((confirmed) => {
          if (typeof confirmed === 'number') store.update((s) => ({ ...s, pausedUntil: confirmed }));
        })
        .catch(fail);
    },
    dismissToast(id: number): void {
      store.update((s) => dismissToast(s, id));
    },
    /** Shows the item a toast is about, in its feed. */
    showItem(itemId: string): void {
      store.update((s) => {
        const feed = feedOfItem(s, itemId);
        return feed ? focusOn(s, feed, itemId) : s;
      });
    },
    /**
     * Shows a search result in its feed: pages older items in from history
     * until it is there (at most the feed's older cap). Resolves false when
     * it is further back than that, and the screen says so.
     */
    async showInFeed(item: FeedItem): Promise<boolean> {
      const present = (s: AppState): boolean =>
        s.feeds[item.feed].some((i) => i.id === item.id) || s.older[item.feed].some((i) => i.id === item.id);
      try {
        for (let page = 0; !present(store.get()); page++) {
          const s = store.get();
          const before = oldestSeq(s, item.feed);
          if (s.olderDone[item.feed] || page * HISTORY_PAGE >= OLDER_CAP || (before !== null && before < item.seq))
            return false;
          const items = await ipc.history({
            feed: item.feed,
            beforeSeq: before ?? Number.MAX_SAFE_INTEGER,
            limit: HISTORY_PAGE,
          });
          store.update((st) => addOlder(st, item.feed, items, HISTORY_PAGE));
        }
        store.update((s) => focusOn(s, item.feed, item.id));
        return true;
      } catch (error) {
        fail(error);
        return false;
      }
    },
    search(query: SearchQuery): Promise<SearchResults> {
      return ipc.search(query);
    },
    exportSearch(query: SearchQuery): Promise<string> {
      return ipc.exportSearch(query);
    },
    clearDebug(): void {
      store.update(clearDebug);
    },
    async loadOlder(feed: FeedId): Promise<void> {
      const before = oldestSeq(store.get(), feed);
      try {
        const items = await ipc.history({
          feed,
          beforeSeq: before ?? Number.MAX_SAFE_INTEGER,
          limit: HISTORY_PAGE,
        });
        store.update((s) => addOlder(s, feed, items, HISTORY_PAGE));
      } catch (error) {
        fail(error);
      }
    },
    /** Saves settings; resolves with the saved ones, rejects with Rust's reason. */
    async saveSettings(settings: Settings): Promise<Settings> {
      const saved = await ipc.setSettings(settings);
      store.update((s) => setSettings(s, saved));
      return saved;
    },
    setLanguage(language: Language): void {
      const previous = store.get().settings;
      const next = { ...previous, language };
      store.update((s) => setSettings(s, next));
      ipc
        .setSettings(next)
        .then((saved) => store.update((s) => setSettings(s, saved)))
        .catch((error) => {
          store.update((s) => setSettings(s, previous));
          fail(error);
        });
    },
    sendTestNotification(): Promise<void> {
      return ipc.sendTestNotification();
    },
  };
}

export type Actions = ReturnType<typeof createActions>;
