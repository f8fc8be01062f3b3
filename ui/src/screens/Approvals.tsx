//! Approvals, in three tabs: requests still waiting (what, who, since when),
//! the decisions that came in, and "mine": every request and decision the
//! current user asked for or decides on. Pending is computed in
//! `state/approvals.ts`, apart from the capped feed.

import type { VNode } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import type { FeedItem } from '../bindings/FeedItem';
import { Cell, Empty, RelTime, Tag, TimeCell, useFocus } from '../components/bits';
import { FeedScreen, useFeedRows } from '../components/FeedScreen';
import { useApp } from '../context';
import { formatDateTime } from '../format';
import { isApproval, isMine } from '../state/approvals';
import { currentUser } from '../state/store';

type Tab = 'pending' | 'results' | 'mine';
const TABS: readonly Tab[] = ['pending', 'results', 'mine'];

export function Approvals(): VNode {
  const { state, t, actions } = useApp();
  const [tab, setTab] = useState<Tab>('pending');
  const user = currentUser(state);
  const focus = useFocus('approvals');

  const pending = useMemo(() => [...state.pending.values()].reverse(), [state.pending]);
  const all = useFeedRows('approvals');
  const results = useMemo(() => all.filter((i) => i.event.type !== 'approval:request'), [all]);
  const mine = useMemo(() => all.filter((i) => isApproval(i.event) && isMine(i.event, user)), [all, user]);
  const lists: Record<Tab, readonly FeedItem[]> = { pending, results, mine };

  // A focus request shows the tab holding the item: pending while it is open.
  const focusTab: Tab | null =
    focus.focusKey === null ? null : pending.some((i) => i.id === focus.focusKey) ? 'pending' : 'results';
  const [focusSeen, setFocusSeen] = useState(0);
  const shown = focusTab !== null && focus.focusNonce !== focusSeen ? focusTab : tab;
  const choose = (id: Tab): void => {
    setTab(id);
    setFocusSeen(focus.focusNonce);
  };

  const renderPending = (item: FeedItem): VNode => {
    const e = item.event;
    if (!isApproval(e)) return <span />;
    const mine = isMine(e, user);
    return (
      <div class={`grid grid-apr-p${mine ? ' mine' : ''}${item.read ? '' : ' unread'}`}>
        <Cell class="stack">
          <span>
            <Tag tone="accent">{t.maybe(`apr.resource.${e.resourceType}`, e.resourceType)}</Tag>{' '}
            <span class="mono strong">{e.resourceNumber}</span>
          </span>
        </Cell>
        <Cell class="stack" title={e.requesterId}>
          <span class="strong">{e.requesterName}</span>
          <span class="mono muted small">{e.requesterId}</span>
        </Cell>
        <Cell class="stack" title={formatDateTime(e.timestamp, t.locale)}>
          <span class="strong">
            <RelTime ms={e.timestamp} />
          </span>
          <span class="muted small">{formatDateTime(e.timestamp, t.locale)}</span>
        </Cell>
        <Cell class="ellipsis" title={e.reason}>
          {e.reason ?? ''}
        </Cell>
        <Cell class="ellipsis">{e.approverName ?? ''}</Cell>
        <Cell class="snooze">
          {state.snoozed[item.id] !== undefined ? (
            <span class="muted small" data-snoozed={item.id}>
              {t('apr.snoozedUntil', { time: formatDateTime(state.snoozed[item.id] ?? 0, t.locale) })}
            </span>
          ) : (
            <select
              class="input small"
              aria-label={`${e.resourceNumber} · ${t('apr.snooze')}`}
              value=""
              onClick={(ev) => ev.stopPropagation()}
              onChange={(ev) => {
                const v = (ev.target as HTMLSelectElement).value;
                if (v) actions.snooze(item.id, v === 'tomorrow' ? 'tomorrowNine' : { minutes: Number(v) });
              }}
            >
              <option value="">{t('apr.snooze')}</option>
              <option value="15">{t('apr.snooze.15')}</option>
              <option value="60">{t('apr.snooze.60')}</option>
              <option value="tomorrow">{t('apr.snooze.tomorrow')}</option>
            </select>
          )}
        </Cell>
      </div>
    );
  };

  const renderResult = (item: FeedItem): VNode => {
    const e = item.event;
    if (!isApproval(e)) return <span />;
    const approved = e.type === 'approval:approved';
    const request = e.type === 'approval:request';
    return (
      <div class={`grid grid-apr-r${item.read ? '' : ' unread'}`}>
        <TimeCell ms={e.timestamp} />
        <Cell>
          <Tag tone={request ? 'accent' : approved ? 'success' : 'danger'}>{t.maybe(`apr.type.${e.type}`, e.type)}</Tag>
        </Cell>
        <Cell>
          <Tag tone="neutral">{t.maybe(`apr.resource.${e.resourceType}`, e.resourceType)}</Tag>{' '}
          <span class="mono strong">{e.resourceNumber}</span>
        </Cell>
        <Cell class="ellipsis">{e.requesterName}</Cell>
        <Cell class="ellipsis">{e.approverName ?? e.approverId ?? ''}</Cell>
        <Cell class="ellipsis" title={e.comment ?? e.reason}>
          {e.comment ?? e.reason ?? ''}
        </Cell>
      </div>
    );
  };

  const tabs = (
    <>
      <div class="segmented" role="tablist" aria-label={t('apr.title')}>
        {TABS.map((id) => (
          <button
            type="button"
            role="tab"
            key={id}
            data-tab={id}
            aria-selected={shown === id}
            class={shown === id ? 'seg on' : 'seg'}
            onClick={() => choose(id)}
          >
            {t(`apr.tab.${id}`)}
            <span class="badge">{lists[id].length}</span>
          </button>
        ))}
      </div>
      <span class="muted small">{user ? t('apr.mineHint', { user }) : t('apr.noUser')}</span>
    </>
  );

  return shown === 'pending' ? (
    <FeedScreen
      feed="approvals"
      title={t('apr.title')}
      label={t('apr.pending')}
      listKey="pending"
      count={false}
      older={false}
      tools={tabs}
      rows={pending}
      grid="grid-apr-p"
      rowHeight={48}
      renderRow={renderPending}
      columns={[
        { label: t('apr.what') },
        { label: t('apr.who') },
        { label: t('apr.since') },
        { label: t('apr.comment') },
        { label: t('apr.approver') },
        { label: t('apr.snooze') },
      ]}
      empty={<p class="muted">{t('apr.noPending')}</p>}
    />
  ) : (
    <FeedScreen
      feed="approvals"
      title={t('apr.title')}
      label={t(`apr.tab.${shown}`)}
      listKey={shown}
      count={false}
      tools={tabs}
      rows={lists[shown]}
      grid="grid-apr-r"
      rowHeight={40}
      renderRow={renderResult}
      columns={[
        { label: t('common.time') },
        { label: t('apr.outcome') },
        { label: t('apr.what') },
        { label: t('apr.who') },
        { label: t('apr.approver') },
        { label: t('apr.comment') },
      ]}
      empty={shown === 'mine' ? <p class="muted">{t('apr.noMine')}</p> : <Empty />}
    />
  );
}
