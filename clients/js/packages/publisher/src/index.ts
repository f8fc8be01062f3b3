// @tidings/publisher: the ERP backend's nine publish helpers, same names and
// arguments as the Rust publishers (crates/tidings/src/publish.rs), for Node.
//
// - Every event is recorded in its channel's history AND published in one
//   atomic step, by the very script the Rust publishers run
//   (crates/tidings/src/history/append.lua, bundled into dist/ at build
//   time), with the same KEYS and ARGV. So events published while no gateway
//   or desktop runs are in history and a client resuming later gets them.
// - Never throws into business code: every helper resolves to a
//   PublishOutcome; failures are logged (one warning per streak) and handed
//   to `onError`.
// - Bounded: each publish, connect included, gives up after `timeoutMs`
//   (1 s by default) when Redis is down or hung.
// - One shared Redis connection per publisher (on Redis Cluster, one
//   ioredis `Cluster`: a connection per node it needs); the module-level
//   helpers use one default publisher (configure it with
//   `configurePublisher`, or set TIDINGS_REDIS_URL / REDIS_URL).
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { classify } from '@tidings/client';
import type {
  Approval,
  Broadcast,
  DataChange,
  Event,
  Finance,
  InventoryChange,
  Notification,
  OrderStatus,
  SystemNotice,
} from '@tidings/client';
import { type ClusterOptions, clusterOptions, hideCredentials, type SentinelOptions, sentinelOptions } from './redis-url.js';

export { type ClusterOptions, clusterOptions, type SentinelOptions, sentinelOptions } from './redis-url.js';

/** The append script's text, byte for byte the file the Rust crate `include_str!`s. */
export const APPEND_SCRIPT: string = readFileSync(new URL('./append.lua', import.meta.url), 'utf8');

/**
 * Same keys as crates/tidings/src/history.rs: a channel's epoch, stream and
 * seen keys share the hash tag `{ws:CHANNEL}`, so one message's keys sit in
 * one Redis Cluster slot (and the script runs on that slot's primary).
 */
const epochKey = (redisChannel: string): string => `tidings:epoch:{${redisChannel}}`;
const streamKey = (redisChannel: string): string => `tidings:history:{${redisChannel}}`;
const seenKey = (redisChannel: string, payload: string): string =>
  `tidings:seen:{${redisChannel}}:${createHash('sha1').update(payload, 'utf8').digest('hex')}`;
/** history.rs MAINTAIN_EVERY. */
const MAINTAIN_EVERY_MS = 60_000;

export interface HistoryOptions {
  /** Entries kept per channel (default 10 000, as the gateway). */
  maxLen?: number;
  /** Entries older than this are trimmed; an idle channel expires (default 24 h). 0 keeps all. */
  maxAgeMs?: number;
  /** How long a payload is remembered so recorders store it once (default 60 s). */
  dedupWindowMs?: number;
}

export interface Logger {
  warn(message: string, details?: object): void;
  debug?(message: string, details?: object): void;
}

export interface PublisherOptions {
  /**
   * `redis://[[user]:password@]host[:port][/db]` (`rediss://` for TLS), or
   * `redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/service[/db]`
   * (`rediss+sentinel://` for TLS to the master), or
   * `redis+cluster://[[user]:password@]host[:port][,host[:port]…][/]` for
   * Redis Cluster (`rediss+cluster://` for TLS; port 6379 when left out; only
   * database 0 exists there); default TIDINGS_REDIS_URL,
   * REDIS_URL, then redis://127.0.0.1:6379. A malformed URL makes every
   * publish fail (kind `unreachable`) with a message saying what is wrong.
   */
  url?: string;
  /** Upper bound of one publish, connecting included (default 1000 ms). */
  timeoutMs?: number;
  /** Record in history (default on, with the gateway's defaults); `false` for a plain PUBLISH. */
  history?: HistoryOptions | false;
  /** Where failures are logged (default `console`). */
  logger?: Logger;
  /** Called with every failed outcome, for metrics or alerting. Its own errors are ignored. */
  onError?: (outcome: PublishOutcome) => void;
}

export type PublishErrorKind = 'invalid' | 'unreachable' | 'redis' | 'timeout';

