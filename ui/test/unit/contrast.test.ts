// Readable contrast: every text colour of the theme, on every background it
// is used on, meets WCAG AA for normal text (4.5:1), in light and dark.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const css = readFileSync(new URL('../../src/styles/theme.css', import.meta.url), 'utf8');

function palette(block: string): Map<string, string> {
  return new Map(
    [...block.matchAll(/--([\w-]+):\s*(#[0-9a-fA-F]{6})\s*;/g)].map((m) => [m[1] as string, m[2] as string]),
  );
}

const light = palette(css.slice(0, css.indexOf('@media')));
const dark = new Map([...light, ...palette(css.slice(css.indexOf('@media')))]);

function luminance(hex: string): number {
  const [r, g, b] = [1, 3, 5].map((i) => {
    const c = parseInt(hex.slice(i, i + 2), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  }) as [number, number, number];
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}

/** [text, background] as the stylesheets pair them. */
const PAIRS: [string, string][] = [
  ['text', 'bg'],
  ['text', 'surface'],
  ['text', 'surface-2'],
  ['text', 'neutral-bg'],
  ['text', 'row-low'],
  ['text', 'row-overdue'],
  ['text', 'row-flash'],
  ['text', 'row-hover'],
  ['text', 'accent-bg'],
  ['muted', 'bg'],
  ['muted', 'surface'],
  ['muted', 'surface-2'],
  ['muted', 'row-low'],
  ['muted', 'row-overdue'],
  ['accent', 'surface'],
  ['accent', 'accent-bg'],
  ['accent-contrast', 'accent'],
  ['success', 'surface'],
  ['success', 'success-bg'],
  ['warning', 'surface'],
  ['warning', 'warning-bg'],
  ['warning', 'row-low'],
  ['danger', 'surface'],
  ['danger', 'danger-bg'],
  ['danger', 'row-overdue'],
  ['danger-contrast', 'danger-strong'],
  ['info', 'surface'],
  ['info', 'info-bg'],
];

describe('theme contrast (WCAG AA, 4.5:1)', () => {
  for (const [name, colours] of [
    ['light', light],
    ['dark', dark],
  ] as const) {
    it(`${name}: every text colour on its backgrounds`, () => {
      const failing = PAIRS.map(([fg, bg]) => {
        const a = colours.get(fg);
        const b = colours.get(bg);
        if (!a || !b) return `${fg} on ${bg}: colour missing from theme.css`;
        const ratio = contrast(a, b);
        return ratio < 4.5 ? `${fg} ${a} on ${bg} ${b}: ${ratio.toFixed(2)}` : null;
      }).filter(Boolean);
      expect(failing).toEqual([]);
    });
  }
});
