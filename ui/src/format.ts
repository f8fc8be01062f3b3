//! Numbers, money, times and durations in the UI's locale.
//!
//! Formatters are built once per locale and cached: building an
//! `Intl.NumberFormat` costs far more than using one, and lists format
//! hundreds of values per frame.

import type { Translator } from './i18n';
import type { Locale } from './i18n';

const cache = new Map<string, Intl.NumberFormat | Intl.DateTimeFormat | Intl.RelativeTimeFormat>();

function cached<T extends Intl.NumberFormat | Intl.DateTimeFormat | Intl.RelativeTimeFormat>(
  key: string,
  make: () => T,
): T {
  const hit = cache.get(key);
  if (hit) return hit as T;
  const made = make();
  cache.set(key, made);
  return made;
}

/** Money in yuan: `¥1,234.50` (narrow symbol, so English shows ¥ too, not CN¥). */
export function formatMoney(amount: number, locale: Locale): string {
  if (!Number.isFinite(amount)) return String(amount);
  return cached(
    `money:${locale}`,
    () =>
      new Intl.NumberFormat(locale, {
        style: 'currency',
        currency: 'CNY',
        currencyDisplay: 'narrowSymbol',
      }),
  ).format(amount);
}

export function formatNumber(n: number, locale: Locale): string {
  if (!Number.isFinite(n)) return String(n);
  return cached(`num:${locale}`, () => new Intl.NumberFormat(locale, { maximumFractionDigits: 3 })).format(n);
}

/** A quantity change with its sign always shown: `+5`, `−3`, `0`. */
export function formatChange(n: number, locale: Locale): string {
  if (!Number.isFinite(n)) return String(n);
  return cached(
    `chg:${locale}`,
    () => new Intl.NumberFormat(locale, { maximumFractionDigits: 3, signDisplay: 'exceptZero' }),
  ).format(n);
}

/** Date and time, to the second: `2024/11/15 09:30:05` / `11/15/2024, 9:30:05 AM`. */
export function formatDateTime(ms: number, locale: Locale): string {
  if (!Number.isFinite(ms)) return String(ms);
  return cached(
    `dt:${locale}`,
    () =>
      new Intl.DateTimeFormat(locale, {
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        minute: '2-digit',
        second: '2-digit',
      }),
  ).format(ms);
}

/** The date alone, for the time column of older events (it fits where date and time do not). */
export function formatDate(ms: number, locale: Locale): string {
  if (!Number.isFinite(ms)) return String(ms);
  return cached(
    `d:${locale}`,
    () => new Intl.DateTimeFormat(locale, { year: 'numeric', month: '2-digit', day: '2-digit' }),
  ).format(ms);
}

/** Time of day, for today's events. */
export function formatTime(ms: number, locale: Locale): string {
  if (!Number.isFinite(ms)) return String(ms);
  return cached(
    `t:${locale}`,
    () => new Intl.DateTimeFormat(locale, { hour: '2-digit', minute: '2-digit', second: '2-digit' }),
  ).format(ms);
}

export type RelativeUnit = 'second' | 'minute' | 'hour' | 'day';

/**
 * The unit and whole count to say how far `ms` is from `now` (negative: in
 * the past). Counts are truncated toward zero, so "1 minute ago" lasts from
 * 60 s to 119 s, and `null` means "just now" (under 5 s either way).
 */
export function relativeParts(ms: number, now: number): { value: number; unit: RelativeUnit } | null {
  const diff = ms - now;
  const abs = Math.abs(diff);
  const sign = diff < 0 ? -1 : 1;
  if (abs < 5_000) return null;
  if (abs < 60_000) return { value: sign * Math.floor(abs / 1000), unit: 'second' };
  if (abs < 3_600_000) return { value: sign * Math.floor(abs / 60_000), unit: 'minute' };
  if (abs < 86_400_000) return { value: sign * Math.floor(abs / 3_600_000), unit: 'hour' };
  return { value: sign * Math.floor(abs / 86_400_000), unit: 'day' };
}

/** "5 minutes ago", "in 2 hours", "刚刚". */
export function formatRelative(ms: number, now: number, t: Translator): string {
  const parts = relativeParts(ms, now);
  if (!parts) return t('common.justNow');
  return cached(
    `rel:${t.locale}`,
    () => new Intl.RelativeTimeFormat(t.locale, { numeric: 'always', style: 'short' }),
  ).format(parts.value, parts.unit);
}

/** A duration in ms as hours and minutes: "2 h 30 min", "2 小时 30 分钟". */
export function formatDuration(ms: number, t: Translator): string {
  if (!Number.isFinite(ms) || ms < 0) return t('common.none');
  const totalMinutes = Math.round(ms / 60_000);
  if (totalMinutes === 0) return t('dur.s', { s: Math.round(ms / 1000) });
  const h = Math.floor(totalMinutes / 60);
  const m = totalMinutes % 60;
  if (h === 0) return t('dur.m', { m });
  if (m === 0) return t('dur.h', { h });
  return t('dur.hm', { h, m });
}

/** Seconds left until `at`, never negative (for "reconnecting in N s"). */
export function secondsUntil(at: number, now: number): number {
  return Math.max(0, Math.ceil((at - now) / 1000));
}

/**
 * A JSON value as one short line of text (the `changes` of a data change),
 * cut at `max` characters. Text only: the result is rendered as a text node.
 */
export function compactJson(value: unknown, max = 160): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? '';
  } catch {
    text = String(value);
  }
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