/** What became of one publish (never thrown). */
export interface PublishOutcome {
  /** The Redis channel, e.g. `ws:inventory` (empty when the user id was invalid). */
  channel: string;
  /** The exact JSON sent (or that would have been). */
  payload: string;
  /** Subscribers Redis delivered it to; undefined when not published. */
  receivers?: number;
  /** `EPOCH:MILLIS-SEQ` in the channel's history, when recorded. */
  position?: string;
  error?: { kind: PublishErrorKind; message: string };
}

export type NotificationType = Notification['notificationType'];

export interface NewNotification {
  notificationType?: NotificationType;
  /** Accepted as an alias of `notificationType`. */
  type?: NotificationType;
  title: string;
  message: string;
  actionUrl?: string;
  actionLabel?: string;
}

type Input<T, Filled extends keyof T = never> = Omit<T, 'timestamp' | Filled>;
export type InventoryUpdate = Input<InventoryChange, 'changeAmount'>;
export type OrderUpdate = Input<OrderStatus>;
export type ApprovalInfo = Input<Approval>;
export type FinanceUpdate = Input<Finance>;
export type DataUpdate = Input<DataChange>;
export type SystemNoticeInfo = Input<SystemNotice>;
export type BroadcastInfo = Omit<Input<Broadcast>, 'level'> & { level?: Broadcast['level'] };
export type ApprovalDecision = 'approved' | 'rejected';
export type FinanceEventType = 'payment' | 'refund' | 'overdue';
export type SystemEventType = 'maintenance' | 'update' | 'alert';

/** Approval result and the requester's notification; each can fail on its own. */
export interface ApprovalResultOutcome {
  approval: PublishOutcome;
  notification: PublishOutcome;
}

const USER_ID = /^[A-Za-z0-9._@-]{1,128}$/;

/** Builds `{type, ...fields, timestamp}` in the Rust struct's field order, without absent fields. */
function event(type: Event['type'], order: string, fields: object): { [key: string]: unknown } {
  const source = fields as { [key: string]: unknown };
  const out: { [key: string]: unknown } = { type };
  for (const name of `${order},timestamp,userId`.split(',')) {
    const value = name === 'timestamp' ? Date.now() : source[name];
    if (value !== undefined && value !== null) out[name] = value;
  }
  return out;
}
const APPROVAL = 'resourceType,resourceId,resourceNumber,requesterId,requesterName,approverId,approverName,reason,comment';
const FINANCE = 'action,recordType,recordId,recordNumber,amount,customerId,customerName,supplierId,supplierName';
const SYSTEM = 'level,message,affectedUsers,scheduledTime,estimatedDuration';
const DATA_CHANNEL = { product: 'products', category: 'products', customer: 'customers', supplier: 'suppliers', user: 'system' } as const;

/** The notification a requester gets about the decision (as crates/tidings/src/publish.rs words it). */
function requesterNotice(decision: ApprovalDecision, approval: ApprovalInfo): NewNotification {
  let message = `Your ${approval.resourceType} ${approval.resourceNumber} was ${decision}`;
  if (approval.approverName != null) message += ` by ${approval.approverName}`;
  const why = approval.reason ?? approval.comment;
  if (why != null) message += `: ${why}`;
  return {
    notificationType: decision === 'approved' ? 'success' : 'warning',
    title: decision === 'approved' ? 'Approval approved' : 'Approval rejected',
    message,
  };
}

export class Publisher {
  private redis: Redis | Cluster | null = null;
  private waiting: Promise<void> | null = null;
  private failures = 0;
  private readonly url: string;
  private readonly shownUrl: string;
  /** The parsed sentinel or cluster URL (neither for a plain one), or why the URL is unusable. */
  private readonly target: { sentinel?: SentinelOptions; cluster?: ClusterOptions } | Error;
  private readonly timeoutMs: number;
  private readonly history: Required<HistoryOptions> | null;

  constructor(private readonly options: PublisherOptions = {}) {
    this.url = options.url ?? process.env.TIDINGS_REDIS_URL ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
    this.shownUrl = hideCredentials(this.url);
    try {
      this.target = { sentinel: sentinelOptions(this.url), cluster: clusterOptions(this.url) };
    } catch (error) {
      this.target = error as Error;
    }
    this.timeoutMs = options.timeoutMs ?? 1000;
    this.history =
      options.history === false
        ? null
        : { maxLen: 10_000, maxAgeMs: 86_400_000, dedupWindowMs: 60_000, ...options.history };
  }

