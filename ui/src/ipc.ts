//! The one door between the dashboard and the Rust side.
//!
//! Every Tauri command the UI uses is wrapped here, with the argument names
//! (camelCase) and result types from the generated bindings. Nothing else in
//! the UI imports `@tauri-apps/api`, so tests mock exactly this surface with
//! `@tauri-apps/api/mocks`. The UI never opens a link itself: `openItem` asks
//! Rust, which opens the item's http(s) `actionUrl` in the browser.

import { Channel, invoke } from '@tauri-apps/api/core';
import type { CommandError } from './bindings/CommandError';
import type { ErrorCode } from './bindings/ErrorCode';
import type { FeedId } from './bindings/FeedId';
import type { FeedItem } from './bindings/FeedItem';
import type { HistoryQuery } from './bindings/HistoryQuery';
import type { SearchQuery } from './bindings/SearchQuery';
import type { SearchResults } from './bindings/SearchResults';
import type { Settings } from './bindings/Settings';
import type { Snapshot } from './bindings/Snapshot';
import type { SnoozeFor } from './bindings/SnoozeFor';
import type { UiBatch } from './bindings/UiBatch';
import type { MessageKey, Translator } from './i18n';

/** The message of each failure code (every code has one: the type checks it). */
const ERROR_KEYS: Record<ErrorCode, MessageKey> = {
  notStarted: 'error.notStarted',
  stopped: 'error.stopped',
  busy: 'error.busy',
  invalidSettings: 'error.invalidSettings',
  saveFailed: 'error.saveFailed',
  notifier: 'error.notifier',
  history: 'error.history',
  noItem: 'error.noItem',
  noLink: 'error.noLink',
  linkRefused: 'error.linkRefused',
  notPending: 'error.notPending',
  tooManySnoozes: 'error.tooManySnoozes',
  exportFailed: 'error.exportFailed',
  openFailed: 'error.openFailed',
};

/** Codes whose English detail (a path, a reason) is worth showing too. */
const WITH_DETAIL = new Set<ErrorCode>([
  'notStarted',
  'invalidSettings',
  'saveFailed',
  'notifier',
  'history',
  'linkRefused',
  'exportFailed',
  'openFailed',
]);

function isCommandError(error: unknown): error is CommandError {
  return (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as CommandError).code === 'string' &&
    (error as CommandError).code in ERROR_KEYS &&
    typeof (error as CommandError).message === 'string'
  );
}

/**
 * A rejected command as text in the user's language: Rust rejects with a
 * `CommandError`, whose code picks the sentence; the English detail follows
 * where it says something the sentence cannot (which file, which setting).
 */
export function errorText(error: unknown, t: Translator): string {
  if (isCommandError(error)) {
    const said = t(ERROR_KEYS[error.code]);
    return WITH_DETAIL.has(error.code) ? `${said} (${error.message})` : said;
  }
  if (typeof error === 'string') return error;
  if (error instanceof Error) return error.message;
  if (error && typeof error === 'object' && 'message' in error) {
    return String((error as { message: unknown }).message);
  }
  try {
    return JSON.stringify(error);
  } catch {
    return String(error);
  }
}

export const ipc = {
  snapshot: (): Promise<Snapshot> => invoke<Snapshot>('snapshot'),

  history: (query: HistoryQuery): Promise<FeedItem[]> => invoke<FeedItem[]>('history', { query }),

  /** Full text over the whole local history, newest first. */
  search: (query: SearchQuery): Promise<SearchResults> => invoke<SearchResults>('search', { query }),

  /** Writes every match as CSV into Downloads; resolves with the file's path. */
  exportSearch: (query: SearchQuery): Promise<string> => invoke<string>('export_search', { query }),

  markRead: (ids: string[]): Promise<void> => invoke<void>('mark_read', { ids }),

  /** `feed` null marks every feed read. */
  markAllRead: (feed: FeedId | null): Promise<void> => invoke<void>('mark_all_read', { feed }),

  getSettings: (): Promise<Settings> => invoke<Settings>('get_settings'),

  /** Resolves with the settings as saved; rejects with a readable reason. */
  setSettings: (settings: Settings): Promise<Settings> => invoke<Settings>('set_settings', { settings }),

  sendTestNotification: (): Promise<void> => invoke<void>('send_test_notification'),

  openItem: (itemId: string): Promise<void> => invoke<void>('open_item', { itemId }),

  acknowledge: (itemId: string): Promise<void> => invoke<void>('acknowledge', { itemId }),

  /** Snoozes a pending approval request; resolves with when it reminds again (ms since epoch). */
  snooze: (itemId: string, howLong: SnoozeFor): Promise<number> => invoke<number>('snooze', { itemId, howLong }),

  /** May resolve with the pause end (ms since epoch). */
  pauseNotifications: (minutes: number): Promise<number | null | undefined> =>
    invoke<number | null | undefined>('pause_notifications', { minutes }),

  /** Logs an uncaught page error on the Rust side (the app's log). */
  reportError: (message: string): Promise<void> => invoke<void>('report_ui_error', { message }),

  /**
   * Opens the live stream. Batches arrive at most every 50 ms or 500 items;
   * `onBatch` must be cheap (it only queues, see `state/scheduler.ts`).
   */
  subscribe: async (onBatch: (batch: UiBatch) => void): Promise<Channel<UiBatch>> => {
    const channel = new Channel<UiBatch>();
    channel.onmessage = onBatch;
    await invoke<void>('subscribe', { channel });
    return channel;
  },
};

export type Ipc = typeof ipc;
