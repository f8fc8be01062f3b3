// The hooks in real Chromium against a real gateway and a real Redis: one
// WebSocket per browser shared by its tabs, each event once in each tab,
// leader hand-over, gateway restart, and events published through
// @tidings/publisher while no gateway ran.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import { Redis } from 'ioredis';
import { Publisher } from '@tidings/publisher';
import { JS, startGateway, startRecorder, startRedis, until } from './harness.mjs';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

let redis;
let recorder;
let gateway;
let server;
let context;
let profile;
let publisher;
let raw;
let serial = 0;

async function servePage() {
  const out = await build({
    entryPoints: [join(JS, 'test', 'page', 'app.tsx')],
    bundle: true,
    format: 'esm',
    jsx: 'automatic',
    define: { 'process.env.NODE_ENV': '"production"' },
    write: false,
    logLevel: 'warning',
  });
  const script = out.outputFiles[0].text;
  const html = '<!doctype html><meta charset="utf-8"><title>tidings test</title><div id="root"></div><script type="module" src="/app.js"></script>';
  const http = createServer((req, res) => {
    if (req.url === '/app.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
    else res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
  });
  return listen(http);
}

before(async () => {
  redis = await startRedis();
  // An always-on recorder, as docs/positions.md asks for exact resumes
  // across a gateway restart; the last test stops it to show what happens
  // without one.
  recorder = await startRecorder(redis.url);
  gateway = await startGateway({ redisUrl: redis.url });
  server = await servePage();
  profile = mkdtempSync(join(tmpdir(), 'tidings-web-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu'],
  });
  publisher = new Publisher({ url: redis.url });
  raw = new Redis(redis.url);
});

after(async () => {
  await context?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  await server?.stop();
  await publisher?.close();
  raw?.disconnect();
  await gateway?.stop();
  await recorder?.stop();
  await redis?.stop();
});

async function openTab() {
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(String(error)));
  await page.goto(`${server.url}?gw=${encodeURIComponent(gateway.ws)}`);
  await page.waitForSelector('[data-testid="inventory"][data-connected="true"]', { state: 'attached' });
  return { page, problems };
}

/** Product ids of the inventory events a tab has received, in order. */
const received = (page) => page.evaluate(() => window.__t.events.filter((m) => m.channel === 'inventory').map((m) => m.data.productId));
const missed = (page) => page.evaluate(() => window.__t.missed);
const isLeader = (page) => page.evaluate(() => window.__t.client.isLeader);

/** Publishes inventory events with fresh product ids; returns the ids. */
async function publish(count, { gapMs = 0 } = {}) {
  const ids = [];
  for (let i = 0; i < count; i++) {
    const id = `p${++serial}`;
    const outcome = await publisher.publishInventoryChange({ action: 'adjust', productId: id, oldQuantity: i, newQuantity: i + 1 });
    assert.equal(outcome.error, undefined, outcome.error?.message);
    ids.push(id);
    if (gapMs) await new Promise((resolve) => setTimeout(resolve, gapMs));
  }
  return ids;
}

/** Waits until the tab has received `ids` (in that order, at its end), then checks each arrived once. */
async function expectExactly(page, ids, what) {
  await until(async () => {
    const got = await received(page);
    return ids.every((id) => got.includes(id));
  }, `${what}: every event`, 20_000);
  // A sentinel published afterwards arrives after any duplicate would have.
  const [sentinel] = await publish(1);
  await until(async () => (await received(page)).includes(sentinel), `${what}: the sentinel`);
  const got = await received(page);
  for (const id of [...ids, sentinel]) assert.equal(got.filter((x) => x === id).length, 1, `${what}: ${id} arrived ${got.filter((x) => x === id).length} times`);
  const positions = await page.evaluate(() => window.__t.events.filter((m) => m.channel === 'inventory').map((m) => m.position));
  assert.ok(positions.every((p) => typeof p === 'string'), 'every event carries its position');
  const order = ids.map((id) => got.indexOf(id));
  assert.deepEqual(order, [...order].sort((a, b) => a - b), `${what}: in publish order`);
}

