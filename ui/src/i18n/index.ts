//! Language choice and the translate function.
//!
//! `Settings.language` is `auto`, `zh-CN` or `en`; `auto` follows
//! `navigator.language` (any `zh*` → Chinese, anything else → English).
//! Lookups of keys built at run time (an order status the ERP invents, say)
//! fall back to the raw text, so unknown values still show, untranslated.

import type { Language } from '../bindings/Language';
import { en, type MessageKey } from './en';
import { zhCN } from './zh-CN';

export type Locale = 'zh-CN' | 'en';
export type { MessageKey };

export const TABLES: Record<Locale, Record<MessageKey, string>> = { 'zh-CN': zhCN, en };

export function resolveLocale(language: Language, navigatorLanguage: string | undefined): Locale {
  if (language === 'zh-CN' || language === 'en') return language;
  return (navigatorLanguage ?? '').toLowerCase().startsWith('zh') ? 'zh-CN' : 'en';
}

export type Params = Record<string, string | number>;

export interface Translator {
  locale: Locale;
  (key: MessageKey, params?: Params): string;
  /** A key made at run time; `fallback` when the table has none. */
  maybe(key: string, fallback: string, params?: Params): string;
}

function fill(template: string, params?: Params): string {
  if (!params) return template;
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => (name in params ? String(params[name]) : whole));
}

export function translator(locale: Locale): Translator {
  const table = TABLES[locale];
  const t = ((key: MessageKey, params?: Params) => fill(table[key], params)) as Translator;
  t.locale = locale;
  t.maybe = (key, fallback, params) => {
    const template = (table as Record<string, string>)[key];
    return template === undefined ? fallback : fill(template, params);
  };
  return t;
}
