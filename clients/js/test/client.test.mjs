// @tidings/client in Node (the `ws` package as its WebSocket) against a real
// gateway and Redis: tokens from getToken() and the 4001 close, `status`
// frames, and `since` positions on reconnect.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { TidingsClient } from '@tidings/client';
import { Publisher } from '@tidings/publisher';
import { jwt, startGateway, startRedis, until } from './harness.mjs';

let redis;
let publisher;
before(async () => {
  redis = await startRedis();
  publisher = new Publisher({ url: redis.url });
});
after(async () => {
  await publisher?.close();
  await redis?.stop();
});

function collect(client, channels) {
  const got = [];
  client.subscribe(channels, (message) => got.push(message));
  return got;
}

describe('the client against the gateway', () => {
  it('asks getToken() for every connect and, when the gateway closes an expired token with 4001, reconnects with a fresh one and loses nothing', async () => {
    const secret = 'test-secret-0123456789-0123456789-abcdef';
    const gateway = await startGateway({ redisUrl: redis.url, args: ['--jwt-secret', secret] });
    const tokens = [];
    const client = new TidingsClient({
      url: gateway.ws,
      WebSocket,
      minDelayMs: 50,
      maxDelayMs: 200,
      // Expires in 1 s (the gateway allows 5 s of leeway, then closes with 4001).
      getToken: async () => {
        const token = jwt(secret, { sub: 'u1', exp: Math.floor(Date.now() / 1000) + 1 });
        tokens.push(token);
        return token;
      },
    });
    const missed = [];
    client.onMissed((channel, since) => missed.push([channel, since]));
    const got = collect(client, ['inventory', 'user:u1:notifications']);
    const denied = [];
    client.onError((code, _message, channel) => denied.push([code, channel]));
    try {
      client.connect();
      await until(() => client.connected, 'connected with a token');
      const ids = [];
      // Publish across the expiry (~6 s after the first token was made).
      const stopAt = Date.now() + 9_000;
      while (Date.now() < stopAt || tokens.length < 2) {
        const id = `t${ids.length}`;
        await publisher.publishInventoryChange({ action: 'adjust', productId: id, oldQuantity: 0, newQuantity: 1 });
        ids.push(id);
        await new Promise((resolve) => setTimeout(resolve, 100));
        if (Date.now() > stopAt + 10_000) break;
      }
      assert.ok(tokens.length >= 2, `getToken() was called ${tokens.length} times`);
      await until(() => ids.every((id) => got.some((m) => m.data.productId === id)), 'every event across the token change', 15_000);
      const seen = got.filter((m) => m.channel === 'inventory').map((m) => m.data.productId);
      assert.deepEqual(seen, ids, 'each once, in order');
      assert.deepEqual(missed, []);
      // The token's user reaches their own channel and no one else's.
      await publisher.notifyUser('u1', { notificationType: 'info', title: 'mine', message: 'm' });
      await until(() => got.some((m) => m.channel === 'user:u1:notifications'), 'the user notification');
      client.subscribe(['user:u2:notifications'], () => assert.fail('another user’s notification'));
      await until(() => denied.some(([code, channel]) => code === 'forbidden' && channel === 'user:u2:notifications'), 'forbidden');
    } finally {
      client.close();
      await gateway.stop();
    }
  });

  it('refreshes its token with a `refresh` frame before it expires, so the same connection outlives the first token', async () => {
    const secret = 'test-secret-0123456789-0123456789-abcdef';
    const gateway = await startGateway({ redisUrl: redis.url, args: ['--jwt-secret', secret] });
    const now = () => Math.floor(Date.now() / 1000);
    // The first token expires in 3 s; the client asks for the next one a
    // second after connecting (30 s before expiry, at the earliest 1 s).
    const firstExp = now() + 3;
    const tokens = [jwt(secret, { sub: 'u1', exp: firstExp }), jwt(secret, { sub: 'u1', exp: now() + 3600 })];
    let asked = 0;
    const client = new TidingsClient({
      url: gateway.ws,
      WebSocket,
      getToken: async () => tokens[Math.min(asked++, tokens.length - 1)],
    });
    const got = collect(client, ['inventory']);
    const refreshes = async (outcome) => {
      const text = await (await fetch(`${gateway.http}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith(`tidings_gateway_token_refreshes_total{outcome="${outcome}"}`));
      return Number(line?.split(' ')[1]);
    };
    try {
      client.connect();
      await until(() => client.connected, 'connected with the first token');
      await until(async () => (await refreshes('accepted')) === 1, 'the gateway to accept one refresh', 5_000);
      // Past the first token's expiry and the gateway's 5 s leeway.
      await until(() => now() > firstExp + 6, 'the first token to be long expired', 15_000);
      await publisher.publishInventoryChange({ action: 'adjust', productId: 'after-expiry', oldQuantity: 0, newQuantity: 1 });
      await until(() => got.some((m) => m.data.productId === 'after-expiry'), 'an event after the first token expired');
      assert.ok(client.connected);
      assert.equal(await gateway.metric('connections_accepted_total'), 1, 'one connection all along: refreshed, not reconnected');
      assert.equal(await refreshes('refused'), 0);
    } finally {
      client.close();
      await gateway.stop();
    }
  });

  it('surfaces the gateway’s status frames while Redis restarts, and events flow again afterwards', async () => {
    const own = await startRedis();
    const gateway = await startGateway({ redisUrl: own.url });
    const client = new TidingsClient({ url: gateway.ws, WebSocket, minDelayMs: 50, maxDelayMs: 200 });
    const statuses = [];
    client.onStatus((status) => statuses.push(status));
    const got = collect(client, ['broadcast']);
    let back;
    try {
      client.connect();
      await until(() => client.connected, 'connected');
      await own.stop();
      await until(() => statuses.some((s) => s.upstream === 'reconnecting'), 'status reconnecting');
      assert.equal(client.connected, true, 'the WebSocket stays open');
      back = await startRedis(own.port);
      await until(() => statuses.at(-1)?.upstream === 'live', 'status live', 20_000);
      const late = new Publisher({ url: back.url });
      await until(async () => {
        await late.broadcast('after the restart');
        return got.some((m) => m.data.message === 'after the restart');
      }, 'an event after the restart');
      await late.close();
      assert.equal(got.every((m) => m.typed), true);
    } finally {
      client.close();
      await gateway.stop();
      await back?.stop();
    }
  });

  it('a listener that throws does not keep the event from the others, and an unsubscribed listener hears nothing more', async () => {
    const gateway = await startGateway({ redisUrl: redis.url });
    const client = new TidingsClient({ url: gateway.ws, WebSocket });
    const a = [];
    const b = [];
    const uncaught = [];
    // What browsers do with a listener's exception (window.onerror); Node has no reportError.
    globalThis.reportError = (error) => uncaught.push(error);
    try {
      client.subscribe(['orders'], () => {
        throw new Error('a buggy listener');
      });
      const offA = client.subscribe(['orders'], (m) => a.push(m));
      client.subscribe(['orders'], (m) => b.push(m));
      client.connect();
      await until(() => client.connected, 'connected');
      const order = { orderType: 'sales', orderId: '1', orderNumber: 'SO-1', oldStatus: 'a', newStatus: 'b' };
      await until(async () => {
        await publisher.publishOrderStatus(order);
        return a.length > 0;
      }, 'the first order event');
      offA();
      const before = a.length;
      await publisher.publishOrderStatus({ ...order, orderId: 'last' });
      await until(() => b.some((m) => m.data.orderId === 'last'), 'the last order for b');
      assert.equal(a.length, before);
      await until(() => uncaught.length > 0, 'the buggy listener’s error, reported');
      assert.match(String(uncaught[0]), /a buggy listener/);
    } finally {
      delete globalThis.reportError;
      client.close();
      await gateway.stop();
    }
  });
});

describe('the client when the gateway is unreachable or frozen', () => {
  it('retries with exponential backoff and full jitter', async () => {
    // A port that accepts TCP and closes at once: every attempt fails fast.
    const { createServer } = await import('node:net');
    const attempts = [];
    const server = createServer((socket) => {
      attempts.push(Date.now());
      socket.destroy();
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = new TidingsClient({ url: `ws://127.0.0.1:${server.address().port}/ws`, WebSocket, minDelayMs: 40, maxDelayMs: 640 });
    try {
      client.connect();
      await until(() => attempts.length >= 9, '9 attempts', 15_000);
      const gaps = attempts.slice(1).map((t, i) => t - attempts[i]);
      // Attempt n waits anywhere in [0, min(640, 40·2^n)] (plus the failed connect itself).
      gaps.forEach((gap, n) => assert.ok(gap <= Math.min(640, 40 * 2 ** n) + 80, `gap ${n} was ${gap} ms: ${gaps}`));
      assert.ok(Math.max(...gaps) - Math.min(...gaps) > 10, `jittered, not fixed: ${gaps}`);
      assert.equal(client.connected, false);
    } finally {
      client.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('notices a frozen gateway by its missing pongs and resumes once it answers again', async () => {
    const gateway = await startGateway({ redisUrl: redis.url });
    const client = new TidingsClient({ url: gateway.ws, WebSocket, pingIntervalMs: 200, pongTimeoutMs: 300, minDelayMs: 50, maxDelayMs: 200 });
    const got = collect(client, ['finance']);
    const states = [];
    client.onConnectionChange((connected) => states.push(connected));
    const record = { action: 'created', recordType: 'payment', recordId: 'f', recordNumber: 'N', amount: 1 };
    try {
      client.connect();
      await until(() => client.connected, 'connected');
      await publisher.publishFinanceEvent('payment', { ...record, recordId: 'before' });
      await until(() => got.some((m) => m.data.recordId === 'before'), 'the first event');
      gateway.proc.kill('SIGSTOP');
      await until(() => !client.connected, 'the client to give the silent link up', 5_000);
      await publisher.publishFinanceEvent('payment', { ...record, recordId: 'while-frozen' });
      gateway.proc.kill('SIGCONT');
      await until(() => client.connected, 'reconnected', 10_000);
      await publisher.publishFinanceEvent('payment', { ...record, recordId: 'after' });
      await until(() => got.some((m) => m.data.recordId === 'after'), 'the event after', 10_000);
      assert.deepEqual(got.map((m) => m.data.recordId), ['before', 'while-frozen', 'after'], 'resumed with since: nothing lost, nothing twice');
      assert.deepEqual(states.slice(0, 3), [true, false, true]);
    } finally {
      gateway.proc.kill('SIGCONT');
      client.close();
      await gateway.stop();
    }
  });
});
