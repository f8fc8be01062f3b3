//! A windowed list of fixed-height rows: only the rows in view (plus a few
//! either side, never more than `MAX_RENDERED`) are in the DOM, whatever the
//! list's length, so a feed of thousands of events costs the same to render
//! as a screenful.
//!
//! New rows arrive at the top (lists are newest first). When the reader has
//! scrolled down, the list keeps the row they are looking at in place instead
//! of letting the flood push it away. `focusKey` scrolls to a row and flashes
//! it (a clicked notification, a toast).

import type { ComponentChildren, VNode } from 'preact';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';

export const MAX_RENDERED = 200;
const OVERSCAN = 2;

export interface VirtualListProps<T> {
  rows: readonly T[];
  rowHeight: number;
  rowKey: (row: T) => string;
  renderRow: (row: T, index: number) => VNode;
  /** Column headers, kept in view above the rows. */
  header?: ComponentChildren;
  /** Shown instead of rows when there are none. */
  empty?: ComponentChildren;
  /** Below the last row (e.g. "load older"). */
  footer?: ComponentChildren;
  /** Scroll to this row and highlight it; change `focusNonce` to repeat. */
  focusKey?: string | null;
  focusNonce?: number;
  label: string;
  className?: string;
  /** Extra attributes on each row's element (stable test hooks, data-*). */
  rowAttrs?: (row: T) => Record<string, string>;
}

export function VirtualList<T>(props: VirtualListProps<T>): VNode {
  const { rows, rowHeight, rowKey } = props;
  const scroller = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [viewport, setViewport] = useState(600);
  const [flashKey, setFlashKey] = useState<string | null>(null);
  // The row at the top of the view, and where it was, to keep it in place.
  const anchor = useRef<{ key: string; index: number } | null>(null);

  useEffect(() => {
    const el = scroller.current;
    if (!el) return;
    setViewport(el.clientHeight);
    const observer = new ResizeObserver(() => setViewport(el.clientHeight));
    observer.observe(el);
    return () => observer.disconnect();
  }, []);

  // Keep the anchored row in place when rows are added above it.
  useLayoutEffect(() => {
    const el = scroller.current;
    const a = anchor.current;
    if (!el || !a || el.scrollTop === 0) return;
    const current = rows[a.index];
    if (current && rowKey(current) === a.key) return;
    // Rows only ever get added at the top or dropped at the bottom, so the
    // anchor can only have moved down.
    for (let i = a.index + 1; i < rows.length; i++) {
      const row = rows[i] as T;
      if (rowKey(row) === a.key) {
        const shift = (i - a.index) * rowHeight;
        el.scrollTop += shift;
        a.index = i;
        setScrollTop(el.scrollTop);
        return;
      }
    }
  }, [rows]);

  useLayoutEffect(() => {
    const key = props.focusKey;
    const el = scroller.current;
    if (!key || !el) return;
    const index = rows.findIndex((row) => rowKey(row) === key);
    if (index < 0) return;
    el.scrollTop = Math.max(0, index * rowHeight - el.clientHeight / 3);
    setScrollTop(el.scrollTop);
    setFlashKey(key);
    const timer = setTimeout(() => setFlashKey(null), 2500);
    return () => clearTimeout(timer);
  }, [props.focusKey, props.focusNonce]);

  const onScroll = (): void => {
    const el = scroller.current;
    if (!el) return;
    setScrollTop(el.scrollTop);
    const index = Math.floor(el.scrollTop / rowHeight);
    const row = rows[index];
    anchor.current = row ? { key: rowKey(row), index } : null;
  };

  const first = Math.max(0, Math.floor(scrollTop / rowHeight) - OVERSCAN);
  const count = Math.min(MAX_RENDERED, Math.ceil(viewport / rowHeight) + 2 * OVERSCAN);
  const last = Math.min(rows.length, first + count);
  const visible: VNode[] = [];
  for (let i = first; i < last; i++) {
    const row = rows[i] as T;
    const key = rowKey(row);
    visible.push(
      // Keyed by position in the window, not by row: when a flood pushes new
      // rows in at the top every frame, the same DOM nodes are updated in
      // place instead of being torn down and rebuilt.
      <div
        key={i - first}
        role="row"
        aria-rowindex={i + 2}
        class={key === flashKey ? 'vrow flash' : 'vrow'}
        data-key={key}
        {...props.rowAttrs?.(row)}
      >
        {props.renderRow(row, i)}
      </div>,
    );
  }

  return (
    <div class={`vlist ${props.className ?? ''}`} role="table" aria-label={props.label} aria-rowcount={rows.length + 1}>
      {props.header ? (
        <div class="vhead" role="row" aria-rowindex={1}>
          {props.header}
        </div>
      ) : null}
      <div class="vscroll" ref={scroller} onScroll={onScroll} tabIndex={0}>
        {rows.length === 0 ? (
          <div class="vempty">{props.empty}</div>
        ) : (
          <div class="vspace" style={{ height: `${rows.length * rowHeight}px` }}>
            <div
              class="vwindow"
              role="rowgroup"
              style={{ transform: `translateY(${first * rowHeight}px)`, '--row-h': `${rowHeight}px` }}
            >
              {visible}
            </div>
          </div>
        )}
        {props.footer ? <div class="vfoot">{props.footer}</div> : null}
      </div>
    </div>
  );
}
