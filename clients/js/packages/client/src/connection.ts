// One WebSocket to the gateway (protocol.md §2 with docs/gateway.md and
// docs/positions.md's additions): subscribe with `since`, `recovered`,
// `missed`, `status`, keepalive pings, reconnects with exponential backoff
// and full jitter, and a fresh token from `getToken()` on every connect (and
// at once after close 4001, "token expired").
//
// In a browser with several tabs only the leader tab runs one of these
// (./client.ts); the others get its events through a BroadcastChannel.

/** The gateway's link to Redis, from its `status` frames. */
export type UpstreamStatus = { upstream: 'live' | 'reconnecting'; message?: string };

export type TokenSource = () => string | null | undefined | Promise<string | null | undefined>;

export interface ConnectionOptions {
  /** `ws(s)://host:port/ws`. */
  url: string;
  /** Called before every connect; the token goes in `?token=` (browsers cannot set headers). */
  getToken?: TokenSource;
  /** A WebSocket constructor, for Node (`ws`); the global one by default. */
  WebSocket?: new (url: string) => WebSocket;
  /** First reconnect delay bound, doubling up to `maxDelayMs` (full jitter). */
  minDelayMs?: number;
  maxDelayMs?: number;
  /** How often a `ping` frame is sent; no frame within `pongTimeoutMs` after one → reconnect. */
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
}

export interface ConnectionEvents {
  event(channel: string, data: unknown, position: string | undefined): void;
  connected(connected: boolean): void;
  missed(channel: string, since: string | null): void;
  status(status: UpstreamStatus): void;
  error(code: string, message: string, channel?: string): void;
}

type Frame = { [key: string]: unknown };

/** `EPOCH:MILLIS-SEQ` → [epoch, millis, seq], or null. */
function parsePosition(position: string): [string, number, number] | null {
  const match = /^(\w+):(\d+)-(\d+)$/.exec(position);
  return match ? [match[1] as string, Number(match[2]), Number(match[3])] : null;
}

/** Whether `position` is at or before `last` in the same epoch (so already had). */
export function alreadyHad(last: string | undefined, position: string | undefined): boolean {
  if (last === undefined || position === undefined) return false;
  const a = parsePosition(last);
  const b = parsePosition(position);
  if (!a || !b || a[0] !== b[0]) return false;
  return b[1] < a[1] || (b[1] === a[1] && b[2] <= a[2]);
}

/** Seconds-since-epoch `exp` of a JWT, if it has one. Never trusted for anything but timing. */
function tokenExpiry(token: string): number | undefined {
  try {
    const payload = token.split('.')[1];
    if (!payload) return undefined;
    const claims: unknown = JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/')));
    const exp = (claims as { exp?: unknown }).exp;
    return typeof exp === 'number' ? exp : undefined;
  } catch {
    return undefined;
  }
}

export class Connection {
  /** Channels wanted. */
  private wanted = new Set<string>();
  /** Channels asked of the current socket (subscribe sent). */
  private asked = new Set<string>();
  /** Last position per channel: sent as `since` on the next subscribe. */
  readonly positions = new Map<string, string>();
  private ws: WebSocket | null = null;
  private open = false;
  private running = false;
  private attempt = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private pongTimer: ReturnType<typeof setTimeout> | undefined;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  /** Does the gateway answer `refresh` frames? Unknown until tried. */
  private refreshable: boolean | undefined;
  private sinceSent = new Map<string, string>();

  constructor(
    private readonly options: ConnectionOptions,
    private readonly on: ConnectionEvents,
  ) {}

