// The dashboard state: snapshot, batches folded in, caps, read state,
// critical notices, pending approvals and focus requests.
import { describe, expect, it } from 'vitest';
import type { Event } from '../../src/bindings/Event';
import type { UiBatch } from '../../src/bindings/UiBatch';
import {
  acknowledge,
  addOlder,
  applyBatches,
  clearDebug,
  currentUser,
  DEBUG_CAP,
  FEED_CAP,
  initialState,
  markAllRead,
  markRead,
  REASON_CAP,
  rowsOf,
  TOAST_CAP,
} from '../../src/state/store';
import { item, sampleSnapshot, snapshotOf, USER } from '../fixtures/events';

const NOW = Date.UTC(2026, 2, 2, 2, 0);
const empty = () => initialState(snapshotOf([], [], 'en'));
const batch = (b: Partial<UiBatch>): UiBatch => ({ items: [], debug: [], toasts: [], ...b });
const inv = (newQuantity: number, productId = 'P-1'): Event => ({
  type: 'inventory:change',
  action: 'outbound',
  productId,
  oldQuantity: newQuantity + 1,
  newQuantity,
  changeAmount: -1,
  timestamp: NOW,
});

describe('initialState', () => {
  it('takes feeds, unread counts and settings from the snapshot', () => {
    const snap = sampleSnapshot(NOW, 'zh-CN');
    const state = initialState(snap);
    expect(state.feeds.inventory).toHaveLength(snap.feeds.inventory?.length ?? -1);
    expect(state.unread).toMatchObject(snap.unread);
    expect(state.settings.language).toBe('zh-CN');
  });

  it('computes which approval requests are still pending', () => {
    const state = initialState(sampleSnapshot(NOW));
    const numbers = [...state.pending.values()].map((i) => (i.event as { resourceNumber: string }).resourceNumber);
    expect(numbers.sort()).toEqual(['ADJ-2026-000005', 'RF-2026-000031', 'SO-2026-000130']);
  });

  it('raises unread critical system notices as banners', () => {
    const state = initialState(sampleSnapshot(NOW));
    expect(state.criticals.map((i) => i.event.type)).toEqual(['system:alert']);
  });
});

describe('applyBatches', () => {
  it('appends items to their feed, newest last, and counts them', () => {
    const state = applyBatches(empty(), [batch({ items: [item(1, inv(5)), item(2, inv(6))] })], NOW);
    expect(state.feeds.inventory.map((i) => i.seq)).toEqual([1, 2]);
    expect(state.totals.inventory).toBe(2);
    expect(rowsOf(state, 'inventory').map((i) => i.seq)).toEqual([2, 1]);
  });

  it('drops items the snapshot already had (seq not above the last one)', () => {
    const state = applyBatches(
      empty(),
      [batch({ items: [item(5, inv(5))] }), batch({ items: [item(5, inv(5)), item(4, inv(4)), item(6, inv(6))] })],
      NOW,
    );
    expect(state.feeds.inventory.map((i) => i.seq)).toEqual([5, 6]);
  });

  it('keeps at most FEED_CAP items per feed, the newest', () => {
    const items = Array.from({ length: FEED_CAP + 500 }, (_, k) => item(k + 1, inv(k)));
    const state = applyBatches(empty(), [batch({ items })], NOW);
    expect(state.feeds.inventory).toHaveLength(FEED_CAP);
    expect(state.feeds.inventory[0]?.seq).toBe(501);
    expect(state.totals.inventory).toBe(FEED_CAP + 500);
  });

  it('keeps at most DEBUG_CAP debug entries and REASON_CAP distinct reasons', () => {
    const debug = Array.from({ length: DEBUG_CAP + 10 }, (_, k) => ({
      seq: k + 1,
      channel: 'ws:orders',
      receivedAt: NOW,
      outcome: 'malformed' as const,
      raw: '{}',
      reason: `reason ${k}`,
    }));
    const state = applyBatches(empty(), [batch({ debug })], NOW);
    expect(state.debug).toHaveLength(DEBUG_CAP);
    expect(state.reasons.size).toBe(REASON_CAP);
    expect(state.reasons.get('…')).toBe(DEBUG_CAP + 10 - (REASON_CAP - 1));
  });

  it('takes the latest status, counters and unread counts', () => {
    const status = {
      kind: 'redis' as const,
      url: 'redis://x',
      connection: { state: 'offline' as const, reason: 'refused' },
      missedSince: NOW,
    };
    const state = applyBatches(
      empty(),
      [
        batch({ unread: { orders: 3 } }),
        batch({
          status,
          unread: { mine: 1 },
          counters: { received: 9, typed: 8, legacy: 1, malformed: 0, duplicates: 0 },
        }),
      ],
      NOW,
    );
    expect(state.status).toEqual(status);
    expect(state.unread.orders).toBe(3);
    expect(state.unread.mine).toBe(1);
    expect(state.counters.received).toBe(9);
  });

  it('a focus request is recorded with a new nonce each time', () => {
    const s1 = applyBatches(empty(), [batch({ focus: { feed: 'orders', itemId: 'orders#1' } })], NOW);
    const s2 = applyBatches(s1, [batch({ focus: { feed: 'orders', itemId: 'orders#1' } })], NOW);
    expect(s1.focus?.itemId).toBe('orders#1');
    expect(s2.focus?.nonce).not.toBe(s1.focus?.nonce);
  });

  it('keeps the newest TOAST_CAP toasts', () => {
    const toasts = Array.from({ length: TOAST_CAP + 2 }, (_, k) => ({
      title: `t${k}`,
      body: '',
      urgency: 'normal' as const,
    }));
    const state = applyBatches(empty(), [batch({ toasts })], NOW);
    expect(state.toasts.map((t) => t.toast.title)).toEqual(toasts.slice(2).map((t) => t.title));
  });

  it('returns the same state for no batches', () => {
    const state = empty();
    expect(applyBatches(state, [], NOW)).toBe(state);
  });
});