describe('the hooks in Chromium', () => {
  it('two tabs share one WebSocket and each shows each event once', async () => {
    const accepted = await gateway.metric('connections_accepted_total');
    const a = await openTab();
    const b = await openTab();
    assert.notEqual(await isLeader(a.page), await isLeader(b.page), 'exactly one tab leads');
    await until(async () => (await gateway.metric('connections')) === 1, 'one gateway connection');
    const ids = await publish(20);
    await expectExactly(a.page, ids, 'tab A');
    await expectExactly(b.page, ids, 'tab B');
    assert.equal(await gateway.metric('connections'), 1, 'still one WebSocket for two tabs');
    assert.equal((await gateway.metric('connections_accepted_total')) - accepted, 1, 'and only one was ever opened');
    // Typed and rendered as text, never as HTML.
    await publisher.publishInventoryChange({ action: 'inbound', productId: 'xss', productName: '<img src=x onerror="window.__xss=1">', oldQuantity: 1, newQuantity: 2 });
    await a.page.waitForFunction(() => window.__t.events.some((m) => m.data.productId === 'xss'));
    assert.equal(await a.page.locator('[data-testid="inventory"] img').count(), 0);
    assert.match(await a.page.locator('[data-testid="row"]').last().textContent(), /<img src=x/);
    assert.equal(await a.page.evaluate(() => window.__xss), undefined);
    // Legacy messages arrive marked untyped; malformed ones never.
    await raw.publish('ws:inventory', JSON.stringify({ type: 'adjust', productId: 'legacy-1', quantity: 10 }));
    await raw.publish('ws:inventory', JSON.stringify({ type: 'inventory:change', productId: 'malformed-1' }));
    await raw.publish('ws:inventory', 'not json');
    const [last] = await publish(1);
    await until(async () => (await received(b.page)).includes(last), 'the event after the bad ones');
    const legacy = await b.page.evaluate(() => window.__t.events.filter((m) => m.data.productId === 'legacy-1').map((m) => m.typed));
    assert.deepEqual(legacy, [false]);
    assert.equal((await received(b.page)).includes('malformed-1'), false);
    assert.deepEqual([...a.problems, ...b.problems], []);
    await a.page.close();
    await b.page.close();
  });

  it('closing the leader tab hands the connection over without losing or doubling an event', async () => {
    const a = await openTab();
    const b = await openTab();
    await until(async () => (await gateway.metric('connections')) === 1, 'one gateway connection');
    const [leader, follower] = (await isLeader(a.page)) ? [a, b] : [b, a];
    const first = await publish(5);
    await expectExactly(follower.page, first, 'before the hand-over');
    // Publish steadily while the leader's tab closes.
    const during = publish(40, { gapMs: 10 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    await leader.page.close({ runBeforeUnload: true });
    const ids = [...first, ...(await during)];
    await until(() => isLeader(follower.page), 'the remaining tab to lead');
    await expectExactly(follower.page, ids, 'after the hand-over');
    await until(async () => (await gateway.metric('connections')) === 1, 'one gateway connection again');
    assert.deepEqual(await missed(follower.page), [], 'nothing reported missing: the gateway recorded all along');
    await follower.page.close();
  });

  it('resumes across a gateway kill and restart with no gap and no duplicate', async () => {
    const a = await openTab();
    const b = await openTab();
    const before = await publish(5);
    await expectExactly(a.page, before, 'before the restart');
    await gateway.stop('SIGKILL');
    await a.page.waitForSelector('[data-testid="inventory"][data-connected="false"]', { state: 'attached' });
    const whileDown = await publish(10);
    gateway = await startGateway({ redisUrl: redis.url, port: gateway.port });
    const afterwards = await publish(5, { gapMs: 20 });
    for (const tab of [a, b]) {
      await expectExactly(tab.page, [...before, ...whileDown, ...afterwards], 'across the restart');
      assert.deepEqual(await missed(tab.page), [], 'the recorder was up all along: the resume is exact');
    }
    await a.page.close();
    await b.page.close();
  });

  it('gets events published through @tidings/publisher while no gateway ran, and says a gap was possible when nobody recorded', async () => {
    const a = await openTab();
    const before = await publish(3);
    await expectExactly(a.page, before, 'before');
    // Nobody recording: no gateway, no `tidings record`. The publisher's
    // own script still records its events.
    await recorder.stop();
    await gateway.stop();
    const whileDown = await publish(10);
    gateway = await startGateway({ redisUrl: redis.url, port: gateway.port });
    await expectExactly(a.page, [...before, ...whileDown], 'published with no gateway');
    // Honest: nobody proved that nothing else (a plain PUBLISH) was lost
    // meanwhile, so the client is told, although every event of this
    // publisher came back (docs/positions.md, "Coverage").
    const reported = await missed(a.page);
    assert.ok(reported.some(([channel, since]) => channel === 'inventory' && typeof since === 'string'), JSON.stringify(reported));
    await a.page.close();
  });
});

describe('every hook', () => {
  it('gets the events of its own channel, and subscribe()/unsubscribe() of useWebSocket add and remove channels', async () => {
    const page = await context.newPage();
    await page.goto(`${server.url}?all&user=u7&gw=${encodeURIComponent(gateway.ws)}`);
    await page.waitForSelector('[data-testid="inventory"][data-connected="true"]', { state: 'attached' });
    await until(() => page.evaluate(() => window.__t.client.isLeader), 'the tab leads');
    const o = { orderType: 'sales', orderId: '1', orderNumber: 'SO-1', oldStatus: 'a', newStatus: 'b' };
    const sends = [
      () => publisher.notifyUser('u7', { notificationType: 'info', title: 't', message: 'm' }),
      () => publisher.notifyUser('u8', { notificationType: 'info', title: 'not mine', message: 'm' }),
      () => publisher.publishOrderStatus(o),
      () => publisher.publishFinanceEvent('refund', { action: 'created', recordType: 'refund', recordId: 'r', recordNumber: 'n', amount: 5 }),
      () => publisher.publishDataChange({ resource: 'category', action: 'created', resourceId: 'c' }),
      () => publisher.publishDataChange({ resource: 'customer', action: 'created', resourceId: 'c' }),
      () => publisher.publishDataChange({ resource: 'supplier', action: 'created', resourceId: 's' }),
      () => publisher.publishDataChange({ resource: 'user', action: 'created', resourceId: 'u' }),
      () => publisher.publishSystemEvent('alert', { level: 'critical', message: 'm' }),
      () => publisher.broadcast('hello'),
    ];
    for (const send of sends) assert.equal((await send()).error, undefined);
    const expected = {
      useUserNotifications: ['user:u7:notifications notification'],
      useOrderUpdates: ['orders order:status'],
      useFinanceUpdates: ['finance finance:refund'],
      useProductUpdates: ['products data:change'],
      useCustomerUpdates: ['customers data:change'],
      useSupplierUpdates: ['suppliers data:change'],
      useSystemUpdates: ['system data:change', 'system system:alert'],
      useBroadcast: ['broadcast broadcast'],
    };
    await until(async () => (await page.evaluate(() => window.__hooks.useBroadcast?.length)) === 1, 'the broadcast');
    assert.deepEqual(await page.evaluate(() => window.__hooks), expected);
    // useWebSocket's subscribe()/unsubscribe().
    const orders = () => page.evaluate(() => window.__t.events.filter((m) => m.channel === 'orders').map((m) => m.data.orderId));
    await page.evaluate(() => window.__sub.subscribe('orders'));
    await until(async () => {
      await publisher.publishOrderStatus({ ...o, orderId: 'sub' });
      return (await orders()).includes('sub');
    }, 'an order after subscribe()');
    await page.evaluate(() => window.__sub.unsubscribe(['orders']));
    const count = (await orders()).length;
    await publisher.publishOrderStatus({ ...o, orderId: 'after-unsubscribe' });
    // The hook of the same channel (useOrderUpdates) still gets it: the tab's socket stays subscribed for it.
    await until(() => page.evaluate(() => window.__all.some((m) => m.data.orderId === 'after-unsubscribe')), 'useOrderUpdates');
    assert.equal((await orders()).length, count, 'nothing more for the listener that unsubscribed');
    await page.close();
  });
});

describe('examples/web', () => {
  it('InventoryPage and ApprovalsPage show what is published, as text', async () => {
    const dist = join(JS, '..', '..', 'examples', 'web', 'dist');
    const example = await serveDir(dist);
    const page = await context.newPage();
    const problems = [];
    page.on('pageerror', (error) => problems.push(String(error)));
    try {
      await page.goto(`${example.url}?gateway=${encodeURIComponent(gateway.ws)}`);
      await page.waitForSelector('text=live');
      await publisher.publishInventoryChange({ action: 'outbound', productId: 'ex-1', productName: '<b>螺丝刀</b>', oldQuantity: 10, newQuantity: 7, operator: '张伟' });
      const row = page.locator('tbody tr', { hasText: '螺丝刀' });
      await row.waitFor();
      assert.match(await row.textContent(), /<b>螺丝刀<\/b>outbound10 → 7-3张伟/);
      await page.click('text=Approvals');
      await page.waitForSelector('text=No approval activity yet.');
      const approval = { resourceType: 'refund', resourceId: 'r-1', resourceNumber: 'RF-1', requesterId: 'u2', requesterName: '李娜' };
      await publisher.publishApprovalRequest(approval);
      await page.locator('tbody tr', { hasText: 'RF-1' }).filter({ hasText: 'pending' }).waitFor();
      await publisher.publishApprovalResult('approved', { ...approval, approverName: '王伟', comment: 'fine' });
      const done = page.locator('tbody tr', { hasText: 'RF-1' });
      await done.filter({ hasText: 'approved (王伟)' }).waitFor();
      assert.equal(await page.locator('tbody tr').count(), 1, 'updated in place');
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
      await example.stop();
    }
  });
});

/** Starts `http` on a free loopback port: its URL, and how to stop it. */
async function listen(http) {
  await new Promise((resolve) => http.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${http.address().port}/`,
    stop: () => {
      http.closeAllConnections();
      return new Promise((resolve) => http.close(resolve));
    },
  };
}

/** Serves a built directory (index.html and assets) on a free port. */
async function serveDir(dir) {
  const { readFile } = await import('node:fs/promises');
  const { extname, normalize, sep } = await import('node:path');
  const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css' };
  try {
    await readFile(join(dir, 'index.html'));
  } catch {
    throw new Error(`${dir}/index.html is missing: run \`npm ci && npm run build\` in examples/web first (scripts/test.sh does)`);
  }
  const http = createServer(async (req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const file = normalize(join(dir, path === '/' ? 'index.html' : path));
    if (!file.startsWith(dir + sep)) return res.writeHead(403).end();
    let body;
    try {
      body = await readFile(file);
    } catch {
      return res.writeHead(404).end();
    }
    res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' }).end(body);
  });
  return listen(http);
}
