// The contract across languages, through a real Redis:
// - every event the TypeScript helpers publish is decoded by the Rust
//   contract (`tidings tail --json`, crates/tidings-events) as typed, and
//   reads back as exactly the object sent (field names, types, changeAmount,
//   timestamp);
// - every event the Rust publishers send (`tidings publish …`) type-checks
//   against the client's `Event` type (tsc, strict) and is classified typed;
// - the client's classifier agrees with the Rust decoder on legacy and
//   malformed payloads.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { classify } from '@tidings/client';
import { Publisher } from '@tidings/publisher';
import { JS, startRedis, startTail, tidings, until } from './harness.mjs';

let redis;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis?.stop();
});

describe('TypeScript publisher → Rust decoder', () => {
  it('every helper’s event is typed for Rust and reads back field for field', async () => {
    const tail = await startTail(redis.url);
    const publisher = new Publisher({ url: redis.url });
    try {
      const approval = { resourceType: 'payment', resourceId: 'pay-1', resourceNumber: 'PAY-1', requesterId: 'u2', requesterName: '李娜', approverId: 'u1', approverName: '王伟', comment: 'ok' };
      const outcomes = [
        await publisher.notifyUser('u1', { notificationType: 'error', title: 't', message: 'm', actionUrl: '/x', actionLabel: 'Open' }),
        await publisher.notifyUser('a.b-c_d@e', { type: 'info', title: 'alias', message: 'type as an alias of notificationType' }),
        await publisher.publishInventoryChange({ action: 'outbound', productId: 'p-1', oldQuantity: 10.5, newQuantity: 3, productName: '螺丝刀', variantId: 'v', reason: 'r', operator: 'o', userId: 'u1' }),
        await publisher.publishOrderStatus({ orderType: 'purchase', orderId: 'o', orderNumber: 'PO-1', oldStatus: 'a', newStatus: 'b', customerId: 'c', customerName: 'n' }),
        await publisher.publishApprovalRequest({ ...approval, reason: 'why' }),
        ...Object.values(await publisher.publishApprovalResult('approved', approval)),
        await publisher.publishFinanceEvent('payment', { action: 'created', recordType: 'paymentOut', recordId: 'r', recordNumber: 'N', amount: 0.1 + 0.2, supplierId: 's', supplierName: 'S' }),
        await publisher.publishFinanceEvent('refund', { action: 'confirmed', recordType: 'refund', recordId: 'r', recordNumber: 'N', amount: 100 }),
        await publisher.publishDataChange({ resource: 'user', action: 'deleted', resourceId: 'u9', resourceName: 'x', changes: { nested: { a: [1, null, 'z'] } } }),
        await publisher.publishDataChange({ resource: 'category', action: 'created', resourceId: 'c1' }),
        await publisher.publishDataChange({ resource: 'supplier', action: 'updated', resourceId: 's1' }),
        await publisher.publishDataChange({ resource: 'customer', action: 'updated', resourceId: 'c2' }),
        await publisher.publishSystemEvent('alert', { level: 'critical', message: 'm', affectedUsers: ['u1', 'u2'], scheduledTime: 1_800_000_000_000, estimatedDuration: 3_600_000 }),
        await publisher.publishSystemEvent('update', { level: 'info', message: 'm' }),
        await publisher.broadcast('plain string'),
        await publisher.broadcast({ message: 'm', level: 'success', title: 't' }),
      ];
      const channels = { notification: 'ws:user:', 'data:change': 'ws:' };
      await until(() => tail.lines.length >= outcomes.length, `${outcomes.length} lines from tidings tail (got ${tail.lines.length})`);
      assert.equal(tail.lines.length, outcomes.length);
      for (const [i, outcome] of outcomes.entries()) {
        assert.equal(outcome.error, undefined, outcome.error?.message);
        const line = tail.lines[i];
        const sent = JSON.parse(outcome.payload);
        assert.equal(line.channel, outcome.channel);
        assert.equal(line.outcome, 'typed', `${outcome.payload}: ${line.reason}`);
        assert.equal(line.kind, sent.type);
        assert.deepEqual(line.event, sent, 'Rust reads back exactly what TypeScript sent');
        assert.ok(Number.isSafeInteger(line.event.timestamp));
        assert.ok(outcome.channel.startsWith(channels[sent.type] ?? 'ws:'));
      }
      const inventory = tail.lines.find((l) => l.kind === 'inventory:change').event;
      assert.equal(inventory.changeAmount, 3 - 10.5);
      assert.deepEqual(
        tail.lines.filter((l) => l.kind === 'data:change').map((l) => [l.event.resource, l.channel]),
        [['user', 'ws:system'], ['category', 'ws:products'], ['supplier', 'ws:suppliers'], ['customer', 'ws:customers']],
      );
    } finally {
      await publisher.close();
      await tail.stop();
    }
  });

  it('the client classifies legacy and malformed payloads as the Rust decoder does', async () => {
    const tail = await startTail(redis.url);
    const raw = new Redis(redis.url);
    const samples = [
      '{"type":"adjust","productId":"123","quantity":10}',
      '{"productId":"no type"}',
      '{"type":7}',
      'not json',
      '[1,2]',
      '"a string"',
      '{"type":"inventory:change","productId":"1"}',
      '{"type":"inventory:change","action":"teleport","productId":"1","oldQuantity":1,"newQuantity":2,"changeAmount":1,"timestamp":1}',
      '{"type":"inventory:change","action":"adjust","productId":"1","oldQuantity":"1","newQuantity":2,"changeAmount":1,"timestamp":1}',
      '{"type":"inventory:change","action":"adjust","productId":"1","oldQuantity":1,"newQuantity":2,"changeAmount":1,"timestamp":1.5}',
      '{"type":"inventory:change","action":"adjust","productId":"1","oldQuantity":1,"newQuantity":2,"changeAmount":1,"timestamp":1,"productName":null,"extra":{"kept":true}}',
      '{"type":"broadcast","message":"no level is info","timestamp":1}',
      '{"type":"broadcast","message":"m","level":null,"timestamp":1}',
      '{"type":"system:alert","level":"warning","message":"m","affectedUsers":["a",2],"timestamp":1}',
      '{"type":"data:change","resource":"product","action":"created","resourceId":"1","changes":[1],"timestamp":1}',
      '{"type":"notification","notificationType":"info","title":"t","timestamp":1}',
      '{"type":"finance:overdue","action":"overdue","recordType":"payment","recordId":"1","recordNumber":"n","amount":-3.25,"timestamp":1,"userId":"u"}',
      '{"type":"order:status","orderType":"sales","orderId":"1","orderNumber":"n","oldStatus":"a","newStatus":"b","timestamp":1,"userId":5}',
    ];
    try {
      for (const payload of samples) await raw.publish('ws:inventory', payload);
      await until(() => tail.lines.length >= samples.length, 'every sample from tidings tail');
      for (const [i, payload] of samples.entries()) {
        let parsed;
        try {
          parsed = JSON.parse(payload);
        } catch {
          parsed = Symbol('not json');
        }
        const ts = classify(parsed) ?? 'malformed';
        assert.equal(ts, tail.lines[i].outcome, `${payload}: Rust says ${tail.lines[i].outcome} (${tail.lines[i].reason ?? ''}), the client ${ts}`);
      }
    } finally {
      raw.disconnect();
      await tail.stop();
    }
  });
});

