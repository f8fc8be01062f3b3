// Pure helpers behind the screens: settings validation, the product filter,
// overdue detection, the debug log filter and one-line summaries.
import { describe, expect, it } from 'vitest';
import type { DebugEntry } from '../../src/bindings/DebugEntry';
import type { InventoryChange } from '../../src/bindings/InventoryChange';
import { translator } from '../../src/i18n';
import { clip, filterDebug, RAW_SHOWN } from '../../src/screens/Debug';
import { isOverdue } from '../../src/screens/Feeds';
import { matchesProduct } from '../../src/screens/Inventory';
import { validateSettings } from '../../src/settingsForm';
import { summarize } from '../../src/summary';
import { item, sampleItems, settings } from '../fixtures/events';

const NOW = Date.UTC(2026, 2, 2, 2, 0);

describe('validateSettings', () => {
  it('accepts the sample settings', () => {
    expect(validateSettings(settings('en'))).toEqual({});
  });

  it('points at each bad field with a message key', () => {
    const s = settings('en');
    const bad = {
      ...s,
      source: { kind: 'redis' as const, url: 'http://x', userId: 'a b' },
      quietHours: { enabled: true, start: '25:00', end: '7' },
      lowStockThreshold: -1,
      coalesceCount: 0,
      erpBaseUrl: 'javascript:alert(1)',
    };
    expect(validateSettings(bad)).toEqual({
      url: 'set.err.redisUrl',
      userId: 'set.err.userId',
      quietStart: 'set.err.time',
      quietEnd: 'set.err.time',
      lowStockThreshold: 'set.err.number',
      coalesceCount: 'set.err.positive',
      erpBaseUrl: 'set.err.erpBase',
    });
  });

  it('a gateway URL must be ws:// or wss://', () => {
    const s = settings('en');
    expect(validateSettings({ ...s, source: { ...s.source, url: 'redis://x' } }).url).toBe('set.err.gatewayUrl');
  });

  it('a token file is given by its full path', () => {
    const s = settings('en');
    const withFile = (tokenFile: string) => validateSettings({ ...s, source: { ...s.source, tokenFile } }).tokenFile;
    expect(withFile('erp-token')).toBe('set.err.tokenFile');
    expect(withFile('~/erp-token')).toBe('set.err.tokenFile');
    expect(withFile('/run/user/1000/erp-token')).toBeUndefined();
    expect(withFile('C:\\Users\\me\\erp-token')).toBeUndefined();
    expect(withFile('')).toBeUndefined();
  });

  it('Redis needs a user id', () => {
    const s = settings('en');
    expect(validateSettings({ ...s, source: { kind: 'redis', url: 'redis://127.0.0.1:6379' } }).userId).toBe(
      'set.err.userRequired',
    );
  });

  it("an approval request's ERP page is a path or an http(s) address, never a protocol-relative one", () => {
    const s = settings('en');
    const pages = (order: string) => validateSettings({ ...s, approvalUrls: { ...s.approvalUrls, order } });
    expect(pages('/approvals/{resourceId}')).toEqual({});
    expect(pages('https://erp.example.com/approvals/{resourceId}')).toEqual({});
    expect(pages('')).toEqual({});
    expect(pages('//evil.example/x')['approvalUrl.order']).toBe('set.err.approvalUrl');
    expect(pages('/\\evil.example/x')['approvalUrl.order']).toBe('set.err.approvalUrl');
    expect(pages('javascript:alert(1)')['approvalUrl.order']).toBe('set.err.approvalUrl');
  });
});

describe('matchesProduct', () => {
  const e: InventoryChange = {
    action: 'adjust',
    productId: 'P-10023',
    productName: '不锈钢保温杯 500ml',
    variantId: 'BLK',
    oldQuantity: 1,
    newQuantity: 2,
    changeAmount: 1,
    timestamp: NOW,
  };

  it('matches name, id or variant, ignoring case', () => {
    expect(matchesProduct(e, '保温杯')).toBe(true);
    expect(matchesProduct(e, 'p-10023')).toBe(true);
    expect(matchesProduct(e, 'blk')).toBe(true);
    expect(matchesProduct(e, '绿茶')).toBe(false);
  });
});

describe('isOverdue', () => {
  it('is true for finance:overdue and for an overdue action', () => {
    const items = sampleItems(NOW).filter((i) => i.feed === 'finance');
    expect(items.filter(isOverdue).map((i) => (i.event as { recordNumber: string }).recordNumber)).toEqual([
      'PM-2026-000390',
    ]);
  });
});

describe('filterDebug', () => {
  const entries: DebugEntry[] = [
    { seq: 1, channel: 'ws:inventory', receivedAt: NOW, outcome: 'typed', raw: '{}' },
    { seq: 2, channel: 'ws:finance', receivedAt: NOW, outcome: 'malformed', raw: '[', reason: 'not JSON' },
    { seq: 3, channel: 'ws:user:u1:notifications', receivedAt: NOW, outcome: 'legacy', raw: '{}' },
  ];

  it('filters by channel pattern and kind, newest first', () => {
    expect(filterDebug(entries, 'ws:*', 'all').map((e) => e.seq)).toEqual([3, 2, 1]);
    expect(filterDebug(entries, 'ws:user:*', 'all').map((e) => e.seq)).toEqual([3]);
    expect(filterDebug(entries, 'ws:*', 'malformed').map((e) => e.seq)).toEqual([2]);
  });

  it('clips long payloads for the row', () => {
    expect(clip('x'.repeat(RAW_SHOWN + 50))).toHaveLength(RAW_SHOWN + 1);
    expect(clip('short')).toBe('short');
  });
});

describe('summarize', () => {
  it('says what an event is about, in each language', () => {
    const order = item(1, {
      type: 'order:status',
      orderType: 'sales',
      orderId: 'o',
      orderNumber: 'SO-2026-000123',
      oldStatus: 'pending',
      newStatus: 'shipped',
      customerName: '上海星辰贸易有限公司',
      timestamp: NOW,
    });
    expect(summarize(order, translator('en'))).toBe('SO-2026-000123 Pending → Shipped · 上海星辰贸易有限公司');
    expect(summarize(order, translator('zh-CN'))).toMatch(/^SO-2026-000123 .+ → .+ · 上海星辰贸易有限公司$/);
    const pay = item(2, {
      type: 'finance:payment',
      action: 'confirmed',
      recordType: 'payment',
      recordId: 'r',
      recordNumber: 'PM-1',
      amount: 1234.5,
      timestamp: NOW,
    });
    expect(summarize(pay, translator('en'))).toContain('¥1,234.50');
  });
});
