//! The one scaffold of every feed screen: a header with the title, the count
//! and the screen's own tools, then a windowed, newest-first table of the
//! feed with its column headers, the focus a notification or toast asked
//! for, the stable row hooks of the end-to-end tests, and "load older" at
//! the bottom. A screen supplies only what is its own: columns, one row, and
//! optionally a filter or rows of its own (Approvals' tabs).

import type { ComponentChildren, VNode } from 'preact';
import { useMemo } from 'preact/hooks';
import type { FeedId } from '../bindings/FeedId';
import type { FeedItem } from '../bindings/FeedItem';
import { useApp } from '../context';
import { rowsOf } from '../state/store';
import { Empty, feedRowAttrs, HeadCell, LoadOlder, ScreenHeader, useFocus } from './bits';
import { VirtualList } from './VirtualList';

/** One column header; `hidden` ones are read by screen readers only. */
export interface Column {
  label: string;
  class?: string;
  hidden?: boolean;
}

export interface FeedScreenProps {
  feed: FeedId;
  title: string;
  /** The CSS grid of the header and the rows, e.g. `grid-ord`. */
  grid: string;
  columns: readonly Column[];
  rowHeight: number;
  renderRow: (item: FeedItem) => VNode;
  /**
   * Keeps only matching rows (memoise it: a new function filters again).
   * While set, the empty text says "no match" and "load older" is hidden.
   */
  filter?: ((item: FeedItem) => boolean) | null;
  /** Rows of the screen's own instead of the feed's (newest first). */
  rows?: readonly FeedItem[];
  /** Whether to show "N shown" in the header (default: yes). */
  count?: boolean;
  /** Whether "load older" ends the list (default: unless filtered). */
  older?: boolean;
  /** Screen-reader name of the table (default: the title). */
  label?: string;
  /** What an empty table says (default: "nothing yet" / "no match"). */
  empty?: ComponentChildren;
  /** Controls in the header: filters, buttons, tabs. */
  tools?: ComponentChildren;
  /** A new key starts a fresh list (scroll position and all). */
  listKey?: string;
}

/** The feed's rows in memory and loaded from history, newest first. */
export function useFeedRows(feed: FeedId): readonly FeedItem[] {
  const { state } = useApp();
  return useMemo(() => rowsOf(state, feed), [state.feeds[feed], state.older[feed]]);
}

export function FeedScreen(props: FeedScreenProps): VNode {
  const feedRows = useFeedRows(props.feed);
  const focus = useFocus(props.feed);
  const source = props.rows ?? feedRows;
  const filter = props.filter ?? null;
  const rows = useMemo(() => (filter ? source.filter(filter) : source), [source, filter]);
  const filtered = filter !== null;
  return (
    <section class="screen">
      <ScreenHeader title={props.title} count={props.count === false ? undefined : rows.length}>
        {props.tools}
      </ScreenHeader>
      <VirtualList
        key={props.listKey}
        label={props.label ?? props.title}
        rows={rows}
        rowHeight={props.rowHeight}
        rowKey={(i) => i.id}
        rowAttrs={feedRowAttrs}
        renderRow={props.renderRow}
        {...focus}
        header={<HeaderRow grid={props.grid} columns={props.columns} />}
        empty={props.empty ?? <Empty filtered={filtered} />}
        footer={(props.older ?? !filtered) ? <LoadOlder feed={props.feed} /> : null}
      />
    </section>
  );
}

/** The column headers of a feed table. */
export function HeaderRow({ grid, columns }: { grid: string; columns: readonly Column[] }): VNode {
  return (
    <div class={`grid ${grid}`}>
      {columns.map((c) => (
        <HeadCell key={c.label} class={c.class}>
          {c.hidden ? <span class="sr-only">{c.label}</span> : c.label}
        </HeadCell>
      ))}
    </div>
  );
}