describe('read state and acknowledgements', () => {
  it('markRead marks the items and lowers the unread count', () => {
    const state = initialState(sampleSnapshot(NOW));
    const unreadMine = state.feeds.mine.filter((i) => !i.read);
    const next = markRead(state, [unreadMine[0]?.id ?? '']);
    expect(next.unread.mine).toBe(state.unread.mine - 1);
    expect(next.feeds.mine.find((i) => i.id === unreadMine[0]?.id)?.read).toBe(true);
  });

  it('markAllRead clears one feed and leaves the others', () => {
    const state = initialState(sampleSnapshot(NOW));
    const next = markAllRead(state, 'mine');
    expect(next.unread.mine).toBe(0);
    expect(next.feeds.mine.every((i) => i.read)).toBe(true);
    expect(next.unread.orders).toBe(state.unread.orders);
  });

  it('acknowledging a critical notice removes its banner', () => {
    const state = initialState(sampleSnapshot(NOW));
    const id = state.criticals[0]?.id ?? '';
    expect(acknowledge(state, id).criticals).toHaveLength(0);
  });

  it('clearDebug empties the log and the reasons, not the counters', () => {
    const state = initialState(sampleSnapshot(NOW));
    const next = clearDebug(state);
    expect(next.debug).toHaveLength(0);
    expect(next.reasons.size).toBe(0);
    expect(next.counters).toBe(state.counters);
  });
});

describe('approvals', () => {
  const request = (id: string, seq: number) =>
    item(seq, {
      type: 'approval:request',
      resourceType: 'order',
      resourceId: id,
      resourceNumber: `SO-${id}`,
      requesterId: 'u2',
      requesterName: '陈静',
      timestamp: NOW,
    });
  const decided = (id: string, seq: number) =>
    item(seq, {
      type: 'approval:approved',
      resourceType: 'order',
      resourceId: id,
      resourceNumber: `SO-${id}`,
      requesterId: 'u2',
      requesterName: '陈静',
      approverId: USER,
      timestamp: NOW,
    });

  it('a decision removes its request from pending; a resubmission makes it pending again', () => {
    let state = applyBatches(empty(), [batch({ items: [request('1', 1), request('2', 2)] })], NOW);
    expect(state.pending.size).toBe(2);
    state = applyBatches(state, [batch({ items: [decided('1', 3)] })], NOW);
    expect([...state.pending.keys()]).toHaveLength(1);
    state = applyBatches(state, [batch({ items: [request('1', 4)] })], NOW);
    expect(state.pending.size).toBe(2);
  });

  it('a flood of other approval traffic does not push a pending request out', () => {
    let state = applyBatches(empty(), [batch({ items: [request('keep', 1)] })], NOW);
    const others = Array.from({ length: FEED_CAP + 10 }, (_, k) => decided(`other-${k}`, k + 2));
    state = applyBatches(state, [batch({ items: others })], NOW);
    expect(state.feeds.approvals.some((i) => i.seq === 1)).toBe(false);
    expect(state.pending.size).toBe(1);
  });
});

describe('history and the current user', () => {
  it('older pages go below the live rows, without duplicates', () => {
    const state = applyBatches(empty(), [batch({ items: [item(10, inv(1)), item(11, inv(2))] })], NOW);
    const next = addOlder(state, 'inventory', [item(9, inv(3)), item(10, inv(1)), item(8, inv(4))], 200);
    expect(rowsOf(next, 'inventory').map((i) => i.seq)).toEqual([11, 10, 9, 8]);
    expect(next.olderDone.inventory).toBe(true);
  });

  it('the current user is the configured user id', () => {
    expect(currentUser(initialState(sampleSnapshot(NOW)))).toBe(USER);
  });
});

describe('notices from the core', () => {
  it('a notice in a batch is kept for the banner until the next one', () => {
    const told = applyBatches(empty(), [batch({ notice: 'The history database was damaged' })], NOW);
    expect(told.notice).toBe('The history database was damaged');
    expect(applyBatches(told, [batch({})], NOW).notice).toBe('The history database was damaged');
  });
});

describe('snoozes', () => {
  it('start from the snapshot and are replaced whole by a batch that carries them', () => {
    const state = initialState({ ...snapshotOf([], [], 'en'), snoozed: { a: NOW + 60_000 } });
    expect(state.snoozed).toEqual({ a: NOW + 60_000 });
    const kept = applyBatches(state, [batch({})], NOW);
    expect(kept.snoozed).toEqual({ a: NOW + 60_000 });
    const changed = applyBatches(state, [batch({ snoozed: { b: NOW + 900_000 } })], NOW);
    expect(changed.snoozed).toEqual({ b: NOW + 900_000 });
  });
});
