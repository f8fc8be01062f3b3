// @tidings/publisher against a real redis-server (and, where said, a real
// gateway): the nine helpers, the shared append script, never throwing.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Cluster, Redis } from 'ioredis';
import WebSocket from 'ws';
import { APPEND_SCRIPT, Publisher, clusterOptions, sentinelOptions } from '@tidings/publisher';
import { startCluster } from './cluster.mjs';
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
        const epoch = await db.get(`tidings:epoch:{${channel}}`);
        assert.match(epoch, /^[0-9a-f]{12}$/, `${name}: the channel's epoch`);
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
    for (const url of ['redis://127.0.0.1:6379', 'rediss://:pw@redis.example.com:6380/2', 'redis+unix:///tmp/redis.sock', 'redis+cluster://127.0.0.1:7000']) {
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

describe('cluster URLs', () => {
  it('are read into ioredis Cluster arguments: nodes with and without a port, IPv6, credentials, TLS', () => {
    assert.deepEqual(clusterOptions('redis+cluster://10.0.0.1:7000,node-b,[::1]:7001,[fe80::2]'), {
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: 'node-b', port: 6379 },
        { host: '::1', port: 7001 },
        { host: 'fe80::2', port: 6379 },
      ],
      redisOptions: {},
    });
    assert.deepEqual(clusterOptions('redis+cluster://:s3cret@n1/'), { nodes: [{ host: 'n1', port: 6379 }], redisOptions: { password: 's3cret' } });
    assert.deepEqual(clusterOptions('redis+cluster://alice:p%40ss%3Aw%2Fd@n1:7000,n2:7001/0'), {
      nodes: [
        { host: 'n1', port: 7000 },
        { host: 'n2', port: 7001 },
      ],
      redisOptions: { username: 'alice', password: 'p@ss:w/d' },
    });
    assert.deepEqual(clusterOptions('rediss+cluster://:pw@n1:7000'), { nodes: [{ host: 'n1', port: 7000 }], redisOptions: { password: 'pw', tls: {} } });
  });

  it('leave every other URL alone', () => {
    for (const url of ['redis://127.0.0.1:6379', 'rediss://:pw@redis.example.com:6380/2', 'redis+sentinel://s1/mymaster']) {
      assert.equal(clusterOptions(url), undefined, url);
    }
  });

  const MALFORMED = [
    ['redis+cluster://:s3cret@', /no cluster node host/],
    ['redis+cluster://:s3cret@/', /no cluster node host/],
    ['redis+cluster://:s3cret@a,,b', /cluster node address is empty/],
    ['redis+cluster://:s3cret@10.0.0.1:port', /"port" is not a port/],
    ['redis+cluster://:s3cret@10.0.0.1:0', /"0" is not a port/],
    ['redis+cluster://:s3cret@10.0.0.1:7000/3', /Redis Cluster has only database 0, not 3/],
    ['redis+cluster://:s3cret@10.0.0.1:7000/x', /"x" is not a database number/],
    ['redis+cluster://:s3cret%zz@10.0.0.1', /password is not valid percent-encoding/],
  ];

  it('say what is wrong with a malformed one, password hidden', () => {
    for (const [url, reason] of MALFORMED) {
      assert.throws(
        () => clusterOptions(url),
        (error) => {
          assert.match(error.message, reason, url);
          assert.match(error.message, /^Redis URL redis\+cluster:\/\/\*\*\*@.* is not usable: /, url);
          assert.doesNotMatch(error.message, /s3cret/, url);
          return true;
        },
      );
    }
  });

  it('a publisher with a malformed one never throws: each publish fails saying why, password hidden', async () => {
    for (const [url, reason] of MALFORMED) {
      const warnings = [];
      const publisher = new Publisher({ url, logger: { warn: (m) => warnings.push(m), debug() {} } });
      try {
        for (const outcome of [await publisher.broadcast('nowhere'), await publisher.notifyUser('u1', { notificationType: 'info', title: 't', message: 'm' })]) {
          assert.equal(outcome.error?.kind, 'unreachable', url);
          assert.match(outcome.error.message, reason, url);
          assert.doesNotMatch(outcome.error.message, /s3cret/, url);
        }
        assert.equal(warnings.length, 1, url);
        assert.doesNotMatch(warnings[0], /s3cret/, url);
      } finally {
        await publisher.close();
      }
    }
  });

  it('a publisher whose cluster nodes are all down fails within its timeout, password hidden', async () => {
    const [a, b] = await freePorts(2);
    const publisher = new Publisher({ url: `redis+cluster://:s3cret@127.0.0.1:${a},127.0.0.1:${b}`, timeoutMs: 300, logger: { warn() {}, debug() {} } });
    try {
      for (let i = 0; i < 2; i++) {
        const started = Date.now();
        const outcome = await publisher.broadcast('nowhere');
        assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
        assert.ok(['unreachable', 'timeout'].includes(outcome.error?.kind), JSON.stringify(outcome.error));
        assert.match(outcome.error.message, /redis\+cluster:\/\/\*\*\*@127\.0\.0\.1/);
        assert.doesNotMatch(outcome.error.message, /s3cret/);
      }
    } finally {
      await publisher.close();
    }
  });
});

