//! What stays on screen whatever the screen: the connection status, the
//! "may have missed events" notice, the critical system banner, the
//! navigation, and the toast area.

import type { VNode } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import type { ConnectionState } from '../bindings/ConnectionState';
import type { Language } from '../bindings/Language';
import { useApp } from '../context';
import { formatDateTime, formatNumber, formatTime, secondsUntil } from '../format';
import type { MessageKey } from '../i18n';
import type { ToastEntry } from '../state/store';
import { summarize } from '../summary';

/** When the next reconnect try is due (ms since epoch). */
export function retryAt(connection: Extract<ConnectionState, { state: 'reconnecting' }>): number {
  return connection.retry_at;
}

/**
 * The connection state. `primary` marks the one in the top bar, which carries
 * the stable test hook `data-testid="status"` (the overview shows a copy).
 */
export function ConnectionPill({ primary = false }: { primary?: boolean }): VNode {
  const { state, t } = useApp();
  // Not the shared clock's `now`, which may be up to a tick old when a new
  // state arrives: the countdown must never show more seconds than are left.
  const now = Date.now();
  const c = state.status.connection;
  let label: string;
  let detail = '';
  switch (c.state) {
    case 'connecting':
      label = t('status.connecting');
      break;
    case 'live':
      label = t('status.live');
      break;
    case 'reconnecting': {
      const s = secondsUntil(retryAt(c), now);
      label = s > 0 ? t('status.reconnecting', { s }) : t('status.reconnectingNow');
      detail = `${t('status.attempt', { n: c.attempt })} · ${c.reason}`;
      break;
    }
    case 'offline':
      label = t('status.offline');
      detail = c.reason;
      break;
  }
  return (
    <span
      class={`conn conn-${c.state}`}
      role={primary ? 'status' : undefined}
      aria-live={primary ? 'polite' : undefined}
      data-testid={primary ? 'status' : undefined}
      data-state={c.state}
    >
      <span class="conn-dot" aria-hidden="true" />
      <span class="conn-label">{label}</span>
      {detail ? (
        <span class="conn-detail" title={detail}>
          {detail}
        </span>
      ) : null}
    </span>
  );
}

export function TopBar(): VNode {
  const { state, t, now, actions } = useApp();
  const paused = state.pausedUntil !== null && state.pausedUntil > now;
  return (
    <header class="topbar">
      <div class="brand">
        <span class="brand-mark" aria-hidden="true" />
        <span class="brand-name">{t('app.title')}</span>
        <span class="brand-sub muted">{t('app.subtitle')}</span>
      </div>
      <ConnectionPill primary />
      <span class="source muted mono ellipsis" title={state.status.url}>
        {t(`status.source.${state.status.kind}` as MessageKey)} · {state.status.url}
      </span>
      <div class="topbar-tools">
        {state.nativeNotifications ? null : (
          <span class="muted small in-app" title={t('status.inApp')}>
            {t('status.inApp')}
          </span>
        )}
        {paused ? (
          <span class="tag tag-warning">
            {t('status.paused', { time: formatTime(state.pausedUntil as number, t.locale) })}
          </span>
        ) : (
          <button type="button" class="btn small ghost" onClick={() => actions.pauseNotifications(60)}>
            {t('status.pause')}
          </button>
        )}
        <label class="lang">
          <span class="sr-only">{t('status.language')}</span>
          <select
            class="input small"
            aria-label={t('status.language')}
            value={state.settings.language}
            onChange={(ev) => actions.setLanguage((ev.target as HTMLSelectElement).value as Language)}
          >
            {(['auto', 'zh-CN', 'en'] as const).map((l) => (
              <option key={l} value={l}>
                {t(`lang.${l}` as MessageKey)}
              </option>
            ))}
          </select>
        </label>
      </div>
    </header>
  );
}

