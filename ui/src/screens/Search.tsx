//! Search: full text over the whole local history (every feed, not only
//! what is in memory), filtered by feed, date range and read state. Rust
//! runs the query on its own database connection (`search.rs`); this screen
//! asks again 200 ms after the last keystroke, shows the newest matches
//! first with "load more", opens a result in its feed, and exports every
//! match to CSV.

import type { VNode } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { FEED_IDS } from '../bindings/constants';
import type { FeedId } from '../bindings/FeedId';
import type { FeedItem } from '../bindings/FeedItem';
import type { SearchQuery } from '../bindings/SearchQuery';
import { Cell, Tag, TimeCell } from '../components/bits';
import { type Column, HeaderRow } from '../components/FeedScreen';
import { VirtualList } from '../components/VirtualList';
import { useApp } from '../context';
import type { MessageKey } from '../i18n';
import { errorText } from '../ipc';
import { summarize } from '../summary';

export const SEARCH_PAGE = 100;
const DEBOUNCE_MS = 200;
const DAY_MS = 86_400_000;

interface Filters {
  text: string;
  feed: FeedId | '';
  from: string;
  until: string;
  read: '' | 'read' | 'unread';
}

type Outcome =
  | { kind: 'idle' }
  | { kind: 'busy' }
  | { kind: 'done'; items: FeedItem[]; more: boolean; tookMs: number }
  | { kind: 'error'; text: string };

/** The filters as Rust's query; dates are local days, `until` inclusive. */
export function toQuery(f: Filters, beforeSeq: number | null = null): SearchQuery {
  const day = (value: string): number | null => (value ? new Date(`${value}T00:00:00`).getTime() : null);
  const until = day(f.until);
  return {
    text: f.text.trim(),
    feeds: f.feed ? [f.feed] : [],
    from: day(f.from),
    until: until === null ? null : until + DAY_MS,
    read: f.read === '' ? null : f.read === 'read',
    beforeSeq,
    limit: SEARCH_PAGE,
  };
}

function isEmpty(f: Filters): boolean {
  return f.text.trim() === '' && f.feed === '' && f.from === '' && f.until === '' && f.read === '';
}

