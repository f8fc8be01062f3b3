//! Overview: connection, counters per feed (received, unread), the latest
//! events of each, and how many approvals wait.

import type { VNode } from 'preact';
import type { FeedId } from '../bindings/FeedId';
import { RelTime } from '../components/bits';
import { useApp } from '../context';
import { formatNumber } from '../format';
import type { MessageKey } from '../i18n';
import { summarize } from '../summary';
import { FEED_IDS } from '../bindings/constants';
import { ConnectionPill } from '../components/Chrome';

const LATEST = 4;

export function Overview({ go }: { go: (screen: FeedId) => void }): VNode {
  const { state, t } = useApp();
  const loc = t.locale;
  const threshold = state.settings.lowStockThreshold;
  return (
    <section class="screen overview">
      <header class="screen-head">
        <h1>{t('overview.title')}</h1>
      </header>
      <div class="ov-top">
        <div class="card ov-conn">
          <h2>{t('overview.connection')}</h2>
          <ConnectionPill />
          <p class="muted small mono ellipsis" title={state.status.url}>
            {t(`status.source.${state.status.kind}` as MessageKey)} · {state.status.url}
          </p>
        </div>
        <button type="button" class="card ov-pending" onClick={() => go('approvals')}>
          <h2>{t('overview.pending')}</h2>
          <span class={state.pending.size ? 'big warn-text' : 'big'}>{formatNumber(state.pending.size, loc)}</span>
        </button>
        <div class="card ov-counters">
          <h2>{t('dbg.title')}</h2>
          <dl>
            <dt>{t('dbg.received')}</dt>
            <dd>{formatNumber(state.counters.received, loc)}</dd>
            <dt>{t('dbg.typed')}</dt>
            <dd>{formatNumber(state.counters.typed, loc)}</dd>
            <dt>{t('dbg.legacy')}</dt>
            <dd>{formatNumber(state.counters.legacy, loc)}</dd>
            <dt>{t('dbg.malformed')}</dt>
            <dd class={state.counters.malformed ? 'danger-text' : ''}>{formatNumber(state.counters.malformed, loc)}</dd>
          </dl>
        </div>
      </div>
      <div class="ov-grid">
        {FEED_IDS.map((feed) => {
          const items = state.feeds[feed];
          const latest = items.slice(-LATEST).reverse();
          return (
            <section class="card feed-card" key={feed} aria-labelledby={`ov-${feed}`}>
              <header>
                <h2 id={`ov-${feed}`}>
                  <button type="button" class="linkish" onClick={() => go(feed)}>
                    {t(`feed.${feed}` as MessageKey)}
                  </button>
                </h2>
                <span class="stat" title={t('overview.received')}>
                  <span class="stat-value">{formatNumber(state.totals[feed], loc)}</span>
                  <span class="muted small">{t('overview.received')}</span>
                </span>
                {state.unread[feed] ? (
                  <span class="badge hot" title={t('nav.unread', { n: state.unread[feed] })}>
                    {formatNumber(state.unread[feed], loc)} {t('overview.unread')}
                  </span>
                ) : null}
              </header>
              {latest.length === 0 ? (
                <p class="muted small">{t('overview.noEvents')}</p>
              ) : (
                <ul class="latest">
                  {latest.map((item) => {
                    const e = item.event;
                    const low = e.type === 'inventory:change' && e.newQuantity < threshold;
                    const critical = 'level' in e && (e.level === 'critical' || e.level === 'error');
                    return (
                      <li key={item.id} class={low || critical ? 'hot' : ''}>
                        <span class="ellipsis">{summarize(item, t)}</span>
                        <span class="muted small nowrap">
                          <RelTime ms={e.timestamp} />
                        </span>
                      </li>
                    );
                  })}
                </ul>
              )}
            </section>
          );
        })}
      </div>
    </section>
  );
}
