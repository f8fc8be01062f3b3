// @tidings/publisher against a real redis-server (and, where said, a real
// gateway): the nine helpers, the shared append script, never throwing.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { APPEND_SCRIPT, Publisher, sentinelOptions } from '@tidings/publisher';
import { REPO, JS, child, freePort, startGateway, startRedis, until } from './harness.mjs';

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

describe('sentinel URLs', () => {
  it('are read into ioredis options: sentinels with and without a port, IPv6, service, database, credentials', () => {
    assert.deepEqual(sentinelOptions('redis+sentinel://10.0.0.1:26400,sentinel-b,[::1]:26381,[fe80::2]/orders/3'), {
      sentinels: [
        { host: '10.0.0.1', port: 26400 },
        { host: 'sentinel-b', port: 26379 },
        { host: '::1', port: 26381 },
        { host: 'fe80::2', port: 26379 },
      ],
      name: 'orders',
      db: 3,
    });
    assert.deepEqual(sentinelOptions('redis+sentinel://:s3cret@s1/mymaster'), { sentinels: [{ host: 's1', port: 26379 }], name: 'mymaster', db: 0, password: 's3cret' });
    assert.deepEqual(sentinelOptions('redis+sentinel://alice:p%40ss%3Aw%2Fd@s1:26379/mymaster/'), {
      sentinels: [{ host: 's1', port: 26379 }],
      name: 'mymaster',
      db: 0,
      username: 'alice',
      password: 'p@ss:w/d',
    });
    assert.deepEqual(sentinelOptions('redis+sentinel://s3cret@s1/m').password, 's3cret', 'no colon: all of it is the password');
    assert.deepEqual(sentinelOptions('redis+sentinel://alice:@s1/m'), { sentinels: [{ host: 's1', port: 26379 }], name: 'm', db: 0, username: 'alice' });
    assert.deepEqual(sentinelOptions('rediss+sentinel://:pw@s1:26379,s2:26380/m/1'), {
      sentinels: [
        { host: 's1', port: 26379 },
        { host: 's2', port: 26380 },
      ],
      name: 'm',
      db: 1,
      password: 'pw',
      tls: {},
      enableTLSForSentinelMode: true,
    });
  });

  it('leave plain redis:// and rediss:// URLs to ioredis', () => {
    for (const url of ['redis://127.0.0.1:6379', 'rediss://:pw@redis.example.com:6380/2', 'redis+unix:///tmp/redis.sock']) {
      assert.equal(sentinelOptions(url), undefined, url);
    }
  });

  it('say what is wrong with a malformed one, password hidden', () => {
    const cases = [
      ['redis+sentinel://:s3cret@10.0.0.1:26379', /names its service after the hosts/],
      ['redis+sentinel://:s3cret@10.0.0.1:26379/', /service name .* is missing/],
      ['redis+sentinel://:s3cret@/mymaster', /no sentinel host/],
      ['redis+sentinel://:s3cret@a,,b/mymaster', /sentinel address is empty/],
      ['redis+sentinel://:s3cret@10.0.0.1:sixty/mymaster', /"sixty" is not a port/],
      ['redis+sentinel://:s3cret@10.0.0.1:/mymaster', /"" is not a port/],
      ['redis+sentinel://:s3cret@10.0.0.1:70000/mymaster', /"70000" is not a port/],
      ['redis+sentinel://:s3cret@[::1:26379/mymaster', /no closing \]/],
      ['redis+sentinel://:s3cret@10.0.0.1/mymaster/two', /"two" is not a database number/],
      ['redis+sentinel://:s3cret%zz@10.0.0.1/mymaster', /password is not valid percent-encoding/],
    ];
    for (const [url, reason] of cases) {
      assert.throws(
        () => sentinelOptions(url),
        (error) => {
          assert.match(error.message, reason, url);
          assert.match(error.message, /^Redis URL redis\+sentinel:\/\/\*\*\*@/, url);
          assert.doesNotMatch(error.message, /s3cret/, url);
          return true;
        },
      );
    }
  });

  it('a publisher with a malformed one never throws: each publish fails saying why, password hidden', async () => {
    const warnings = [];
    const publisher = new Publisher({ url: 'redis+sentinel://:s3cret@10.0.0.1:26379', logger: { warn: (m) => warnings.push(m), debug() {} } });
    try {
      const outcome = await publisher.broadcast('nowhere');
      assert.equal(outcome.error?.kind, 'unreachable');
      assert.match(outcome.error.message, /redis\+sentinel:\/\/\*\*\*@10\.0\.0\.1:26379 is not usable: .*service/);
      assert.doesNotMatch(outcome.error.message + warnings.join('\n'), /s3cret/);
      assert.equal(warnings.length, 1);
    } finally {
      await publisher.close();
    }
  });

  it('a publisher whose sentinels are all down fails within its timeout, password hidden', async () => {
    const port = await freePort();
    const publisher = new Publisher({ url: `redis+sentinel://:s3cret@127.0.0.1:${port}/tidings`, timeoutMs: 300, logger: { warn() {}, debug() {} } });
    try {
      const started = Date.now();
      const outcome = await publisher.broadcast('nowhere');
      assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
      assert.ok(['unreachable', 'timeout'].includes(outcome.error?.kind), JSON.stringify(outcome.error));
      assert.match(outcome.error.message, /redis\+sentinel:\/\/\*\*\*@127\.0\.0\.1/);
      assert.doesNotMatch(outcome.error.message, /s3cret/);
    } finally {
      await publisher.close();
    }
  });
});

