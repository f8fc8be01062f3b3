// Real parts for the tests: a private redis-server, the gateway and the
// `tidings` CLI from the workspace's target/debug (scripts/test.sh builds
// them before this runs), each on a free port, each stopped by its PID.
import { spawn, execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';

export const JS = fileURLToPath(new URL('..', import.meta.url));
export const REPO = join(JS, '..', '..');
export const BIN = process.env.TIDINGS_BIN_DIR ?? join(process.env.CARGO_TARGET_DIR ?? join(REPO, 'target'), 'debug');

export function binary(name) {
  const path = join(BIN, name);
  if (!existsSync(path)) throw new Error(`${path} is missing: build it first (cargo build -p tidings-gateway -p tidings-cli --bins), or set TIDINGS_BIN_DIR`);
  return path;
}

export async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Resolves when `check()` is truthy (polled every 25 ms), or rejects after `ms` with `what`. */
export async function until(check, what, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    let value;
    try {
      value = await check();
    } catch {
      value = undefined;
    }
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

export function child(command, args, name, env = {}) {
  const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let log = '';
  const keep = (chunk) => {
    log = (log + chunk).slice(-20_000);
  };
  proc.stdout.on('data', keep);
  proc.stderr.on('data', keep);
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  return {
    proc,
    exited,
    log: () => log,
    name,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      await exited;
    },
  };
}

export async function startRedis(port) {
  port ??= await freePort();
  const server = child('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], 'redis');
  const url = `redis://127.0.0.1:${port}`;
  await until(async () => {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => {});
    try {
      await probe.connect();
      return (await probe.ping()) === 'PONG';
    } finally {
      probe.disconnect();
    }
  }, `redis-server on ${port}`);
  return { ...server, port, url };
}

/** The gateway on `port` (a free one by default), resolved once /healthz says live. */
export async function startGateway({ redisUrl, port, args = [], env = {} }) {
  port ??= await freePort();
  const gateway = child(binary('tidings-gateway'), ['--listen', `127.0.0.1:${port}`, '--redis', redisUrl, ...args], 'gateway', { RUST_LOG: 'warn', ...env });
  const http = `http://127.0.0.1:${port}`;
  await until(async () => (await fetch(`${http}/healthz`)).status === 200, `the gateway on ${port} (log: ${gateway.log().slice(-500)})`);
  return {
    ...gateway,
    port,
    http,
    ws: `ws://127.0.0.1:${port}/ws`,
    /** A metric's value from /metrics (`tidings_gateway_` + name, no labels). */
    async metric(name) {
      const text = await (await fetch(`${http}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith(`tidings_gateway_${name} `));
      return line === undefined ? undefined : Number(line.split(' ')[1]);
    },
  };
}

/** `tidings record`: an always-on recorder holding the recording duty (docs/positions.md, "Coverage"). */
export async function startRecorder(redisUrl) {
  const recorder = child(binary('tidings'), ['--redis', redisUrl, 'record'], 'recorder', { RUST_LOG: 'info' });
  const redis = new Redis(redisUrl);
  try {
    await until(async () => (await redis.get('tidings:recorder:{tidings}')) !== null, 'the recorder to hold the duty');
  } finally {
    redis.disconnect();
  }
  return recorder;
}

/** Runs the `tidings` CLI to completion and returns its stdout. */
export function tidings(...args) {
  return execFileSync(binary('tidings'), args, { encoding: 'utf8', env: { ...process.env, RUST_LOG: 'warn' } });
}

/** `tidings tail --json` on `redisUrl`: resolves with its parsed lines as they come. */
export async function startTail(redisUrl) {
  const tail = child(binary('tidings'), ['--redis', redisUrl, 'tail', '--json'], 'tail', { RUST_LOG: 'warn' });
  const lines = [];
  let buffer = '';
  tail.proc.stdout.on('data', (chunk) => {
    buffer += chunk;
    let newline;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 1);
      if (line) lines.push(JSON.parse(line));
    }
  });
  // Subscribed once a message published now shows up.
  const probe = new Redis(redisUrl);
  try {
    await until(async () => {
      await probe.publish('ws:broadcast', JSON.stringify({ type: 'probe:tail' }));
      return lines.length > 0;
    }, '`tidings tail` to subscribe');
  } finally {
    probe.disconnect();
  }
  await new Promise((resolve) => setTimeout(resolve, 50));
  lines.length = 0;
  return { ...tail, lines };
}

/** An HS256 JWT the gateway accepts (docs/gateway.md, Authentication). */
export function jwt(secret, claims) {
  const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}
