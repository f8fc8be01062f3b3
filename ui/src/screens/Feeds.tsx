//! The simpler feed screens: Orders, Finance, Data changes, Broadcast and
//! System. Each is a windowed, newest-first table of its feed.

import type { VNode } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import type { FeedItem } from '../bindings/FeedItem';
import {
  Cell,
  Empty,
  feedRowAttrs,
  HeadCell,
  LoadOlder,
  RelTime,
  ScreenHeader,
  Tag,
  TimeCell,
  useFocus,
  type Tone,
} from '../components/bits';
import { VirtualList } from '../components/VirtualList';
import { useApp } from '../context';
import { compactJson, formatDateTime, formatDuration, formatMoney } from '../format';
import { orderStatus } from '../summary';
import { rowsOf } from '../state/store';

export const LEVEL_TONE: Record<string, Tone> = {
  info: 'info',
  success: 'success',
  warning: 'warning',
  critical: 'danger',
  error: 'danger',
};

function Unknown({ item }: { item: FeedItem }): VNode {
  return (
    <div class="grid grid-unknown">
      <TimeCell ms={item.event.timestamp} />
      <Cell class="mono ellipsis">{compactJson(item.event)}</Cell>
    </div>
  );
}

export function Orders(): VNode {
  const { state, t } = useApp();
  const rows = useMemo(() => rowsOf(state, 'orders'), [state.feeds.orders, state.older.orders]);
  const focus = useFocus('orders');
  return (
    <section class="screen">
      <ScreenHeader title={t('ord.title')} count={rows.length} />
      <VirtualList
        label={t('ord.title')}
        rows={rows}
        rowHeight={40}
        rowKey={(i) => i.id}
        rowAttrs={feedRowAttrs}
        {...focus}
        renderRow={(item) => {
          const e = item.event;
          if (e.type !== 'order:status') return <Unknown item={item} />;
          return (
            <div class={`grid grid-ord${item.read ? '' : ' unread'}`}>
              <TimeCell ms={e.timestamp} />
              <Cell class="mono strong">{e.orderNumber}</Cell>
              <Cell>
                <Tag tone={e.orderType === 'return' ? 'warning' : e.orderType === 'purchase' ? 'accent' : 'info'}>
                  {t.maybe(`ord.type.${e.orderType}`, e.orderType)}
                </Tag>
              </Cell>
              <Cell class="status">
                <span class="muted">{orderStatus(e.oldStatus, t)}</span>
                <span class="arrow" aria-hidden="true">
                  →
                </span>
                <span class="strong">{orderStatus(e.newStatus, t)}</span>
              </Cell>
              <Cell class="ellipsis" title={e.customerName ?? e.customerId}>
                {e.customerName ?? e.customerId ?? ''}
              </Cell>
            </div>
          );
        }}
        header={
          <div class="grid grid-ord">
            <HeadCell>{t('common.time')}</HeadCell>
            <HeadCell>{t('ord.number')}</HeadCell>
            <HeadCell>{t('ord.type')}</HeadCell>
            <HeadCell>{t('ord.status')}</HeadCell>
            <HeadCell>{t('ord.customer')}</HeadCell>
          </div>
        }
        empty={<Empty />}
        footer={<LoadOlder feed="orders" />}
      />
    </section>
  );
}

export function isOverdue(item: FeedItem): boolean {
  const e = item.event;
  return e.type === 'finance:overdue' || (e.type.startsWith('finance:') && 'action' in e && e.action === 'overdue');
}