  /** `notification` on `user:{userId}:notifications`. */
  notifyUser(userId: string, notification: NewNotification): Promise<PublishOutcome> {
    return this.safely(() => {
      if (typeof userId !== 'string' || !USER_ID.test(userId)) {
        return this.fail('', '', 'invalid', `notification not sent: ${JSON.stringify(String(userId)).slice(0, 140)} is not a valid user id (1 to 128 letters, digits, - _ . @)`);
      }
      const fields = { ...notification, notificationType: notification.notificationType ?? notification.type, userId };
      return this.send(`user:${userId}:notifications`, event('notification', 'notificationType,title,message,actionUrl,actionLabel', fields));
    });
  }

  /** `inventory:change` on `inventory`, with `changeAmount` = new − old. */
  publishInventoryChange(change: InventoryUpdate): Promise<PublishOutcome> {
    return this.safely(() => {
      const fields = { ...change, changeAmount: change.newQuantity - change.oldQuantity };
      return this.send('inventory', event('inventory:change', 'action,productId,oldQuantity,newQuantity,changeAmount,productName,variantId,reason,operator', fields));
    });
  }

  /** `order:status` on `orders`. */
  publishOrderStatus(order: OrderUpdate): Promise<PublishOutcome> {
    return this.safely(() => this.send('orders', event('order:status', 'orderType,orderId,orderNumber,oldStatus,newStatus,customerId,customerName', order)));
  }

  /** `approval:request` on `approvals`. */
  publishApprovalRequest(approval: ApprovalInfo): Promise<PublishOutcome> {
    return this.safely(() => this.send('approvals', event('approval:request', APPROVAL, approval)));
  }

  /** `approval:approved` / `approval:rejected` on `approvals`, and a notification to the requester (attempted even if the first failed). */
  async publishApprovalResult(decision: ApprovalDecision, approval: ApprovalInfo): Promise<ApprovalResultOutcome> {
    const type = decision === 'approved' ? 'approval:approved' : 'approval:rejected';
    const published = await this.safely(() => this.send('approvals', event(type, APPROVAL, approval)));
    const notification = await this.safely(() => this.notifyUser(approval.requesterId, requesterNotice(decision, approval)));
    return { approval: published, notification };
  }

  /** `finance:payment` / `finance:refund` / `finance:overdue` on `finance`. */
  publishFinanceEvent(kind: FinanceEventType, record: FinanceUpdate): Promise<PublishOutcome> {
    return this.safely(() => this.send('finance', event(`finance:${kind}`, FINANCE, record)));
  }

  /** `data:change` on its resource's channel (products, customers, suppliers; users on system). */
  publishDataChange(change: DataUpdate): Promise<PublishOutcome> {
    return this.safely(() => this.send(DATA_CHANNEL[change.resource] ?? 'system', event('data:change', 'resource,action,resourceId,resourceName,changes', change)));
  }

  /** `system:maintenance` / `system:update` / `system:alert` on `system`. */
  publishSystemEvent(kind: SystemEventType, notice: SystemNoticeInfo): Promise<PublishOutcome> {
    return this.safely(() => this.send('system', event(`system:${kind}`, SYSTEM, notice)));
  }

  /** `broadcast` on `broadcast` (level `info` unless given). */
  broadcast(message: BroadcastInfo | string): Promise<PublishOutcome> {
    return this.safely(() => {
      const info = typeof message === 'string' ? { message } : message;
      return this.send('broadcast', event('broadcast', 'message,level,title', { ...info, level: info.level ?? 'info' }));
    });
  }

