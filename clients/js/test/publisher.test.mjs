// @tidings/publisher against a real redis-server (and, where said, a real
// gateway): the nine helpers, the shared append script, never throwing.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { APPEND_SCRIPT, Publisher } from '@tidings/publisher';
import { REPO, JS, freePort, startGateway, startRedis, until } from './harness.mjs';

const SAMPLES = [
  ['notifyUser', 'ws:user:u1:notifications', (p) => p.notifyUser('u1', { notificationType: 'warning', title: '库存不足', message: '螺丝刀 only 3 left', actionUrl: '/inventory/123' })],
  ['publishInventoryChange', 'ws:inventory', (p) => p.publishInventoryChange({ action: 'adjust', productId: '123', oldQuantity: 10, newQuantity: 15, productName: '螺丝刀' })],
  ['publishOrderStatus', 'ws:orders', (p) => p.publishOrderStatus({ orderType: 'sales', orderId: 'o-1', orderNumber: 'SO-1', oldStatus: 'pending', newStatus: 'shipped' })],
  ['publishApprovalRequest', 'ws:approvals', (p) => p.publishApprovalRequest({ resourceType: 'refund', resourceId: 'r-7', resourceNumber: 'RF-42', requesterId: 'u2', requesterName: '李娜' })],
  ['publishFinanceEvent', 'ws:finance', (p) => p.publishFinanceEvent('overdue', { action: 'overdue', recordType: 'payment', recordId: 'p-1', recordNumber: 'PAY-321', amount: 12850.5 })],
  ['publishDataChange', 'ws:products', (p) => p.publishDataChange({ resource: 'product', action: 'updated', resourceId: '123', changes: { price: 12.5 } })],
  ['publishSystemEvent', 'ws:system', (p) => p.publishSystemEvent('maintenance', { level: 'warning', message: 'Maintenance at 22:00', scheduledTime: 1_800_000_000_000 })],
  ['broadcast', 'ws:broadcast', (p) => p.broadcast({ message: 'Hello', title: 'Hi' })],
];

let redis;
let db;
before(async () => {
  redis = await startRedis();
  db = new Redis(redis.url);
});
after(async () => {
  db?.disconnect();
  await redis?.stop();
});

describe('the append script', () => {
  it('is byte for byte the file the Rust publishers include_str!', () => {
    const rust = readFileSync(join(REPO, 'crates', 'tidings', 'src', 'history', 'append.lua'), 'utf8');
    assert.equal(APPEND_SCRIPT, rust);
    assert.equal(readFileSync(join(JS, 'packages', 'publisher', 'dist', 'append.lua'), 'utf8'), rust);
    assert.match(readFileSync(join(REPO, 'crates', 'tidings', 'src', 'history.rs'), 'utf8'), /include_str!\("history\/append\.lua"\)/);
  });
});