describe('Rust publishers → TypeScript types', () => {
  it('every event of the Rust publishers type-checks as Event (tsc, strict) and is classified typed', async () => {
    const sub = new Redis(redis.url);
    const heard = [];
    sub.on('pmessage', (_p, channel, message) => heard.push([channel, message]));
    await sub.psubscribe('ws:*');
    const r = ['--redis', redis.url];
    const commands = [
      ['notification', '--user', 'u1', '--notification-type', 'warning', '--title', '库存不足', '--message', 'only 3 left', '--action-url', '/i/1', '--action-label', 'Open'],
      ['inventory', '--product-id', '123', '--action', 'adjust', '--old-quantity', '10', '--new-quantity', '15.5', '--product-name', '螺丝刀'],
      ['order', '--order-type', 'sales', '--order-id', 'o-1', '--order-number', 'SO-1', '--old-status', 'pending', '--new-status', 'shipped'],
      ['approval-request', '--resource-type', 'refund', '--resource-id', 'r-7', '--resource-number', 'RF-42', '--requester-id', 'u2', '--requester-name', '李娜'],
      ['approval-result', '--decision', 'rejected', '--resource-type', 'refund', '--resource-id', 'r-7', '--resource-number', 'RF-42', '--requester-id', 'u2', '--requester-name', '李娜', '--reason', '超出预算'],
      ['finance', '--type', 'overdue', '--action', 'overdue', '--record-type', 'payment', '--record-id', 'p-1', '--record-number', 'PAY-321', '--amount', '12850.50'],
      ['data-change', '--resource', 'product', '--action', 'updated', '--resource-id', '123', '--changes', '{"price":12.5}'],
      ['system', '--type', 'maintenance', '--level', 'warning', '--message', 'Maintenance at 22:00'],
      ['broadcast', '--message', 'Hello', '--level', 'success', '--title', 'Hi'],
    ];
    try {
      for (const command of commands) tidings('publish', command[0], ...r, ...command.slice(1));
      // approval-result also notifies the requester: ten events.
      await until(() => heard.length >= commands.length + 1, 'every Rust-published event');
      const events = heard.map(([, message]) => JSON.parse(message));
      for (const event of events) assert.equal(classify(event), 'typed', JSON.stringify(event));
      assert.deepEqual(
        events.map((e) => e.type),
        ['notification', 'inventory:change', 'order:status', 'approval:request', 'approval:rejected', 'notification', 'finance:overdue', 'data:change', 'system:maintenance', 'broadcast'],
      );
      // The same objects as TypeScript source, checked by tsc against the
      // client's Event type: a renamed or retyped field fails here.
      const dir = join(JS, 'test', '.generated');
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      const file = join(dir, 'rust-events.ts');
      writeFileSync(file, `import type { Event, TidingsMessage } from '@tidings/client';\n\nexport const events: Event[] = ${JSON.stringify(events, null, 2)};\nexport const messages: TidingsMessage[] = events.map((data) => ({ channel: 'x', data, typed: true }));\n`);
      const tsc = join(JS, 'node_modules', 'typescript', 'bin', 'tsc');
      const args = ['--noEmit', '--strict', '--exactOptionalPropertyTypes', '--target', 'es2022', '--module', 'esnext', '--moduleResolution', 'bundler', '--skipLibCheck', file];
      execFileSync(process.execPath, [tsc, ...args], { cwd: JS, encoding: 'utf8' });
      // And the check can fail: a field under another name does not type-check.
      writeFileSync(file, `import type { Event } from '@tidings/client';\nexport const bad: Event = ${JSON.stringify({ ...events[1], changeamount: 1, changeAmount: undefined })};\n`);
      assert.throws(() => execFileSync(process.execPath, [tsc, ...args], { cwd: JS, encoding: 'utf8', stdio: 'pipe' }));
    } finally {
      sub.disconnect();
    }
  });
});