  get connected(): boolean {
    return this.open;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.connect();
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.retryTimer);
    this.drop();
  }

  /** Makes the subscriptions exactly `channels` (sent at once when connected). */
  setChannels(channels: Iterable<string>): void {
    this.wanted = new Set(channels);
    if (!this.open) return;
    const add = [...this.wanted].filter((c) => !this.asked.has(c));
    const remove = [...this.asked].filter((c) => !this.wanted.has(c));
    if (remove.length) {
      // Nobody wants these any more: a later subscribe starts live, as a
      // fresh one would, instead of replaying everything since.
      for (const c of remove) {
        this.asked.delete(c);
        this.positions.delete(c);
      }
      this.send({ type: 'unsubscribe', channels: remove });
    }
    if (add.length) this.subscribe(add);
  }

  /** Keeps `position` as where `channel` is, if it is newer (a hand-over passes what the old leader delivered). */
  note(channel: string, position: string): void {
    const current = this.positions.get(channel);
    if (current === undefined || alreadyHad(position, current)) this.positions.set(channel, position);
  }

  private subscribe(channels: string[]): void {
    const since: { [channel: string]: string } = {};
    for (const c of channels) {
      this.asked.add(c);
      const at = this.positions.get(c);
      if (at !== undefined) {
        since[c] = at;
        this.sinceSent.set(c, at);
      }
    }
    this.send(Object.keys(since).length ? { type: 'subscribe', channels, since } : { type: 'subscribe', channels });
  }

  private send(frame: Frame): void {
    if (this.ws && this.open) this.ws.send(JSON.stringify(frame));
  }

  private async connect(): Promise<void> {
    clearTimeout(this.retryTimer);
    let token: string | null | undefined;
    try {
      token = await this.options.getToken?.();
    } catch {
      this.retry();
      return;
    }
    if (!this.running) return;
    const url = token ? `${this.options.url}${this.options.url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}` : this.options.url;
    const Ctor = this.options.WebSocket ?? WebSocket;
    let ws: WebSocket;
    try {
      ws = new Ctor(url);
    } catch {
      this.retry();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.open = true;
      this.asked.clear();
      if (this.wanted.size) this.subscribe([...this.wanted]);
      this.keepalive();
      if (token) this.scheduleRefresh(token);
      this.on.connected(true);
    };
    ws.onmessage = (message: MessageEvent) => {
      if (this.ws !== ws) return;
      clearTimeout(this.pongTimer);
      this.pongTimer = undefined;
      let frame: unknown;
      try {
        frame = typeof message.data === 'string' ? JSON.parse(message.data) : null;
      } catch {
        return;
      }
      if (frame && typeof frame === 'object' && !Array.isArray(frame)) this.handle(frame as Frame);
    };
    ws.onclose = (close: CloseEvent) => {
      if (this.ws !== ws) return;
      this.drop();
      if (!this.running) return;
      // 4001: the token expired while connected. A fresh one from
      // getToken() and a resume with `since` lose nothing: reconnect at once.
      if (close.code === 4001) {
        this.attempt = 0;
        void this.connect();
      } else {
        this.retry();
      }
    };
    ws.onerror = () => {
      /* onclose follows */
    };
  }

  private handle(frame: Frame): void {
    switch (frame.type) {
      case 'event': {
        const { channel, data, position } = frame;
        if (typeof channel !== 'string') return;
        const at = typeof position === 'string' ? position : undefined;
        if (alreadyHad(this.positions.get(channel), at)) return;
        if (at !== undefined) this.positions.set(channel, at);
        this.on.event(channel, data, at);
        return;
      }
      case 'subscribed': {
        // A connection that got as far as a subscription is a success.
        this.attempt = 0;
        const recovered = frame.recovered;
        if (recovered && typeof recovered === 'object') {
          for (const [channel, ok] of Object.entries(recovered as { [channel: string]: unknown })) {
            if (ok === false) this.on.missed(channel, this.sinceSent.get(channel) ?? null);
          }
        }
        return;
      }
      case 'missed':
        if (typeof frame.channel === 'string') this.on.missed(frame.channel, typeof frame.since === 'string' ? frame.since : null);
        return;
      case 'status':
        if (frame.upstream === 'live' || frame.upstream === 'reconnecting') {
          this.on.status(typeof frame.message === 'string' ? { upstream: frame.upstream, message: frame.message } : { upstream: frame.upstream });
        }
        return;
      case 'refreshed':
        this.refreshable = true;
        return;
      case 'error': {
        const code = typeof frame.code === 'string' ? frame.code : 'unknown';
        const text = typeof frame.message === 'string' ? frame.message : '';
        // A gateway without `refresh` answers it as an unknown frame type.
        if (this.refreshable === undefined && code === 'bad_request' && /refresh/.test(text)) this.refreshable = false;
        if (typeof frame.channel === 'string') this.on.error(code, text, frame.channel);
        else this.on.error(code, text);
        return;
      }
      default:
        return; // pong, unsubscribed, and frame types this client does not know
    }
  }

  private keepalive(): void {
    const { pingIntervalMs = 20_000, pongTimeoutMs = 10_000 } = this.options;
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => {
      this.send({ type: 'ping' });
      // Any frame disarms this; silence means the link is dead (a half-open
      // TCP, a frozen peer): no close handshake could complete, so drop it.
      this.pongTimer ??= setTimeout(() => {
        this.drop();
        this.retry();
      }, pongTimeoutMs);
    }, pingIntervalMs);
  }

  /** Sends a fresh token shortly before this one expires, if the gateway takes `refresh` frames. */
  private scheduleRefresh(token: string): void {
    const exp = tokenExpiry(token);
    clearTimeout(this.refreshTimer);
    if (exp === undefined || !this.options.getToken || this.refreshable === false) return;
    const due = Math.max(1_000, exp * 1000 - Date.now() - 30_000);
    this.refreshTimer = setTimeout(async () => {
      try {
        const fresh = await this.options.getToken?.();
        if (fresh && this.refreshable !== false) {
          this.send({ type: 'refresh', token: fresh });
          this.scheduleRefresh(fresh);
        }
      } catch {
        /* the gateway closes with 4001 at expiry; the reconnect asks again */
      }
    }, due);
  }

  private retry(): void {
    if (!this.running) return;
    const { minDelayMs = 250, maxDelayMs = 30_000 } = this.options;
    // Full jitter: anywhere between 0 and the exponential bound, so a
    // restarted gateway is not hit by every browser at the same instant.
    const bound = Math.min(maxDelayMs, minDelayMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.connect(), Math.random() * bound);
  }

  private drop(): void {
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    this.pongTimer = undefined;
    clearTimeout(this.refreshTimer);
    const ws = this.ws;
    const wasOpen = this.open;
    this.ws = null;
    this.open = false;
    this.asked.clear();
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      try {
        ws.close();
      } catch {
        /* already closed */
      }
    }
    if (wasOpen) this.on.connected(false);
  }
}
