//! Small shared pieces: times, tags, the "load older" footer, screen header.

import type { ComponentChildren, VNode } from 'preact';
import { useState } from 'preact/hooks';
import type { FeedId } from '../bindings/FeedId';
import type { FeedItem } from '../bindings/FeedItem';
import { useApp } from '../context';
import { formatDate, formatDateTime, formatRelative, formatTime } from '../format';

/** "5 min ago", with the exact time as a tooltip; ticks with the shared clock. */
export function RelTime({ ms }: { ms: number }): VNode {
  const { t, now } = useApp();
  return (
    <time class="rel" dateTime={new Date(ms).toISOString()} title={formatDateTime(ms, t.locale)}>
      {formatRelative(ms, now, t)}
    </time>
  );
}

/**
 * Clock time (older events: their date) plus relative age: the time column
 * of every feed. The exact date and time is the tooltip.
 */
export function TimeCell({ ms }: { ms: number }): VNode {
  const { t, now } = useApp();
  const sameDay = Math.abs(now - ms) < 20 * 3600_000;
  return (
    <span class="cell time" role="cell" title={formatDateTime(ms, t.locale)}>
      <span class="abs">{sameDay ? formatTime(ms, t.locale) : formatDate(ms, t.locale)}</span>
      <span class="ago">{formatRelative(ms, now, t)}</span>
    </span>
  );
}

export type Tone = 'neutral' | 'info' | 'success' | 'warning' | 'danger' | 'accent';

export function Tag({ tone, children }: { tone: Tone; children: ComponentChildren }): VNode {
  return <span class={`tag tag-${tone}`}>{children}</span>;
}

export function Cell({
  children,
  class: cls,
  title,
}: {
  children?: ComponentChildren;
  class?: string;
  title?: string;
}): VNode {
  return (
    <span class={`cell ${cls ?? ''}`} role="cell" title={title}>
      {children}
    </span>
  );
}

export function HeadCell({ children, class: cls }: { children: ComponentChildren; class?: string }): VNode {
  return (
    <span class={`cell ${cls ?? ''}`} role="columnheader">
      {children}
    </span>
  );
}

export function ScreenHeader({
  title,
  count,
  children,
}: {
  title: string;
  count?: number;
  children?: ComponentChildren;
}): VNode {
  const { t } = useApp();
  return (
    <header class="screen-head">
      <h1>{title}</h1>
      {count !== undefined ? <span class="muted count">{t('common.shown', { n: count })}</span> : null}
      <div class="tools">{children}</div>
    </header>
  );
}

/** Pages older events in from Rust's local history. */
export function LoadOlder({ feed }: { feed: FeedId }): VNode {
  const { t, state, actions } = useApp();
  const [busy, setBusy] = useState(false);
  if (state.olderDone[feed]) return <p class="muted center">{t('common.noOlder')}</p>;
  return (
    <button
      type="button"
      class="btn ghost wide"
      disabled={busy}
      onClick={() => {
        setBusy(true);
        actions.loadOlder(feed).finally(() => setBusy(false));
      }}
    >
      {busy ? t('common.loading') : t('common.loadOlder')}
    </button>
  );
}

export function Empty({ filtered }: { filtered?: boolean }): VNode {
  const { t } = useApp();
  return <p class="muted">{filtered ? t('common.noMatch') : t('common.empty')}</p>;
}

/** The focus request for this feed, if the last one was for it. */
export function useFocus(feed: FeedId): { focusKey: string | null; focusNonce: number } {
  const { state } = useApp();
  const f = state.focus;
  return f && f.feed === feed ? { focusKey: f.itemId, focusNonce: f.nonce } : { focusKey: null, focusNonce: 0 };
}

/**
 * The stable hooks of a feed row for the desktop end-to-end tests
 * (docs/ui.md): `data-testid="row"`, its feed and its item id.
 */
export function feedRowAttrs(item: FeedItem): Record<string, string> {
  return { 'data-testid': 'row', 'data-feed': item.feed, 'data-item-id': item.id };
}
