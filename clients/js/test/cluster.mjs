// A real Redis Cluster for the tests: six redis-servers (three primaries,
// one replica each) on free ports, joined by `redis-cli --cluster create`,
// each stopped by its PID.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { child, until } from './harness.mjs';

/** Whether 127.0.0.1:`port` can be listened on now. */
async function isFree(port) {
  const server = createServer();
  const listening = await new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (listening) await new Promise((resolve) => server.close(resolve));
  return listening;
}

/** `n` ports P, each with P and its cluster bus port P + 10000 free (and no two overlapping). */
async function clusterPorts(n) {
  const ports = [];
  const taken = new Set();
  while (ports.length < n) {
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    if ([port, port + 10_000].some((p) => taken.has(p))) continue;
    if (!(await isFree(port)) || !(await isFree(port + 10_000))) continue;
    ports.push(port);
    taken.add(port).add(port + 10_000);
  }
  return ports;
}

/**
 * Starts a cluster of `size` nodes (`replicas` replicas per primary) and
 * resolves once every node reports `cluster_state:ok` and every replica has
 * synced with its primary. Returns the nodes' ports, `primaries` (the ports
 * of the nodes serving slots then), a plain ioredis client per node
 * (`client(port)`), `owner(key)` (the port of the primary serving the key's
 * slot now, as a live node says), `kill(port)` (SIGKILL, as a crash) and
 * `stop()`.
 */
export async function startCluster({ size = 6, replicas = 1 } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'tidings-cluster-'));
  const ports = await clusterPorts(size);
  const processes = [];
  const clients = new Map();
  const client = (port) => {
    if (!clients.has(port)) {
      const c = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 0, retryStrategy: () => 100 });
      c.on('error', () => {});
      clients.set(port, c);
    }
    return clients.get(port);
  };
  const stop = async () => {
    for (const c of clients.values()) c.disconnect();
    await Promise.all(processes.map((p) => p.stop('SIGKILL')));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      processes.push(
        child(
          'redis-server',
          [
            '--port', String(port),
            '--bind', '127.0.0.1',
            '--cluster-enabled', 'yes',
            '--cluster-config-file', `nodes-${port}.conf`,
            '--cluster-node-timeout', '1000',
            '--save', '',
            '--appendonly', 'no',
            // Replicas sync at once (not after the default 5 s wait for more).
            '--repl-diskless-sync-delay', '0',
            '--dir', dir,
          ],
          `cluster node ${port}`,
        ),
      );
    }
    await until(async () => (await Promise.all(ports.map((p) => client(p).ping()))).every((r) => r === 'PONG'), 'the cluster nodes to start');
    const nodes = ports.map((p) => `127.0.0.1:${p}`);
    await promisify(execFile)('redis-cli', ['--cluster', 'create', ...nodes, '--cluster-replicas', String(replicas), '--cluster-yes'], { timeout: 20_000 });
    await until(
      async () => (await Promise.all(ports.map((p) => client(p).cluster('INFO')))).every((info) => /cluster_state:ok/.test(info)),
      'cluster_state:ok on every node',
      15_000,
    );
    const killed = new Set();
    const live = () => client(ports.find((p) => !killed.has(p)));
    // The slot map as a live node sees it: [start, end, [host, port, id], replicas…].
    const slots = () => live().cluster('SLOTS');
    const primaries = [...new Set((await slots()).map(([, , [, port]]) => Number(port)))];
    const replicaPorts = ports.filter((p) => !primaries.includes(p));
    await until(
      async () => (await Promise.all(replicaPorts.map((p) => client(p).info('replication')))).every((info) => /master_link_status:up/.test(info)),
      'every replica to sync with its primary',
      15_000,
    );
    const owner = async (key) => {
      const slot = await live().cluster('KEYSLOT', key);
      return Number((await slots()).find(([start, end]) => start <= slot && slot <= end)[2][1]);
    };
    const kill = async (port) => {
      killed.add(port);
      await processes[ports.indexOf(port)].stop('SIGKILL');
    };
    return { ports, primaries, client, owner, kill, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