/** Notices that must not be missed: config errors, gaps, critical alerts. */
export function Banners(): VNode {
  const { state, t, actions } = useApp();
  const missed = state.status.missedSince;
  const critical = state.criticals[state.criticals.length - 1];
  return (
    <div class="banners">
      {state.configError ? (
        <div class="banner banner-warning" role="alert">
          {t('status.configError', { error: state.configError })}
        </div>
      ) : null}
      {state.notice ? (
        <div class="banner banner-warning" role="alert" data-testid="notice">
          {state.notice}
        </div>
      ) : null}
      {typeof missed === 'number' && missed > 0 ? (
        <div class="banner banner-warning" role="status">
          {t('status.missed', { time: formatDateTime(missed, t.locale) })}
        </div>
      ) : null}
      {critical && 'message' in critical.event ? (
        <div class="banner banner-critical" role="alert" data-item={critical.id}>
          <strong>{t('sys.banner')}</strong>
          <span class="banner-text">{summarize(critical, t)}</span>
          <span class="banner-time">{formatDateTime(critical.event.timestamp, t.locale)}</span>
          {state.criticals.length > 1 ? (
            <span class="banner-more">
              {t('sys.bannerMore', { n: formatNumber(state.criticals.length - 1, t.locale) })}
            </span>
          ) : null}
          <button type="button" class="btn small on-danger" onClick={() => actions.acknowledge(critical.id)}>
            {t('sys.acknowledge')}
          </button>
        </div>
      ) : null}
    </div>
  );
}

const TOAST_MS = 8000;

function ToastView({ entry }: { entry: ToastEntry }): VNode {
  const { t, actions } = useApp();
  const { toast } = entry;
  useEffect(() => {
    // Critical toasts stay until dismissed, like critical notifications.
    if (toast.urgency === 'critical') return;
    const timer = setTimeout(() => actions.dismissToast(entry.id), TOAST_MS);
    return () => clearTimeout(timer);
  }, [entry.id]);
  return (
    <div class={`toast toast-${toast.urgency}`} role={toast.urgency === 'critical' ? 'alert' : 'status'}>
      <div class="toast-body">
        <strong class="toast-title">{toast.title}</strong>
        {toast.body ? <span class="toast-text">{toast.body}</span> : null}
      </div>
      <div class="toast-actions">
        {toast.itemId ? (
          <button
            type="button"
            class="btn small primary"
            onClick={() => {
              actions.showItem(toast.itemId as string);
              actions.dismissToast(entry.id);
            }}
          >
            {t('toast.show')}
          </button>
        ) : null}
        <button
          type="button"
          class="btn small ghost"
          aria-label={t('common.dismiss')}
          onClick={() => actions.dismissToast(entry.id)}
        >
          ×
        </button>
      </div>
    </div>
  );
}

export function Toasts(): VNode {
  const { state, t } = useApp();
  return (
    <div class="toasts" aria-label={t('toast.region')} role="region">
      {state.toasts.map((entry) => (
        <ToastView key={entry.id} entry={entry} />
      ))}
    </div>
  );
}

export interface NavEntry {
  id: string;
  label: MessageKey;
  badge?: number;
}

/** The screen list; arrow keys move between entries, Enter/Space opens. */
export function Sidebar({
  entries,
  current,
  go,
}: {
  entries: NavEntry[];
  current: string;
  go: (id: string) => void;
}): VNode {
  const { t } = useApp();
  const list = useRef<HTMLElement>(null);
  const onKeyDown = (ev: KeyboardEvent): void => {
    const buttons = [...(list.current?.querySelectorAll<HTMLButtonElement>('button.nav-item') ?? [])];
    const index = buttons.indexOf(document.activeElement as HTMLButtonElement);
    if (index < 0) return;
    let next = -1;
    if (ev.key === 'ArrowDown') next = (index + 1) % buttons.length;
    else if (ev.key === 'ArrowUp') next = (index - 1 + buttons.length) % buttons.length;
    else if (ev.key === 'Home') next = 0;
    else if (ev.key === 'End') next = buttons.length - 1;
    if (next >= 0) {
      ev.preventDefault();
      buttons[next]?.focus();
    }
  };
  return (
    <nav class="sidebar" aria-label={t('nav.label')} ref={list} onKeyDown={onKeyDown}>
      {entries.map((entry, i) => (
        <button
          type="button"
          key={entry.id}
          class={entry.id === current ? 'nav-item on' : 'nav-item'}
          aria-current={entry.id === current ? 'page' : undefined}
          data-screen={entry.id}
          data-testid={`nav-${entry.id}`}
          title={i < 9 ? `Alt+${i + 1}` : undefined}
          onClick={() => go(entry.id)}
        >
          <span class={`nav-icon icon-${entry.id}`} aria-hidden="true" />
          <span class="nav-label">{t(entry.label)}</span>
          {entry.badge ? (
            <span class="badge hot">
              <span aria-hidden="true">{entry.badge > 999 ? '999+' : entry.badge}</span>
              <span class="sr-only">{t('nav.unread', { n: entry.badge })}</span>
            </span>
          ) : null}
        </button>
      ))}
    </nav>
  );
}
