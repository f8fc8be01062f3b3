//! Debug log: every raw message on every channel, typed, legacy or
//! malformed, with a Redis-style channel pattern filter, pause/resume,
//! clear, the pipeline's counters and the malformed reasons seen.

import type { VNode } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import type { DebugEntry } from '../bindings/DebugEntry';
import type { Outcome } from '../bindings/Outcome';
import { Cell, HeadCell, ScreenHeader, Tag, TimeCell, type Tone } from '../components/bits';
import { VirtualList } from '../components/VirtualList';
import { useApp } from '../context';
import { formatNumber } from '../format';
import { globMatch } from '../state/glob';

const OUTCOME_TONE: Record<Outcome, Tone> = { typed: 'success', legacy: 'warning', malformed: 'danger' };

/** Characters of a payload shown in its row (the tooltip has it all): the
 * row clips it anyway, and laying out text nobody sees costs every frame. */
export const RAW_SHOWN = 200;

export function clip(raw: string): string {
  return raw.length > RAW_SHOWN ? `${raw.slice(0, RAW_SHOWN)}…` : raw;
}

export function filterDebug(entries: readonly DebugEntry[], pattern: string, outcome: Outcome | 'all'): DebugEntry[] {
  const out: DebugEntry[] = [];
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i] as DebugEntry;
    if (outcome !== 'all' && e.outcome !== outcome) continue;
    if (!globMatch(pattern, e.channel)) continue;
    out.push(e);
  }
  return out;
}

export function Debug(): VNode {
  const { state, t, actions } = useApp();
  const [pattern, setPattern] = useState('ws:*');
  const [outcome, setOutcome] = useState<Outcome | 'all'>('all');
  const [frozen, setFrozen] = useState<{ entries: readonly DebugEntry[]; seq: number } | null>(null);
  const source = frozen ? frozen.entries : state.debug;
  const rows = useMemo(() => filterDebug(source, pattern.trim(), outcome), [source, pattern, outcome]);
  const loc = t.locale;
  const c = state.counters;
  const reasons = useMemo(() => [...state.reasons.entries()].sort((a, b) => b[1] - a[1]), [state.reasons]);

  return (
    <section class="screen debug">
      <ScreenHeader title={t('dbg.title')} count={rows.length}>
        <label class="field inline">
          <span>{t('dbg.pattern')}</span>
          <input
            class="input mono"
            value={pattern}
            title={t('dbg.patternHint')}
            aria-describedby="pattern-hint"
            onInput={(ev) => setPattern((ev.target as HTMLInputElement).value)}
          />
        </label>
        <span id="pattern-hint" class="sr-only">
          {t('dbg.patternHint')}
        </span>
        <label class="field inline">
          <span>{t('dbg.outcome')}</span>
          <select
            class="input"
            value={outcome}
            onChange={(ev) => setOutcome((ev.target as HTMLSelectElement).value as Outcome | 'all')}
          >
            <option value="all">{t('dbg.all')}</option>
            <option value="typed">{t('dbg.outcome.typed')}</option>
            <option value="legacy">{t('dbg.outcome.legacy')}</option>
            <option value="malformed">{t('dbg.outcome.malformed')}</option>
          </select>
        </label>
        <button
          type="button"
          class={frozen ? 'btn primary' : 'btn'}
          aria-pressed={frozen !== null}
          onClick={() => setFrozen(frozen ? null : { entries: state.debug, seq: state.lastDebugSeq })}
        >
          {frozen ? t('dbg.resume') : t('dbg.pause')}
        </button>
        <button
          type="button"
          class="btn"
          onClick={() => {
            actions.clearDebug();
            if (frozen) setFrozen({ entries: [], seq: state.lastDebugSeq });
          }}
        >
          {t('dbg.clear')}
        </button>
        {frozen ? (
          <span class="muted">
            {t('dbg.newWhilePaused', { n: formatNumber(state.lastDebugSeq - frozen.seq, loc) })}
          </span>
        ) : null}
      </ScreenHeader>
      <div class="counters" aria-live="off">
        {(
          [
            ['dbg.received', c.received, 'neutral'],
            ['dbg.typed', c.typed, 'success'],
            ['dbg.legacy', c.legacy, 'warning'],
            ['dbg.malformed', c.malformed, 'danger'],
            ['dbg.duplicates', c.duplicates, 'neutral'],
          ] as const
        ).map(([key, value, tone]) => (
          <div class={`counter tone-${tone}`} key={key}>
            <span class="counter-label">{t(key)}</span>
            <span class="counter-value" data-counter={key}>
              {formatNumber(value, loc)}
            </span>
          </div>
        ))}
      </div>
      <div class="debug-body">
        <VirtualList
          label={t('dbg.title')}
          rows={rows}
          rowHeight={34}
          rowKey={(e) => String(e.seq)}
          rowAttrs={(e) => ({ 'data-testid': 'debug-row', 'data-kind': e.outcome })}
          renderRow={(e) => (
            <div class={`grid grid-dbg out-${e.outcome}`}>
              <TimeCell ms={e.receivedAt} />
              <Cell class="mono ellipsis" title={e.channel}>
                {e.channel}
              </Cell>
              <Cell>
                <Tag tone={OUTCOME_TONE[e.outcome] ?? 'neutral'}>{t.maybe(`dbg.outcome.${e.outcome}`, e.outcome)}</Tag>
              </Cell>
              <Cell class="mono ellipsis small raw" title={e.raw}>
                {clip(e.raw)}
              </Cell>
              <Cell class="ellipsis small danger-text" title={e.reason}>
                {e.reason ?? ''}
              </Cell>
            </div>
          )}
          header={
            <div class="grid grid-dbg">
              <HeadCell>{t('common.time')}</HeadCell>
              <HeadCell>{t('dbg.channel')}</HeadCell>
              <HeadCell>{t('dbg.outcome')}</HeadCell>
              <HeadCell>{t('dbg.raw')}</HeadCell>
              <HeadCell>{t('dbg.reason')}</HeadCell>
            </div>
          }
          empty={<p class="muted">{pattern.trim() || outcome !== 'all' ? t('common.noMatch') : t('common.empty')}</p>}
        />
        <aside class="reasons" aria-labelledby="reasons-title">
          <h2 id="reasons-title">{t('dbg.reasons')}</h2>
          {reasons.length === 0 ? (
            <p class="muted small">{t('dbg.noReasons')}</p>
          ) : (
            <ul>
              {reasons.map(([reason, count]) => (
                <li key={reason}>
                  <span class="reason-text">{reason === '…' ? t('dbg.otherReasons') : reason || t('common.none')}</span>
                  <span class="badge">{formatNumber(count, loc)}</span>
                </li>
              ))}
            </ul>
          )}
        </aside>
      </div>
    </section>
  );
}
