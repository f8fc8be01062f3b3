//! The simpler feed screens: Orders, Finance, Data changes, Broadcast and
//! System. Each is a windowed, newest-first table of its feed.

import type { VNode } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import type { FeedItem } from '../bindings/FeedItem';
import { Cell, RelTime, Tag, TimeCell, type Tone } from '../components/bits';
import { FeedScreen } from '../components/FeedScreen';
import { useApp } from '../context';
import { compactJson, formatDateTime, formatDuration, formatMoney } from '../format';
import { orderStatus } from '../summary';

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
  const { t } = useApp();
  return (
    <FeedScreen
      feed="orders"
      title={t('ord.title')}
      grid="grid-ord"
      rowHeight={40}
      columns={[
        { label: t('common.time') },
        { label: t('ord.number') },
        { label: t('ord.type') },
        { label: t('ord.status') },
        { label: t('ord.customer') },
      ]}
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
    />
  );
}

export function isOverdue(item: FeedItem): boolean {
  const e = item.event;
  return e.type === 'finance:overdue' || (e.type.startsWith('finance:') && 'action' in e && e.action === 'overdue');
}

export function Finance(): VNode {
  const { t } = useApp();
  const [overdueOnly, setOverdueOnly] = useState(false);
  return (
    <FeedScreen
      feed="finance"
      title={t('fin.title')}
      grid="grid-fin"
      rowHeight={40}
      filter={overdueOnly ? isOverdue : null}
      tools={
        <label class="check">
          <input
            type="checkbox"
            checked={overdueOnly}
            onChange={(ev) => setOverdueOnly((ev.target as HTMLInputElement).checked)}
          />
          {t('fin.overdueOnly')}
        </label>
      }
      columns={[
        { label: t('common.time') },
        { label: t('fin.kind') },
        { label: t('fin.record') },
        { label: t('fin.action') },
        { label: t('fin.amount'), class: 'num' },
        { label: t('fin.party') },
      ]}
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
    />
  );
}

export function DataChanges(): VNode {
  const { t } = useApp();
  return (
    <FeedScreen
      feed="data"
      title={t('data.title')}
      grid="grid-data"
      rowHeight={40}
      columns={[
        { label: t('common.time') },
        { label: t('data.kind') },
        { label: t('data.action') },
        { label: t('data.resource') },
        { label: t('data.changes') },
      ]}
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
    />
  );
}

export function Broadcasts(): VNode {
  const { t } = useApp();
  return (
    <FeedScreen
      feed="broadcast"
      title={t('bc.title')}
      grid="grid-bc"
      rowHeight={60}
      columns={[{ label: t('common.time') }, { label: t('sys.level') }, { label: t('bc.message') }]}
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
    />
  );
}

/** A `data:change` on user accounts, which `ws:system` carries too (contract §1). */
function UserChangeRow({ item }: { item: FeedItem }): VNode {
  const { t } = useApp();
  const e = item.event;
  if (e.type !== 'data:change') return <Unknown item={item} />;
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

export function System(): VNode {
  const { state, t, actions } = useApp();
  const open = useMemo(() => new Set(state.criticals.map((i) => i.id)), [state.criticals]);
  return (
    <FeedScreen
      feed="system"
      title={t('sys.title')}
      grid="grid-sys"
      rowHeight={60}
      columns={[
        { label: t('common.time') },
        { label: t('sys.level') },
        { label: t('sys.message') },
        { label: t('sys.scheduled') },
        { label: t('sys.duration') },
        { label: t('sys.affected') },
        { label: t('sys.acknowledge'), hidden: true },
      ]}
      renderRow={(item) => {
        const e = item.event;
        if (e.type === 'data:change') return <UserChangeRow item={item} />;
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
    />
  );
}