describe('on Redis Cluster (real servers)', () => {
  // Channels whose helpers take something that makes each event distinct
  // (the same payload twice within the dedup window is recorded once).
  const CANDIDATES = [
    ['ws:inventory', (p, i) => p.publishInventoryChange({ action: 'adjust', productId: '123', oldQuantity: 10, newQuantity: 10 + i })],
    ['ws:orders', (p, i) => p.publishOrderStatus({ orderType: 'sales', orderId: `o-${i}`, orderNumber: `SO-${i}`, oldStatus: 'pending', newStatus: 'shipped' })],
    ['ws:broadcast', (p, i) => p.broadcast(`cluster #${i}`)],
    ['ws:system', (p, i) => p.publishSystemEvent('alert', { level: 'info', message: `cluster #${i}` })],
    ...Array.from({ length: 200 }, (_, u) => [`ws:user:c${u}:notifications`, (p, i) => p.notifyUser(`c${u}`, { notificationType: 'info', title: 'cluster', message: `#${i}` })]),
  ];
  let cluster;
  before(async () => {
    cluster = await startCluster();
  });
  after(async () => {
    await cluster?.stop();
  });

  it('publishes through a redis+cluster:// URL to channels on every primary: recorded in order on the slot owner, heard on other nodes', async (t) => {
    const { primaries, client, owner } = cluster;
    assert.equal(primaries.length, 3, 'three primaries');
    // One channel on each primary.
    const chosen = [];
    for (const [channel, publish] of CANDIDATES) {
      const port = await owner(`tidings:history:{${channel}}`);
      if (!chosen.some((c) => c.port === port)) chosen.push({ channel, publish, port });
      if (chosen.length === primaries.length) break;
    }
    assert.equal(chosen.length, 3, 'a channel on each primary');
    t.diagnostic(chosen.map((c) => `${c.channel} on ${c.port}`).join(', '));

    // Plain SUBSCRIBE, each on a primary that does NOT own the channel's slot.
    const subscribers = [];
    const heard = new Map(chosen.map((c) => [c.channel, []]));
    let publisher;
    try {
      for (const { channel, port } of chosen) {
        const elsewhere = primaries.find((p) => p !== port);
        const sub = new Redis({ host: '127.0.0.1', port: elsewhere });
        subscribers.push(sub);
        sub.on('message', (c, message) => heard.get(c)?.push(message));
        await sub.subscribe(channel);
      }
      publisher = new Publisher({ url: `redis+cluster://${primaries.map((p) => `127.0.0.1:${p}`).join(',')}/`, timeoutMs: 2000 });
      const published = new Map(chosen.map((c) => [c.channel, []]));
      for (let i = 0; i < 3; i++) {
        for (const { channel, publish } of chosen) {
          const outcome = await publish(publisher, i);
          assert.equal(outcome.error, undefined, `${channel} #${i}: ${outcome.error?.message}`);
          assert.equal(outcome.channel, channel);
          assert.equal(typeof outcome.receivers, 'number', 'PUBLISH counts the subscribers of the node that ran the script');
          assert.match(outcome.position, /^[0-9a-f]{12}:\d+-\d+$/);
          published.get(channel).push(outcome);
        }
      }
      for (const { channel, port } of chosen) {
        const outcomes = published.get(channel);
        const node = client(port);
        const entries = await node.xrange(`tidings:history:{${channel}}`, '-', '+');
        assert.deepEqual(
          entries,
          outcomes.map((o) => [o.position.split(':')[1], ['d', o.payload]]),
          `${channel}: exactly its events, in order, at their positions, on the primary owning its slot`,
        );
        const epoch = await node.get(`tidings:epoch:{${channel}}`);
        for (const o of outcomes) assert.equal(o.position.split(':')[0], epoch, `${channel}: the channel's epoch`);
        await until(() => heard.get(channel).length >= outcomes.length, `${channel} heard on another node`);
        assert.deepEqual(heard.get(channel), outcomes.map((o) => o.payload), `${channel}: each event heard once, in order`);
      }
      const epochs = new Set(chosen.map(({ channel }) => published.get(channel)[0].position.split(':')[0]));
      assert.equal(epochs.size, chosen.length, 'each channel has its own epoch');
    } finally {
      for (const sub of subscribers) sub.disconnect();
      await publisher?.close();
    }
  });

  it('reads the channels back through an ioredis Cluster client too (every key of a channel in its one slot)', async () => {
    const reader = new Cluster([{ host: '127.0.0.1', port: cluster.primaries[0] }]);
    const publisher = new Publisher({ url: `redis+cluster://127.0.0.1:${cluster.primaries[1]}`, timeoutMs: 2000 });
    try {
      const outcome = await publisher.publishDataChange({ resource: 'customer', action: 'created', resourceId: 'c-1' });
      assert.equal(outcome.error, undefined, outcome.error?.message);
      const [epoch, id] = outcome.position.split(':');
      assert.deepEqual(await reader.xrange('tidings:history:{ws:customers}', id, id), [[id, ['d', outcome.payload]]]);
      assert.equal(await reader.get('tidings:epoch:{ws:customers}'), epoch);
      const seen = `tidings:seen:{ws:customers}:${createHash('sha1').update(outcome.payload).digest('hex')}`;
      assert.equal(await reader.get(seen), id, 'the seen key names the entry');
      assert.equal(await reader.cluster('KEYSLOT', seen), await reader.cluster('KEYSLOT', 'tidings:epoch:{ws:customers}'));
    } finally {
      reader.disconnect();
      await publisher.close();
    }
  });

  it('with history off, a plain PUBLISH through the cluster reaches a subscriber on any node', async () => {
    const publisher = new Publisher({ url: `redis+cluster://127.0.0.1:${cluster.primaries[2]}`, history: false, timeoutMs: 2000 });
    const heard = [];
    const subs = cluster.ports.map((port) => {
      const sub = new Redis({ host: '127.0.0.1', port });
      sub.on('message', (_channel, message) => heard.push([port, message]));
      return sub;
    });
    try {
      await Promise.all(subs.map((sub) => sub.subscribe('ws:finance')));
      const outcome = await publisher.publishFinanceEvent('payment', { action: 'created', recordType: 'payment', recordId: 'p-9', recordNumber: 'PAY-9', amount: 1 });
      assert.equal(outcome.error, undefined, outcome.error?.message);
      assert.equal(outcome.position, undefined, 'not recorded');
      await until(() => heard.length === cluster.ports.length, 'the event on every node');
      assert.deepEqual(heard.map(([, m]) => m), cluster.ports.map(() => outcome.payload));
    } finally {
      for (const sub of subs) sub.disconnect();
      await publisher.close();
    }
  });

  // Last: it kills a primary.
  it('publishing resumes on its own once the cluster has promoted the replica of a failed primary', async (t) => {
    const CHANNEL = 'ws:approvals';
    const STREAM = `tidings:history:{${CHANNEL}}`;
    const request = (i) => ({ resourceType: 'refund', resourceId: `r-${i}`, resourceNumber: `RF-${i}`, requesterId: 'u2', requesterName: '李娜' });
    const publisher = new Publisher({ url: `redis+cluster://${cluster.primaries.map((p) => `127.0.0.1:${p}`).join(',')}`, logger: { warn() {}, debug() {} } });
    try {
      const first = await publisher.publishApprovalRequest(request(1));
      assert.equal(first.error, undefined, first.error?.message);
      const primary = await cluster.owner(STREAM);
      assert.ok((await cluster.client(primary).wait(1, 5000)) >= 1, 'replicated before the primary dies');
      await cluster.kill(primary);
      const killed = Date.now();
      let second;
      for (let i = 2; ; i++) {
        second = await publisher.publishApprovalRequest(request(i));
        if (!second.error || Date.now() - killed > 10_000) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.equal(second.error, undefined, `still failing ${Date.now() - killed} ms after the primary died: ${second.error?.message}`);
      t.diagnostic(`published again ${Date.now() - killed} ms after the primary died`);
      const promoted = await cluster.owner(STREAM);
      assert.notEqual(promoted, primary);
      assert.equal(second.position.split(':')[0], first.position.split(':')[0], 'the same epoch: the history came along');
      assert.deepEqual(
        await cluster.client(promoted).xrange(STREAM, '-', '+'),
        [first, second].map((o) => [o.position.split(':')[1], ['d', o.payload]]),
        'the event before and the one after, on the promoted replica',
      );
    } finally {
      await publisher.close();
    }
  });
});