  /** Runs a helper so that nothing it meets (a missing argument, say) is thrown at the caller. */
  private async safely(run: () => PublishOutcome | Promise<PublishOutcome>): Promise<PublishOutcome> {
    try {
      return await run();
    } catch (error) {
      return this.fail('', '', 'invalid', `not sent: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /** Closes the shared connection (publishing afterwards opens a new one). */
  async close(): Promise<void> {
    const redis = this.redis;
    this.redis = null;
    await redis?.quit().catch(() => redis.disconnect());
  }

  /** THE send path: every helper ends here. Checks, then appends and publishes in one script call. */
  private async send(channel: string, body: { [key: string]: unknown }): Promise<PublishOutcome> {
    const redisChannel = `ws:${channel}`;
    let payload = '';
    try {
      payload = JSON.stringify(body);
      if (classify(body) !== 'typed') {
        return this.fail(redisChannel, payload, 'invalid', `not sent: ${String(body.type)} is missing a required field or has an ill-typed one (protocol.md §1)`);
      }
    } catch (error) {
      return this.fail(redisChannel, payload, 'invalid', `not sent: ${(error as Error).message}`);
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error(`publish to Redis at ${this.shownUrl} did not finish within ${this.timeoutMs} ms; Redis may be down or overloaded`), { kind: 'timeout' })), this.timeoutMs);
    });
    try {
      const sent = await Promise.race([this.attempt(redisChannel, payload), timeout]);
      if (this.failures > 0) this.options.logger?.debug?.('publishing to Redis works again', { failed: this.failures });
      this.failures = 0;
      return { channel: redisChannel, payload, ...sent };
    } catch (error) {
      const kind = ((error as { kind?: PublishErrorKind }).kind ?? 'redis') as PublishErrorKind;
      if (kind === 'timeout') this.redis?.disconnect(true);
      return this.fail(redisChannel, payload, kind, (error as Error).message);
    } finally {
      clearTimeout(timer);
    }
  }

  private async attempt(redisChannel: string, payload: string): Promise<{ receivers: number; position?: string }> {
    const redis = await this.connection();
    if (!this.history) return { receivers: Number(await redis.publish(redisChannel, payload)) };
    const { maxLen, maxAgeMs, dedupWindowMs } = this.history;
    // Exactly what History::append_command sends (crates/tidings/src/history.rs).
    // ioredis routes it by its first key: on Redis Cluster, to the primary of
    // the channel's slot, which holds all three keys.
    const reply = (await (redis as unknown as { tidingsAppend(...args: (string | number)[]): Promise<unknown> }).tidingsAppend(
      3,
      epochKey(redisChannel),
      streamKey(redisChannel),
      seenKey(redisChannel, payload),
      maxLen,
      Math.max(1, dedupWindowMs),
      randomBytes(6).toString('hex'),
      maxAgeMs,
      Math.min(MAINTAIN_EVERY_MS, Math.floor(maxAgeMs / 2)),
      redisChannel,
      payload,
    )) as unknown[];
    const [epoch, id, receivers] = reply;
    if (typeof epoch !== 'string' || typeof id !== 'string' || typeof receivers !== 'number') {
      throw new Error(`Redis at ${this.shownUrl} answered the history script with something unexpected`);
    }
    return { receivers, position: `${epoch}:${id}` };
  }

  /**
   * The shared connection: opened on first use; ioredis reconnects it with a
   * short backoff (behind Sentinel, to the master the sentinels name then;
   * on Redis Cluster, learning the slot map again from the nodes).
   */
  private async connection(): Promise<Redis | Cluster> {
    const target = this.target;
    if (target instanceof Error) {
      throw Object.assign(new Error(`cannot reach Redis: ${target.message}`), { kind: 'unreachable' });
    }
    if (!this.redis) {
      const retry = (times: number): number => Math.min(50 * 2 ** times, 500);
      const options: RedisOptions = {
        lazyConnect: true,
        // Commands fail at once while disconnected instead of queueing: a
        // publish reported as failed must not go out later behind the caller's back.
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        connectTimeout: this.timeoutMs,
        retryStrategy: retry,
      };
      let redis: Redis | Cluster;
      if (target.cluster) {
        const { nodes, redisOptions } = target.cluster;
        redis = new Cluster(nodes, {
          lazyConnect: true,
          enableOfflineQueue: false,
          clusterRetryStrategy: retry,
          // Likewise no delayed re-sends: a command whose node connection
          // closed, or that met CLUSTERDOWN, fails at once (a later publish
          // finds the new slot map: MOVED and the periodic refresh update it).
          retryDelayOnFailover: 0,
          retryDelayOnClusterDown: 0,
          // TRYAGAIN (a slot mid-migration) is retried, well within the timeout.
          retryDelayOnTryAgain: 10,
          maxRedirections: 16,
          slotsRefreshTimeout: this.timeoutMs,
          // With TLS, connect to the names given (what the certificates
          // name), not to the addresses they resolve to.
          ...(redisOptions.tls ? { dnsLookup: (address: string, done: (error: null, address: string) => void) => done(null, address) } : {}),
          redisOptions: { ...redisOptions, maxRetriesPerRequest: 0, connectTimeout: this.timeoutMs },
        });
      } else if (target.sentinel) {
        redis = new Redis({ ...target.sentinel, ...options });
      } else {
        redis = new Redis(this.url, options);
      }
      redis.on('error', () => {
        /* reported per publish */
      });
      redis.defineCommand('tidingsAppend', { lua: APPEND_SCRIPT });
      this.redis = redis;
    }
    const redis = this.redis;
    if (redis.status === 'ready') return redis;
    // Concurrent publishes wait on one attempt (one pair of listeners).
    this.waiting ??= new Promise<void>((resolve, reject) => {
      const ready = (): void => {
        redis.off('error', failed);
        resolve();
      };
      const failed = (error: Error): void => {
        redis.off('ready', ready);
        redis.off('error', failed);
        reject(Object.assign(new Error(`cannot reach Redis at ${this.shownUrl}: ${reason(error)}. Is redis-server running there?`), { kind: 'unreachable' }));
      };
      redis.once('ready', ready);
      redis.once('error', failed);
      if (redis.status === 'wait' || redis.status === 'end') {
        // A Cluster that cannot even resolve its startup nodes says so only here.
        redis.connect().catch(redis instanceof Cluster ? failed : () => undefined);
      }
    }).finally(() => {
      this.waiting = null;
    });
    await this.waiting;
    return redis;
  }

  private fail(channel: string, payload: string, kind: PublishErrorKind, message: string): PublishOutcome {
    const outcome: PublishOutcome = { channel, payload, error: { kind, message } };
    const logger = this.options.logger ?? console;
    if (kind === 'invalid') logger.warn(`tidings: publish refused: ${message}`, { channel });
    else if (this.failures++ === 0) logger.warn(`tidings: publish failed; further failures are logged at debug level until one succeeds: ${message}`, { channel });
    else logger.debug?.(`tidings: publish failed: ${message}`, { channel });
    try {
      this.options.onError?.(outcome);
    } catch {
      /* a reporting hook must not break publishing */
    }
    return outcome;
  }
}

/** Why a connection failed; for a cluster whose nodes all failed, the last node's error. */
function reason(error: Error): string {
  const last = (error as { lastNodeError?: unknown }).lastNodeError;
  return last instanceof Error ? `no node of the cluster answered (the last: ${last.message})` : error.message;
}

let shared: Publisher | null = null;

/** Sets up the publisher the module-level helpers use (optional: they default to TIDINGS_REDIS_URL / REDIS_URL). */
export function configurePublisher(options: PublisherOptions = {}): Publisher {
  void shared?.close();
  shared = new Publisher(options);
  return shared;
}

function publisher(): Publisher {
  if (!shared) shared = new Publisher();
  return shared;
}

export const notifyUser = (userId: string, notification: NewNotification): Promise<PublishOutcome> => publisher().notifyUser(userId, notification);
export const publishInventoryChange = (change: InventoryUpdate): Promise<PublishOutcome> => publisher().publishInventoryChange(change);
export const publishOrderStatus = (order: OrderUpdate): Promise<PublishOutcome> => publisher().publishOrderStatus(order);
export const publishApprovalRequest = (approval: ApprovalInfo): Promise<PublishOutcome> => publisher().publishApprovalRequest(approval);
export const publishApprovalResult = (decision: ApprovalDecision, approval: ApprovalInfo): Promise<ApprovalResultOutcome> =>
  publisher().publishApprovalResult(decision, approval);
export const publishFinanceEvent = (kind: FinanceEventType, record: FinanceUpdate): Promise<PublishOutcome> => publisher().publishFinanceEvent(kind, record);
export const publishDataChange = (change: DataUpdate): Promise<PublishOutcome> => publisher().publishDataChange(change);
export const publishSystemEvent = (kind: SystemEventType, notice: SystemNoticeInfo): Promise<PublishOutcome> => publisher().publishSystemEvent(kind, notice);
export const broadcast = (message: BroadcastInfo | string): Promise<PublishOutcome> => publisher().broadcast(message);

/** Closes the default publisher's connection (for a clean process exit). */
export async function closePublisher(): Promise<void> {
  await shared?.close();
  shared = null;
}