/** A flat `[key, value, key, value…]` reply as an object. */
const pairs = (flat) => Object.fromEntries(Array.from({ length: flat.length / 2 }, (_, i) => [flat[2 * i], flat[2 * i + 1]]));
/** `n` distinct free ports. */
async function freePorts(n) {
  const ports = new Set();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

describe('behind Redis Sentinel (real servers)', () => {
  it('publishes to the primary through a redis+sentinel:// URL, and to the promoted replica within 5 s of a failover', async (t) => {
    const STREAM = 'tidings:history:{ws:broadcast}';
    const dir = mkdtempSync(join(tmpdir(), 'tidings-sentinel-'));
    const processes = [];
    const clients = [];
    const client = (port) => {
      const c = new Redis({ host: '127.0.0.1', port, enableReadyCheck: false, maxRetriesPerRequest: 0, retryStrategy: () => 100 });
      c.on('error', () => {});
      clients.push(c);
      return c;
    };
    let publisher;
    try {
      const primary = await startRedis();
      processes.push(primary);
      const [replicaPort, ...sentinelPorts] = await freePorts(4);
      processes.push(child('redis-server', ['--port', String(replicaPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--replicaof', '127.0.0.1', String(primary.port)], 'replica'));
      const primaryDb = client(primary.port);
      const replicaDb = client(replicaPort);
      // Replica attached before the sentinels start, so their first INFO of the primary lists it.
      await until(async () => /master_link_status:up/.test(await replicaDb.info('replication')), 'the replica to sync with the primary', 20_000);
      for (const [i, port] of sentinelPorts.entries()) {
        const conf = join(dir, `sentinel-${i}.conf`);
        writeFileSync(
          conf,
          [
            `port ${port}`,
            'bind 127.0.0.1',
            'protected-mode no',
            `dir ${dir}`,
            `sentinel monitor tidings 127.0.0.1 ${primary.port} 2`,
            'sentinel down-after-milliseconds tidings 1000',
            'sentinel failover-timeout tidings 5000',
            '',
          ].join('\n'),
        );
        processes.push(child('redis-server', [conf, '--sentinel'], `sentinel ${i}`));
      }
      const sentinels = sentinelPorts.map(client);
      await until(
        async () => {
          for (const sentinel of sentinels) {
            const master = pairs(await sentinel.call('SENTINEL', 'MASTER', 'tidings'));
            if (master['num-slaves'] !== '1' || master['num-other-sentinels'] !== '2') return false;
          }
          return true;
        },
        'every sentinel to see the replica and the two other sentinels',
        30_000,
      );

      publisher = new Publisher({ url: `redis+sentinel://${sentinelPorts.map((p) => `127.0.0.1:${p}`).join(',')}/tidings/0`, logger: { warn() {}, debug() {} } });
      const first = await publisher.broadcast('before the failover');
      assert.equal(first.error, undefined, first.error?.message);
      const [, firstId] = first.position.split(':');
      assert.deepEqual(await primaryDb.xrange(STREAM, firstId, firstId), [[firstId, ['d', first.payload]]], 'recorded in the primary history');
      assert.equal(await primaryDb.xlen(STREAM), 1);
      assert.ok((await primaryDb.wait(1, 5000)) >= 1, 'replicated before the primary dies');

      await primary.stop('SIGKILL');
      await until(
        async () => {
          for (const sentinel of sentinels) {
            const [host, port] = await sentinel.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', 'tidings');
            if (host !== '127.0.0.1' || port !== String(replicaPort)) return false;
          }
          return true;
        },
        'the sentinels to name the replica as master',
        40_000,
      );

      const named = Date.now();
      let second;
      for (;;) {
        second = await publisher.broadcast('after the failover');
        if (!second.error || Date.now() - named > 5000) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.equal(second.error, undefined, `still failing ${Date.now() - named} ms after the failover: ${second.error?.message}`);
      t.diagnostic(`published to the promoted replica ${Date.now() - named} ms after the sentinels named it`);
      const [, secondId] = second.position.split(':');
      assert.deepEqual(await replicaDb.xrange(STREAM, secondId, secondId), [[secondId, ['d', second.payload]]], 'recorded in the promoted replica history');
      assert.equal(await replicaDb.xlen(STREAM), 2, 'the first event (replicated) and the second');
    } finally {
      await publisher?.close();
      for (const c of clients) c.disconnect();
      await Promise.all(processes.map((p) => p.stop('SIGKILL')));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
