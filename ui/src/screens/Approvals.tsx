//! Approvals, in three tabs: requests still waiting (what, who, since when),
//! the decisions that came in, and "mine": every request and decision the
//! current user asked for or decides on. Pending is computed in
//! `state/approvals.ts`, apart from the capped feed.

import type { VNode } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import type { FeedItem } from '../bindings/FeedItem';
import { Cell, Empty, HeadCell, LoadOlder, feedRowAttrs, RelTime, ScreenHeader, Tag, TimeCell, useFocus } from '../components/bits';
import { VirtualList } from '../components/VirtualList';
import { useApp } from '../context';
import { formatDateTime } from '../format';
import { isApproval, isMine } from '../state/approvals';
import { currentUser, rowsOf } from '../state/store';

type Tab = 'pending' | 'results' | 'mine';
const TABS: readonly Tab[] = ['pending', 'results', 'mine'];

export function Approvals(): VNode {
  const { state, t } = useApp();
  const [tab, setTab] = useState<Tab>('pending');
  const user = currentUser(state);
  const focus = useFocus('approvals');

  const pending = useMemo(() => [...state.pending.values()].reverse(), [state.pending]);
  const all = useMemo(() => rowsOf(state, 'approvals'), [state.feeds.approvals, state.older.approvals]);
  const results = useMemo(() => all.filter((i) => i.event.type !== 'approval:request'), [all]);
  const mine = useMemo(() => all.filter((i) => isApproval(i.event) && isMine(i.event, user)), [all, user]);
  const lists: Record<Tab, FeedItem[]> = { pending, results, mine };

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

  return (
    <section class="screen">
      <ScreenHeader title={t('apr.title')}>
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
      </ScreenHeader>
      {shown === 'pending' ? (
        <VirtualList
          key="pending"
          label={t('apr.pending')}
          rows={pending}
          rowHeight={48}
          rowKey={(i) => i.id}
          rowAttrs={feedRowAttrs}
          renderRow={renderPending}
          {...focus}
          header={
            <div class="grid grid-apr-p">
              <HeadCell>{t('apr.what')}</HeadCell>
              <HeadCell>{t('apr.who')}</HeadCell>
              <HeadCell>{t('apr.since')}</HeadCell>
              <HeadCell>{t('apr.comment')}</HeadCell>
              <HeadCell>{t('apr.approver')}</HeadCell>
            </div>
          }
          empty={<p class="muted">{t('apr.noPending')}</p>}
        />
      ) : (
        <VirtualList
          key={shown}
          label={t(`apr.tab.${shown}`)}
          rows={lists[shown]}
          rowHeight={40}
          rowKey={(i) => i.id}
          rowAttrs={feedRowAttrs}
          renderRow={renderResult}
          {...focus}
          header={
            <div class="grid grid-apr-r">
              <HeadCell>{t('common.time')}</HeadCell>
              <HeadCell>{t('apr.outcome')}</HeadCell>
              <HeadCell>{t('apr.what')}</HeadCell>
              <HeadCell>{t('apr.who')}</HeadCell>
              <HeadCell>{t('apr.approver')}</HeadCell>
              <HeadCell>{t('apr.comment')}</HeadCell>
            </div>
          }
          empty={shown === 'mine' ? <p class="muted">{t('apr.noMine')}</p> : <Empty />}
          footer={<LoadOlder feed="approvals" />}
        />
      )}
    </section>
  );
}
