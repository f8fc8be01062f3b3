//! My notifications: the user's own channel, read/unread, "mark all read",
//! and the action button. The button never opens the link here: Rust
//! (`open_item`) opens the item's `actionUrl` in the browser. Whether it may,
//! and where it goes, the core decides (`item.link`, from
//! crates/tidings-desk/src/links.rs): the button names the destination host;
//! a refused link shows "Link blocked" with the core's reason.

import type { VNode } from 'preact';
import { useState } from 'preact/hooks';
import type { FeedItem } from '../bindings/FeedItem';
import { Cell, Tag, TimeCell } from '../components/bits';
import { FeedScreen, useFeedRows } from '../components/FeedScreen';
import { useApp } from '../context';
import { LEVEL_TONE } from './Feeds';

export function Mine(): VNode {
  const { state, t, actions } = useApp();
  const [unreadOnly, setUnreadOnly] = useState(false);
  const all = useFeedRows('mine');

  const renderRow = (item: FeedItem): VNode => {
    const e = item.event;
    if (e.type !== 'notification') return <span />;
    return (
      <div class={`grid grid-mine${item.read ? ' read' : ' unread'}`}>
        <Cell class="dot-cell">
          <span
            class={item.read ? 'dot' : 'dot on'}
            role="img"
            aria-label={item.read ? t('mine.read') : t('mine.unread')}
            title={item.read ? t('mine.read') : t('mine.unread')}
          />
        </Cell>
        <TimeCell ms={e.timestamp} />
        <Cell>
          <Tag tone={LEVEL_TONE[e.notificationType] ?? 'info'}>
            {t.maybe(`level.${e.notificationType}`, e.notificationType)}
          </Tag>
        </Cell>
        <Cell class="text2" title={e.message}>
          <span class="strong line">{e.title}</span>
          <span class="line clamp muted-strong">{e.message}</span>
        </Cell>
        <Cell class="actions">
          {item.link?.state === 'opens' ? (
            <button
              type="button"
              class="btn primary small"
              data-testid="action-link"
              title={t('mine.opensAt', { host: item.link.host })}
              onClick={() => actions.openItem(item.id)}
            >
              {e.actionLabel || t('mine.action')}
              <span class="link-host"> ↗ {item.link.host}</span>
            </button>
          ) : item.link?.state === 'refused' ? (
            <span class="tag tag-danger link-refused" data-testid="link-refused" title={item.link.reason}>
              {t('mine.linkRefused')}
              <span class="sr-only">: {item.link.reason}</span>
            </span>
          ) : null}
          {item.read ? null : (
            <button type="button" class="btn ghost small" onClick={() => actions.markRead([item.id])}>
              {t('mine.markRead')}
            </button>
          )}
        </Cell>
      </div>
    );
  };

  return (
    <FeedScreen
      feed="mine"
      title={t('mine.title')}
      grid="grid-mine"
      rowHeight={60}
      filter={unreadOnly ? isUnread : null}
      renderRow={renderRow}
      columns={[
        { label: t('mine.unread'), hidden: true },
        { label: t('common.time') },
        { label: t('sys.level') },
        { label: t('bc.message') },
        { label: t('mine.action'), hidden: true },
      ]}
      tools={
        <>
          <span class="muted">{t('nav.unread', { n: state.unread.mine })}</span>
          <label class="check">
            <input
              type="checkbox"
              checked={unreadOnly}
              onChange={(ev) => setUnreadOnly((ev.target as HTMLInputElement).checked)}
            />
            {t('mine.unreadOnly')}
          </label>
          <button
            type="button"
            class="btn"
            disabled={state.unread.mine === 0 && !all.some((i) => !i.read)}
            onClick={() => actions.markAllRead('mine')}
          >
            {t('mine.markAll')}
          </button>
        </>
      }
    />
  );
}

function isUnread(item: FeedItem): boolean {
  return !item.read;
}
