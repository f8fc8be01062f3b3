// Both languages are complete: same keys, no empty text, same placeholders,
// and the locale follows the system unless the user picked one.
import { describe, expect, it } from 'vitest';
import { en } from '../../src/i18n/en';
import { resolveLocale, translator } from '../../src/i18n';
import { zhCN } from '../../src/i18n/zh-CN';

const placeholders = (text: string): string[] => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1] as string).sort();

describe('i18n tables', () => {
  it('zh-CN has exactly the keys of en', () => {
    expect(Object.keys(zhCN).sort()).toEqual(Object.keys(en).sort());
  });

  it('no text is empty in either language', () => {
    for (const table of [en, zhCN] as Record<string, string>[]) {
      const empty = Object.entries(table).filter(([, text]) => text.trim() === '');
      expect(empty).toEqual([]);
    }
  });

  it('each key has the same placeholders in both languages', () => {
    const mismatched = Object.keys(en).filter(
      (key) =>
        placeholders((en as Record<string, string>)[key] as string).join() !==
        placeholders((zhCN as Record<string, string>)[key] as string).join(),
    );
    expect(mismatched).toEqual([]);
  });

  it('zh-CN is actually Chinese for the navigation', () => {
    expect(zhCN['nav.inventory']).toMatch(/[\u4e00-\u9fff]/);
    expect(zhCN['status.missed']).toMatch(/[\u4e00-\u9fff]/);
  });
});

describe('resolveLocale', () => {
  it('auto follows a Chinese system locale', () => {
    expect(resolveLocale('auto', 'zh-CN')).toBe('zh-CN');
    expect(resolveLocale('auto', 'zh-TW')).toBe('zh-CN');
  });

  it('auto falls back to English for other or missing locales', () => {
    expect(resolveLocale('auto', 'de-DE')).toBe('en');
    expect(resolveLocale('auto', undefined)).toBe('en');
  });

  it('an explicit choice wins over the system locale', () => {
    expect(resolveLocale('en', 'zh-CN')).toBe('en');
    expect(resolveLocale('zh-CN', 'en-US')).toBe('zh-CN');
  });
});

describe('translator', () => {
  it('fills placeholders', () => {
    expect(translator('en')('status.reconnecting', { s: 5 })).toBe('Reconnecting in 5 s');
  });

  it('maybe() falls back to the raw value for keys made at run time', () => {
    const t = translator('zh-CN');
    expect(t.maybe('ord.status.some-new-status', 'some-new-status')).toBe('some-new-status');
  });
});