export function Search(): VNode {
  const { t, actions } = useApp();
  const [filters, setFilters] = useState<Filters>({ text: '', feed: '', from: '', until: '', read: '' });
  const [outcome, setOutcome] = useState<Outcome>({ kind: 'idle' });
  const [note, setNote] = useState<string | null>(null);
  // Answers to an older query arrive late sometimes: only the newest counts.
  const asked = useRef(0);

  const run = (f: Filters, beforeSeq: number | null, previous: FeedItem[]): void => {
    const ticket = ++asked.current;
    if (beforeSeq === null) setOutcome({ kind: 'busy' });
    actions
      .search(toQuery(f, beforeSeq))
      .then((r) => {
        if (ticket !== asked.current) return;
        setOutcome({ kind: 'done', items: [...previous, ...r.items], more: r.more, tookMs: r.tookMs });
      })
      .catch((error: unknown) => {
        if (ticket === asked.current) setOutcome({ kind: 'error', text: errorText(error, t) });
      });
  };

  useEffect(() => {
    setNote(null);
    if (isEmpty(filters)) {
      asked.current++;
      setOutcome({ kind: 'idle' });
      return;
    }
    const timer = setTimeout(() => run(filters, null, []), DEBOUNCE_MS);
    return () => clearTimeout(timer);
  }, [filters]);

  const edit = (change: Partial<Filters>): void => setFilters((f) => ({ ...f, ...change }));
  const value = (ev: Event): string => (ev.target as HTMLInputElement).value;
  const items = outcome.kind === 'done' ? outcome.items : [];

  const show = (item: FeedItem): void => {
    setNote(null);
    actions.showInFeed(item).then((shown) => {
      if (!shown) setNote(t('search.tooOld', { what: summarize(item, t) }));
    });
  };
  const exportCsv = (): void => {
    setNote(null);
    actions
      .exportSearch(toQuery(filters))
      .then((path) => setNote(t('search.exported', { path })))
      .catch((error: unknown) => setNote(t('common.error', { error: errorText(error, t) })));
  };

  const columns: Column[] = [
    { label: t('common.time') },
    { label: t('search.feed') },
    { label: t('search.what') },
    { label: t('search.show'), hidden: true },
  ];

  return (
    <section class="screen search" data-state={outcome.kind}>
      <header class="screen-head">
        <h1>{t('search.title')}</h1>
        <span class="muted count" role="status">
          {outcome.kind === 'done'
            ? t(outcome.more ? 'search.foundMore' : 'search.found', { n: items.length, ms: outcome.tookMs })
            : outcome.kind === 'busy'
              ? t('common.loading')
              : ''}
        </span>
      </header>
      <div class="search-bar">
        <input
          type="search"
          class="input wide"
          data-testid="search-text"
          aria-label={t('search.text')}
          placeholder={t('search.placeholder')}
          value={filters.text}
          onInput={(ev) => edit({ text: value(ev) })}
          // biome-ignore lint/a11y/noAutofocus: the screen exists to type into this box
          autoFocus
        />
        <label class="inline">
          {t('search.feed')}
          <select class="input" value={filters.feed} onChange={(ev) => edit({ feed: value(ev) as FeedId | '' })}>
            <option value="">{t('search.allFeeds')}</option>
            {FEED_IDS.map((feed) => (
              <option key={feed} value={feed}>
                {t(`feed.${feed}` as MessageKey)}
              </option>
            ))}
          </select>
        </label>
        <label class="inline">
          {t('search.from')}
          <input type="date" class="input" value={filters.from} onInput={(ev) => edit({ from: value(ev) })} />
        </label>
        <label class="inline">
          {t('search.until')}
          <input type="date" class="input" value={filters.until} onInput={(ev) => edit({ until: value(ev) })} />
        </label>
        <label class="inline">
          {t('search.read')}
          <select class="input" value={filters.read} onChange={(ev) => edit({ read: value(ev) as Filters['read'] })}>
            <option value="">{t('search.anyState')}</option>
            <option value="unread">{t('search.unread')}</option>
            <option value="read">{t('search.readOnly')}</option>
          </select>
        </label>
        <button type="button" class="btn" disabled={items.length === 0} onClick={exportCsv}>
          {t('search.export')}
        </button>
      </div>
      {note ? (
        <p class="search-note" role="status">
          {note}
        </p>
      ) : null}
      {outcome.kind === 'error' ? (
        <p class="error" role="alert">
          {t('common.error', { error: outcome.text })}
        </p>
      ) : null}
      <VirtualList
        label={t('search.title')}
        rows={items}
        rowHeight={40}
        rowKey={(i) => i.id}
        rowAttrs={(i) => ({ 'data-testid': 'search-result', 'data-feed': i.feed, 'data-item-id': i.id })}
        header={<HeaderRow grid="grid-search" columns={columns} />}
        renderRow={(item) => (
          <div class={`grid grid-search${item.read ? '' : ' unread'}`}>
            <TimeCell ms={item.receivedAt} />
            <Cell>
              <Tag tone="neutral">{t(`feed.${item.feed}` as MessageKey)}</Tag>
            </Cell>
            <Cell class="ellipsis" title={summarize(item, t)}>
              {summarize(item, t)}
            </Cell>
            <Cell>
              <button type="button" class="btn ghost small" onClick={() => show(item)}>
                {t('search.show')}
              </button>
            </Cell>
          </div>
        )}
        empty={
          <p class="muted">
            {outcome.kind === 'done' ? t('search.none') : outcome.kind === 'idle' ? t('search.hint') : ''}
          </p>
        }
        footer={
          outcome.kind === 'done' && outcome.more ? (
            <button
              type="button"
              class="btn ghost wide"
              onClick={() => run(filters, items[items.length - 1]?.seq ?? null, items)}
            >
              {t('search.more')}
            </button>
          ) : null
        }
      />
    </section>
  );
}
