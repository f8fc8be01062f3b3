//! Inventory changes: product, change ±, old → new, action, reason,
//! operator, time. Rows whose new quantity is under the low-stock threshold
//! are highlighted (and can be shown alone); a text box filters by product
//! name, id or variant.

import type { VNode } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import type { FeedItem } from '../bindings/FeedItem';
import type { InventoryChange } from '../bindings/InventoryChange';
import { Cell, Tag, TimeCell, type Tone } from '../components/bits';
import { FeedScreen } from '../components/FeedScreen';
import { useApp } from '../context';
import { formatChange, formatNumber } from '../format';

const ACTION_TONE: Record<InventoryChange['action'], Tone> = {
  adjust: 'accent',
  inbound: 'success',
  outbound: 'info',
  reserve: 'neutral',
  release: 'neutral',
};

export function matchesProduct(event: InventoryChange, filter: string): boolean {
  if (!filter) return true;
  const needle = filter.toLowerCase();
  return (
    event.productId.toLowerCase().includes(needle) ||
    (event.productName ?? '').toLowerCase().includes(needle) ||
    (event.variantId ?? '').toLowerCase().includes(needle)
  );
}

export function Inventory(): VNode {
  const { state, t } = useApp();
  const [filter, setFilter] = useState('');
  const threshold = state.settings.lowStockThreshold;
  const [lowOnly, setLowOnly] = useState(false);
  const needle = filter.trim();
  const matches = useMemo(
    () =>
      needle !== '' || lowOnly
        ? (i: FeedItem) =>
            i.event.type === 'inventory:change' &&
            matchesProduct(i.event, needle) &&
            (!lowOnly || i.event.newQuantity < threshold)
        : null,
    [needle, lowOnly, threshold],
  );
  const loc = t.locale;

  const renderRow = (item: FeedItem): VNode => {
    const e = item.event;
    if (e.type !== 'inventory:change') return <Cell>{e.type}</Cell>;
    const low = e.newQuantity < threshold;
    return (
      <div class={`grid grid-inv${low ? ' low' : ''}${item.read ? '' : ' unread'}`}>
        <TimeCell ms={e.timestamp} />
        <Cell class="product" title={e.productName ?? e.productId}>
          <span class="strong">{e.productName ?? e.productId}</span>
          <span class="mono muted">
            {e.productName ? e.productId : ''}
            {e.variantId ? ` · ${t('inv.variant', { id: e.variantId })}` : ''}
          </span>
        </Cell>
        <Cell>
          <Tag tone={ACTION_TONE[e.action] ?? 'neutral'}>{t.maybe(`inv.action.${e.action}`, e.action)}</Tag>
        </Cell>
        <Cell class={`num ${e.changeAmount > 0 ? 'pos' : e.changeAmount < 0 ? 'neg' : ''}`}>
          {formatChange(e.changeAmount, loc)}
        </Cell>
        <Cell class="num qty">
          <span class="muted">{formatNumber(e.oldQuantity, loc)}</span>
          <span class="arrow" aria-hidden="true">
            →
          </span>
          <span class={low ? 'strong warn-text' : 'strong'}>{formatNumber(e.newQuantity, loc)}</span>
          {low ? <Tag tone="warning">{t('overview.lowStock')}</Tag> : null}
        </Cell>
        <Cell class="ellipsis" title={e.reason}>
          {e.reason ?? ''}
        </Cell>
        <Cell class="ellipsis">{e.operator ?? ''}</Cell>
      </div>
    );
  };

  return (
    <FeedScreen
      feed="inventory"
      title={t('inv.title')}
      grid="grid-inv"
      rowHeight={40}
      filter={matches}
      renderRow={renderRow}
      columns={[
        { label: t('common.time') },
        { label: t('inv.product') },
        { label: t('inv.action') },
        { label: t('inv.change'), class: 'num' },
        { label: t('inv.quantity'), class: 'num' },
        { label: t('inv.reason') },
        { label: t('inv.operator') },
      ]}
      tools={
        <>
          <label class="check legend">
            <input
              type="checkbox"
              checked={lowOnly}
              onChange={(ev) => setLowOnly((ev.target as HTMLInputElement).checked)}
            />
            <span class="swatch low" aria-hidden="true" />
            {t('inv.lowOnly', { n: formatNumber(threshold, loc) })}
          </label>
          <input
            type="search"
            class="input"
            placeholder={t('inv.filter')}
            aria-label={t('inv.filter')}
            value={filter}
            onInput={(ev) => setFilter((ev.target as HTMLInputElement).value)}
          />
        </>
      }
    />
  );
}
