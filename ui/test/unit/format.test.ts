// Numbers, money, times and durations in each locale.
import { describe, expect, it } from 'vitest';
import {
  compactJson,
  formatChange,
  formatDate,
  formatDuration,
  formatMoney,
  formatRelative,
  relativeParts,
  secondsUntil,
} from '../../src/format';
import { translator } from '../../src/i18n';

const en = translator('en');
const zh = translator('zh-CN');

describe('formatMoney', () => {
  it('shows yuan with ¥ and two decimals in both languages', () => {
    expect(formatMoney(128450.5, 'en')).toBe('¥128,450.50');
    expect(formatMoney(128450.5, 'zh-CN')).toBe('¥128,450.50');
  });

  it('keeps the sign of refunds and negative amounts', () => {
    expect(formatMoney(-399, 'en')).toBe('-¥399.00');
  });

  it('shows a non-finite amount as it is rather than throwing', () => {
    expect(formatMoney(Number.NaN, 'en')).toBe('NaN');
  });
});

describe('formatChange', () => {
  it('always shows the sign of a change, none for zero', () => {
    expect(formatChange(100, 'en')).toBe('+100');
    expect(formatChange(-40, 'en')).toBe('-40');
    expect(formatChange(0, 'en')).toBe('0');
  });
});

describe('formatDate', () => {
  it('gives the date alone, in each locale, with no time of day', () => {
    const at = Date.UTC(2024, 10, 15, 12, 0, 0);
    expect(formatDate(at, 'en')).toBe('11/15/2024');
    expect(formatDate(at, 'zh-CN')).toBe('2024/11/15');
  });
});

describe('relative times', () => {
  const now = 1_700_000_000_000;

  it('under five seconds is "just now"', () => {
    expect(relativeParts(now - 4000, now)).toBeNull();
    expect(formatRelative(now - 4000, now, en)).toBe(en('common.justNow'));
  });

  it('counts whole units toward zero', () => {
    expect(relativeParts(now - 119_000, now)).toEqual({ value: -1, unit: 'minute' });
    expect(relativeParts(now - 2 * 3_600_000, now)).toEqual({ value: -2, unit: 'hour' });
    expect(relativeParts(now + 3 * 86_400_000, now)).toEqual({ value: 3, unit: 'day' });
  });

  it('says past and future in each language', () => {
    expect(formatRelative(now - 12 * 60_000, now, en)).toBe('12 min. ago');
    expect(formatRelative(now - 12 * 60_000, now, zh)).toBe('12分钟前');
    expect(formatRelative(now + 5 * 3_600_000, now, zh)).toBe('5小时后');
  });

  it('changes as the clock ticks', () => {
    const at = now - 58_000;
    expect(formatRelative(at, now, en)).not.toBe(formatRelative(at, now + 3000, en));
  });
});

describe('formatDuration', () => {
  it('hours and minutes in each language', () => {
    expect(formatDuration(90 * 60_000, en)).toBe('1 h 30 min');
    expect(formatDuration(90 * 60_000, zh)).toBe('1 小时 30 分钟');
    expect(formatDuration(2 * 3_600_000, en)).toBe('2 h');
    expect(formatDuration(45 * 60_000, en)).toBe('45 min');
    expect(formatDuration(20_000, en)).toBe('20 s');
  });

  it('a negative duration is "none", not nonsense', () => {
    expect(formatDuration(-1, en)).toBe(en('common.none'));
  });
});

describe('secondsUntil', () => {
  it('rounds up and never goes below zero', () => {
    expect(secondsUntil(10_500, 10_000)).toBe(1);
    expect(secondsUntil(15_000, 10_000)).toBe(5);
    expect(secondsUntil(9_000, 10_000)).toBe(0);
  });
});

describe('compactJson', () => {
  it('is one line, cut with an ellipsis', () => {
    expect(compactJson({ price: { from: 89, to: 79 } })).toBe('{"price":{"from":89,"to":79}}');
    const long = compactJson({ text: 'x'.repeat(500) }, 20);
    expect(long).toHaveLength(20);
    expect(long.endsWith('…')).toBe(true);
  });
});
