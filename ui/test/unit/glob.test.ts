// Redis-style channel patterns for the debug log filter.
import { describe, expect, it } from 'vitest';
import { globMatch } from '../../src/state/glob';

describe('globMatch', () => {
  it('ws:* matches every ws: channel, including ones with colons', () => {
    expect(globMatch('ws:*', 'ws:inventory')).toBe(true);
    expect(globMatch('ws:*', 'ws:user:u1:notifications')).toBe(true);
    expect(globMatch('ws:*', 'other:inventory')).toBe(false);
  });

  it('* in the middle spans any run of characters', () => {
    expect(globMatch('ws:user:*:notifications', 'ws:user:u-1001:notifications')).toBe(true);
    expect(globMatch('ws:user:*:notifications', 'ws:user:u1:other')).toBe(false);
  });

  it('? is exactly one character', () => {
    expect(globMatch('ws:?rders', 'ws:orders')).toBe(true);
    expect(globMatch('ws:?rders', 'ws:rders')).toBe(false);
  });

  it('classes, ranges and negation', () => {
    expect(globMatch('ws:[io]*', 'ws:inventory')).toBe(true);
    expect(globMatch('ws:[io]*', 'ws:orders')).toBe(true);
    expect(globMatch('ws:[io]*', 'ws:finance')).toBe(false);
    expect(globMatch('ws:[a-f]*', 'ws:finance')).toBe(true);
    expect(globMatch('ws:[^f]*', 'ws:finance')).toBe(false);
  });

  it('a backslash makes the next character literal', () => {
    expect(globMatch('ws:a\\*b', 'ws:a*b')).toBe(true);
    expect(globMatch('ws:a\\*b', 'ws:axb')).toBe(false);
  });

  it('an empty pattern matches everything; an exact name matches only itself', () => {
    expect(globMatch('', 'ws:anything')).toBe(true);
    expect(globMatch('ws:orders', 'ws:orders')).toBe(true);
    expect(globMatch('ws:orders', 'ws:orders2')).toBe(false);
  });

  it('an unclosed class neither throws nor hangs', () => {
    expect(globMatch('ws:[abc', 'ws:a')).toBe(true);
    expect(globMatch('ws:[abc', 'ws:z')).toBe(false);
  });

  it('a pathological pattern stays fast', () => {
    const start = performance.now();
    expect(globMatch('*a*a*a*a*a*a*a*b', 'a'.repeat(2000))).toBe(false);
    expect(performance.now() - start).toBeLessThan(200);
  });
});
