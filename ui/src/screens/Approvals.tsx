//! Approvals: requests still waiting (what, who, since when) and the
//! decisions that came in; "mine only" keeps those the current user asked
//! for or decides on. Pending is computed in `state/approvals.ts`.

import type { VNode } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import type { FeedItem } from '../bindings/FeedItem';
import { Cell, Empty, HeadCell, LoadOlder, feedRowAttrs, RelTime, ScreenHeader, Tag, TimeCell, useFocus } from '../components/bits';
import { VirtualList } from '../components/VirtualList';
import { useApp } from '../context';
import { formatDateTime } from '../format';
import { isApproval, isMine } from '../state/approvals';
import { currentUser, rowsOf } from '../state/store';

type Tab = 'pending' | 'results';

export function Approvals(): VNode {
  const { state, t } = useApp();
  const [tab, setTab] = useState<Tab>('pending');
  const [mineOnly, setMineOnly] = useState(false);
  const user = currentUser(state);
  const focus = useFocus('approvals');

  const pending = useMemo(() => {
    const list = [...state.pending.values()].reverse();
    return mineOnly ? list.filter((i) => isApproval(i.event) && isMine(i.event, user)) : list;
  }, [state.pending, mineOnly, user]);
  const results = useMemo(() => {
    const list = rowsOf(state, 'approvals').filter((i) => i.event.type !== 'approval:request');
    return mineOnly ? list.filter((i) => isApproval(i.event) && isMine(i.event, user)) : list;
  }, [state.feeds.approvals, state.older.approvals, mineOnly, user]);

  // A focus request for a request that is still open shows the pending tab.
  const focusTab: Tab | null =
    focus.focusKey === null ? null : pending.some((i) => i.id === focus.focusKey) ? 'pending' : 'results';
  const shown = focusTab ?? tab;

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
    return (
      <div class={`grid grid-apr-r${item.read ? '' : ' unread'}`}>
        <TimeCell ms={e.timestamp} />
        <Cell>
          <Tag tone={approved ? 'success' : 'danger'}>{t.maybe(`apr.type.${e.type}`, e.type)}</Tag>
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
          {(['pending', 'results'] as const).map((id) => (
            <button
              type="button"
              role="tab"
              key={id}
              aria-selected={shown === id}
              class={shown === id ? 'seg on' : 'seg'}
              onClick={() => setTab(id)}
            >
              {id === 'pending' ? t('apr.pending') : t('apr.results')}
              <span class="badge">{id === 'pending' ? pending.length : results.length}</span>
            </button>
          ))}
        </div>
        <label class="check">
          <input
            type="checkbox"
            checked={mineOnly}
            onChange={(ev) => setMineOnly((ev.target as HTMLInputElement).checked)}
          />
          {t('apr.mine')}
        </label>
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
          empty={<p class="muted">{mineOnly ? t('apr.noMine') : t('apr.noPending')}</p>}
        />
      ) : (
        <VirtualList
          key="results"
          label={t('apr.results')}
          rows={results}
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
          empty={<Empty filtered={mineOnly} />}
          footer={mineOnly ? null : <LoadOlder feed="approvals" />}
        />
      )}
    </section>
  );
}