export function Finance(): VNode {
  const { state, t } = useApp();
  const [overdueOnly, setOverdueOnly] = useState(false);
  const all = useMemo(() => rowsOf(state, 'finance'), [state.feeds.finance, state.older.finance]);
  const rows = useMemo(() => (overdueOnly ? all.filter(isOverdue) : all), [all, overdueOnly]);
  const focus = useFocus('finance');
  return (
    <section class="screen">
      <ScreenHeader title={t('fin.title')} count={rows.length}>
        <label class="check">
          <input
            type="checkbox"
            checked={overdueOnly}
            onChange={(ev) => setOverdueOnly((ev.target as HTMLInputElement).checked)}
          />
          {t('fin.overdueOnly')}
        </label>
      </ScreenHeader>
      <VirtualList
        label={t('fin.title')}
        rows={rows}
        rowHeight={40}
        rowKey={(i) => i.id}
        rowAttrs={feedRowAttrs}
        {...focus}
        renderRow={(item) => {
          const e = item.event;
          if (e.type !== 'finance:payment' && e.type !== 'finance:refund' && e.type !== 'finance:overdue') {
            return <Unknown item={item} />;
          }
          const overdue = isOverdue(item);
          const party = e.customerName ?? e.supplierName ?? e.customerId ?? e.supplierId ?? '';
          return (
            <div class={`grid grid-fin${overdue ? ' overdue' : ''}${item.read ? '' : ' unread'}`}>
              <TimeCell ms={e.timestamp} />
              <Cell>
                <Tag tone={overdue ? 'danger' : e.type === 'finance:refund' ? 'warning' : 'success'}>
                  {t.maybe(`fin.type.${e.type}`, e.type)}
                </Tag>
              </Cell>
              <Cell class="record">
                <span class="mono strong">{e.recordNumber}</span>
                <span class="muted">{t.maybe(`fin.record.${e.recordType}`, e.recordType)}</span>
              </Cell>
              <Cell>{t.maybe(`fin.action.${e.action}`, e.action)}</Cell>
              <Cell class={`num money strong${overdue ? ' danger-text' : ''}`}>{formatMoney(e.amount, t.locale)}</Cell>
              <Cell class="ellipsis" title={party}>
                {party}
              </Cell>
            </div>
          );
        }}
        header={
          <div class="grid grid-fin">
            <HeadCell>{t('common.time')}</HeadCell>
            <HeadCell>{t('fin.kind')}</HeadCell>
            <HeadCell>{t('fin.record')}</HeadCell>
            <HeadCell>{t('fin.action')}</HeadCell>
            <HeadCell class="num">{t('fin.amount')}</HeadCell>
            <HeadCell>{t('fin.party')}</HeadCell>
          </div>
        }
        empty={<Empty filtered={overdueOnly} />}
        footer={overdueOnly ? null : <LoadOlder feed="finance" />}
      />
    </section>
  );
}

export function DataChanges(): VNode {
  const { state, t } = useApp();
  const rows = useMemo(() => rowsOf(state, 'data'), [state.feeds.data, state.older.data]);
  const focus = useFocus('data');
  return (
    <section class="screen">
      <ScreenHeader title={t('data.title')} count={rows.length} />
      <VirtualList
        label={t('data.title')}
        rows={rows}
        rowHeight={40}
        rowKey={(i) => i.id}
        rowAttrs={feedRowAttrs}
        {...focus}
        renderRow={(item) => {
          const e = item.event;
          if (e.type !== 'data:change') return <Unknown item={item} />;
          const changes = e.changes ? compactJson(e.changes) : '';
          return (
            <div class={`grid grid-data${item.read ? '' : ' unread'}`}>
              <TimeCell ms={e.timestamp} />
              <Cell>
                <Tag tone="neutral">{t.maybe(`data.resource.${e.resource}`, e.resource)}</Tag>
              </Cell>
              <Cell>
                <Tag tone={e.action === 'deleted' ? 'danger' : e.action === 'created' ? 'success' : 'info'}>
                  {t.maybe(`data.action.${e.action}`, e.action)}
                </Tag>
              </Cell>
              <Cell class="product" title={e.resourceName ?? e.resourceId}>
                <span class="strong">{e.resourceName ?? e.resourceId}</span>
                <span class="mono muted">{e.resourceName ? e.resourceId : ''}</span>
              </Cell>
              <Cell class="mono ellipsis small" title={changes}>
                {changes}
              </Cell>
            </div>
          );
        }}
        header={
          <div class="grid grid-data">
            <HeadCell>{t('common.time')}</HeadCell>
            <HeadCell>{t('data.kind')}</HeadCell>
            <HeadCell>{t('data.action')}</HeadCell>
            <HeadCell>{t('data.resource')}</HeadCell>
            <HeadCell>{t('data.changes')}</HeadCell>
          </div>
        }
        empty={<Empty />}
        footer={<LoadOlder feed="data" />}
      />
    </section>
  );
}

export function Broadcasts(): VNode {
  const { state, t } = useApp();
  const rows = useMemo(() => rowsOf(state, 'broadcast'), [state.feeds.broadcast, state.older.broadcast]);
  const focus = useFocus('broadcast');
  return (
    <section class="screen">
      <ScreenHeader title={t('bc.title')} count={rows.length} />
      <VirtualList
        label={t('bc.title')}
        rows={rows}
        rowHeight={60}
        rowKey={(i) => i.id}
        rowAttrs={feedRowAttrs}
        {...focus}
        renderRow={(item) => {
          const e = item.event;
          if (e.type !== 'broadcast') return <Unknown item={item} />;
          return (
            <div class={`grid grid-bc level-${e.level}${item.read ? '' : ' unread'}`}>
              <TimeCell ms={e.timestamp} />
              <Cell>
                <Tag tone={LEVEL_TONE[e.level] ?? 'info'}>{t.maybe(`level.${e.level}`, e.level)}</Tag>
              </Cell>
              <Cell class="text2" title={e.message}>
                {e.title ? <span class="strong line">{e.title}</span> : null}
                <span class="line clamp">{e.message}</span>
              </Cell>
            </div>
          );
        }}
        header={
          <div class="grid grid-bc">
            <HeadCell>{t('common.time')}</HeadCell>
            <HeadCell>{t('sys.level')}</HeadCell>
            <HeadCell>{t('bc.message')}</HeadCell>
          </div>
        }
        empty={<Empty />}
        footer={<LoadOlder feed="broadcast" />}
      />
    </section>
  );
}