describe('the nine helpers', () => {
  it('publish each event and record it in its channel history at the position they report', async () => {
    const publisher = new Publisher({ url: redis.url });
    const sub = new Redis(redis.url);
    const heard = [];
    sub.on('pmessage', (_pattern, channel, message) => heard.push([channel, message]));
    await sub.psubscribe('ws:*');
    try {
      for (const [name, channel, call] of SAMPLES) {
        const outcome = await call(publisher);
        assert.equal(outcome.error, undefined, `${name}: ${outcome.error?.message}`);
        assert.equal(outcome.channel, channel, name);
        assert.equal(outcome.receivers, 1, name);
        const epoch = await db.get('tidings:epoch');
        const [, id] = outcome.position.split(':');
        assert.equal(outcome.position, `${epoch}:${id}`, name);
        const entries = await db.xrange(`tidings:history:{${channel}}`, id, id);
        assert.deepEqual(entries, [[id, ['d', outcome.payload]]], `${name}: recorded at its position`);
        await until(() => heard.some(([c, m]) => c === channel && m === outcome.payload), `${name} on ${channel}`);
      }
      const result = await publisher.publishApprovalResult('rejected', { resourceType: 'refund', resourceId: 'r-7', resourceNumber: 'RF-42', requesterId: 'u2', requesterName: '李娜', approverName: '王伟', reason: '超出预算' });
      assert.equal(JSON.parse(result.approval.payload).type, 'approval:rejected');
      assert.equal(result.notification.channel, 'ws:user:u2:notifications');
      const notice = JSON.parse(result.notification.payload);
      assert.deepEqual([notice.notificationType, notice.title, notice.message, notice.userId], ['warning', 'Approval rejected', 'Your refund RF-42 was rejected by 王伟: 超出预算', 'u2']);
      const change = JSON.parse(heard.find(([c]) => c === 'ws:inventory')[1]);
      assert.equal(change.changeAmount, 5);
      assert.ok(Number.isSafeInteger(change.timestamp) && Math.abs(change.timestamp - Date.now()) < 60_000);
    } finally {
      sub.disconnect();
      await publisher.close();
    }
  });

  it('refuse an invalid user id or an ill-typed event before Redis, and say why', async () => {
    const warnings = [];
    const reported = [];
    const publisher = new Publisher({ url: redis.url, logger: { warn: (m) => warnings.push(m) }, onError: (o) => reported.push(o) });
    try {
      const bad = await publisher.notifyUser('u1:*', { notificationType: 'info', title: 't', message: 'm' });
      assert.equal(bad.error.kind, 'invalid');
      assert.equal(bad.receivers, undefined);
      const wrong = await publisher.publishInventoryChange({ action: 'teleport', productId: '1', oldQuantity: 1, newQuantity: 2 });
      assert.equal(wrong.error.kind, 'invalid');
      assert.equal(await db.exists('tidings:history:{ws:user:u1:*:notifications}'), 0);
      // Whatever business code passes, nothing is thrown at it.
      const odd = await Promise.all([
        publisher.publishInventoryChange(undefined),
        publisher.notifyUser('u1', null),
        publisher.publishDataChange({ resource: 'planet', action: 'created', resourceId: '1' }),
        publisher.publishFinanceEvent('bogus', { action: 'created', recordType: 'payment', recordId: 'r', recordNumber: 'n', amount: 1 }),
        publisher.publishDataChange({ resource: 'product', action: 'created', resourceId: '1', changes: { big: 1n } }),
        publisher.publishApprovalResult('approved', undefined),
      ]);
      for (const outcome of odd.slice(0, 5)) assert.equal(outcome.error?.kind, 'invalid', JSON.stringify(outcome));
      assert.equal(odd[5].approval.error?.kind, 'invalid');
      assert.equal(odd[5].notification.error?.kind, 'invalid');
      assert.equal(reported.length, 9);
      assert.equal(warnings.length, 9);
    } finally {
      await publisher.close();
    }
  });
});

describe('with Redis down', () => {
  it('never throws, comes back within the timeout, and works again once Redis is back', async () => {
    const port = await freePort();
    const warnings = [];
    const publisher = new Publisher({ url: `redis://127.0.0.1:${port}`, timeoutMs: 300, logger: { warn: (m) => warnings.push(m), debug() {} } });
    try {
      const started = Date.now();
      const outcomes = await Promise.all(Array.from({ length: 20 }, (_, i) => publisher.broadcast(`down ${i}`)));
      assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
      for (const outcome of outcomes) assert.ok(['unreachable', 'timeout'].includes(outcome.error?.kind), JSON.stringify(outcome.error));
      assert.equal(warnings.length, 1, 'one warning per streak of failures');
      const back = await startRedis(port);
      try {
        const outcome = await until(async () => {
          const o = await publisher.broadcast('back');
          return o.error ? undefined : o;
        }, 'a publish to succeed after Redis came back');
        assert.ok(outcome.position);
      } finally {
        await back.stop();
      }
    } finally {
      await publisher.close();
    }
  });
});

describe('with a gateway recording', () => {
  it('an event published through the script is stored once, and the gateway tells clients the same position', async () => {
    const gateway = await startGateway({ redisUrl: redis.url });
    const publisher = new Publisher({ url: redis.url });
    const ws = new WebSocket(gateway.ws);
    const frames = [];
    ws.on('message', (text) => frames.push(JSON.parse(String(text))));
    try {
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      ws.send(JSON.stringify({ type: 'subscribe', channels: ['orders'] }));
      await until(() => frames.some((f) => f.type === 'subscribed'), 'subscribed');
      const before = await db.xlen('tidings:history:{ws:orders}');
      const outcome = await publisher.publishOrderStatus({ orderType: 'return', orderId: 'o-9', orderNumber: 'RO-9', oldStatus: 'new', newStatus: 'approved' });
      const frame = await until(() => frames.find((f) => f.type === 'event'), 'the event frame');
      assert.equal(frame.position, outcome.position, 'the gateway recorder found the seen key the publisher wrote');
      assert.deepEqual(frame.data, JSON.parse(outcome.payload));
      assert.equal(await db.xlen('tidings:history:{ws:orders}'), before + 1, 'stored once');
    } finally {
      ws.close();
      await publisher.close();
      await gateway.stop();
    }
  });
});