export function System(): VNode {
  const { state, t, actions } = useApp();
  const rows = useMemo(() => rowsOf(state, 'system'), [state.feeds.system, state.older.system]);
  const open = useMemo(() => new Set(state.criticals.map((i) => i.id)), [state.criticals]);
  const focus = useFocus('system');
  return (
    <section class="screen">
      <ScreenHeader title={t('sys.title')} count={rows.length} />
      <VirtualList
        label={t('sys.title')}
        rows={rows}
        rowHeight={60}
        rowKey={(i) => i.id}
        rowAttrs={feedRowAttrs}
        {...focus}
        renderRow={(item) => {
          const e = item.event;
          if (e.type === 'data:change') {
            // User accounts changed: `ws:system` carries these too (contract §1).
            const changes = e.changes ? compactJson(e.changes) : '';
            return (
              <div class={`grid grid-sys${item.read ? '' : ' unread'}`}>
                <TimeCell ms={e.timestamp} />
                <Cell class="stack">
                  <Tag tone="neutral">{t.maybe(`data.resource.${e.resource}`, e.resource)}</Tag>
                  <span class="muted small">{t.maybe(`data.action.${e.action}`, e.action)}</span>
                </Cell>
                <Cell class="text2" title={changes}>
                  <span class="line">
                    <span class="strong">{e.resourceName ?? e.resourceId}</span>{' '}
                    <span class="mono muted">{e.resourceName ? e.resourceId : ''}</span>
                  </span>
                  <span class="line mono muted small">{changes}</span>
                </Cell>
                <Cell class="muted">{t('common.none')}</Cell>
                <Cell class="muted">{t('common.none')}</Cell>
                <Cell />
                <Cell />
              </div>
            );
          }
          if (e.type !== 'system:maintenance' && e.type !== 'system:update' && e.type !== 'system:alert') {
            return <Unknown item={item} />;
          }
          const affected = e.affectedUsers?.length ? e.affectedUsers.join(', ') : t('sys.everyone');
          return (
            <div class={`grid grid-sys level-${e.level}${item.read ? '' : ' unread'}`}>
              <TimeCell ms={e.timestamp} />
              <Cell class="stack">
                <Tag tone={LEVEL_TONE[e.level] ?? 'info'}>{t.maybe(`level.${e.level}`, e.level)}</Tag>
                <span class="muted small">{t.maybe(`sys.type.${e.type}`, e.type)}</span>
              </Cell>
              <Cell class="text2" title={e.message}>
                <span class="line clamp">{e.message}</span>
              </Cell>
              <Cell class="stack">
                {e.scheduledTime !== undefined && e.scheduledTime !== null ? (
                  <>
                    <span>{formatDateTime(e.scheduledTime, t.locale)}</span>
                    <span class="muted small">
                      <RelTime ms={e.scheduledTime} />
                    </span>
                  </>
                ) : (
                  <span class="muted">{t('common.none')}</span>
                )}
              </Cell>
              <Cell>
                {e.estimatedDuration !== undefined && e.estimatedDuration !== null
                  ? formatDuration(e.estimatedDuration, t)
                  : t('common.none')}
              </Cell>
              <Cell class="ellipsis small" title={affected}>
                {affected}
              </Cell>
              <Cell>
                {open.has(item.id) ? (
                  <button type="button" class="btn danger small" onClick={() => actions.acknowledge(item.id)}>
                    {t('sys.acknowledge')}
                  </button>
                ) : null}
              </Cell>
            </div>
          );
        }}
        header={
          <div class="grid grid-sys">
            <HeadCell>{t('common.time')}</HeadCell>
            <HeadCell>{t('sys.level')}</HeadCell>
            <HeadCell>{t('sys.message')}</HeadCell>
            <HeadCell>{t('sys.scheduled')}</HeadCell>
            <HeadCell>{t('sys.duration')}</HeadCell>
            <HeadCell>{t('sys.affected')}</HeadCell>
            <HeadCell>
              <span class="sr-only">{t('sys.acknowledge')}</span>
            </HeadCell>
          </div>
        }
        empty={<Empty />}
        footer={<LoadOlder feed="system" />}
      />
    </section>
  );
}
