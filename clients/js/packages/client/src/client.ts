// The client: one WebSocket per browser, shared by every tab of the origin.
//
// Tabs elect a leader with the Web Locks API: each tab asks for the same
// exclusive lock; the one holding it runs the only Connection, and the lock
// passes to another tab by itself when the leader's tab closes or crashes.
// Tabs talk over a BroadcastChannel: followers tell the leader which
// channels they want, the leader subscribes the union and posts every event
// once to the channel; each tab hands it to its own listeners of that
// channel. Every tab remembers the last position of every channel it has
// seen, so the tab that takes over resumes with `since` from there: nothing
// is lost across a hand-over, and a position at or before the last seen is
// never delivered twice.
import { Connection, alreadyHad } from './connection.js';
import type { ConnectionOptions, UpstreamStatus } from './connection.js';
import { toMessage } from './events.js';
import type { TidingsMessage } from './events.js';

export interface ClientOptions extends ConnectionOptions {
  /** Share one WebSocket among this origin's tabs (default: where Web Locks and BroadcastChannel exist). */
  share?: boolean;
  /** Tabs with the same name share a connection (default: the URL). */
  name?: string;
}

export type Listener = (message: TidingsMessage) => void;

type Peer =
  | { t: 'want'; tab: string; channels: string[] }
  | { t: 'bye'; tab: string }
  | { t: 'hello' }
  | { t: 'state'; connected: boolean }
  | { t: 'ev'; channel: string; data: unknown; position?: string }
  | { t: 'missed'; channel: string; since: string | null }
  | { t: 'status'; status: UpstreamStatus }
  | { t: 'err'; code: string; message: string; channel?: string };

/** A listener's bug must not keep the event from the others: reported as uncaught, asynchronously. */
function report(error: unknown): void {
  const g = globalThis as { reportError?: (error: unknown) => void };
  if (g.reportError) g.reportError(error);
  else
    setTimeout(() => {
      throw error;
    });
}

class Emitter<A extends unknown[]> {
  private readonly set = new Set<(...args: A) => void>();
  add(callback: (...args: A) => void): () => void {
    this.set.add(callback);
    return () => void this.set.delete(callback);
  }
  emit(...args: A): void {
    for (const callback of [...this.set]) {
      try {
        callback(...args);
      } catch (error) {
        report(error);
      }
    }
  }
}

export class TidingsClient {
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly positions = new Map<string, string>();
  private readonly wants = new Map<string, string[]>();
  private readonly tab = Math.random().toString(36).slice(2);
  private readonly connectedChange = new Emitter<[boolean]>();
  private readonly missedEvents = new Emitter<[string, string | null]>();
  private readonly statusEvents = new Emitter<[UpstreamStatus]>();
  private readonly errorEvents = new Emitter<[string, string, string | undefined]>();
  private connection: Connection | null = null;
  private channel: BroadcastChannel | null = null;
  private release: (() => void) | null = null;
  private isConnected = false;
  private started = false;
  private leader = false;
  private flushQueued = false;
  private readonly onPageHide = (): void => this.post({ t: 'bye', tab: this.tab });
  /** Back from the back/forward cache: tell the leader again what this tab wants. */
  private readonly onPageShow = (event: PageTransitionEvent): void => {
    if (event.persisted) this.changed();
  };

  constructor(private readonly options: ClientOptions) {}

  /** Whether this tab's events flow: its own socket, or the leader tab's, is open. */
  get connected(): boolean {
    return this.isConnected;
  }

  /** Whether this tab holds the shared WebSocket. */
  get isLeader(): boolean {
    return this.leader;
  }

  /** Calls `listener` with every message on `channels` until the returned function is called. */
  subscribe(channels: readonly string[], listener: Listener): () => void {
    for (const channel of channels) {
      let set = this.listeners.get(channel);
      if (!set) this.listeners.set(channel, (set = new Set()));
      set.add(listener);
    }
    this.changed();
    return () => {
      for (const channel of channels) {
        const set = this.listeners.get(channel);
        set?.delete(listener);
        if (set?.size === 0) this.listeners.delete(channel);
      }
      this.changed();
    };
  }

  onConnectionChange(callback: (connected: boolean) => void): () => void {
    return this.connectedChange.add(callback);
  }

  /** `recovered: false` or a `missed` frame: events on `channel` after `since` may be missing. */
  onMissed(callback: (channel: string, since: string | null) => void): () => void {
    return this.missedEvents.add(callback);
  }

  /** The gateway's `status` frames (its link to Redis). */
  onStatus(callback: (status: UpstreamStatus) => void): () => void {
    return this.statusEvents.add(callback);
  }

  /** `error` frames (a refused channel, say). */
  onError(callback: (code: string, message: string, channel?: string) => void): () => void {
    return this.errorEvents.add(callback);
  }

  /** Starts connecting (or following the tab that is). Idempotent. */
  connect(): void {
    if (this.started) return;
    this.started = true;
    const canShare = typeof BroadcastChannel === 'function' && typeof navigator === 'object' && !!navigator.locks;
    if (!(this.options.share ?? canShare) || !canShare) {
      this.lead();
      return;
    }
    const name = `tidings:${this.options.name ?? this.options.url}`;
    this.channel = new BroadcastChannel(name);
    this.channel.onmessage = (message: MessageEvent<Peer>) => this.peer(message.data);
    addEventListener('pagehide', this.onPageHide);
    addEventListener('pageshow', this.onPageShow);
    this.post({ t: 'want', tab: this.tab, channels: this.own() });
    void navigator.locks.request(name, () => {
      if (!this.started) return undefined;
      this.lead();
      // Held until close() or until the tab goes away.
      return new Promise<void>((resolve) => (this.release = resolve));
    });
  }

  /** Closes the socket (handing it to another tab) and stops. */
  close(): void {
    if (!this.started) return;
    this.started = false;
    if (this.channel) {
      this.onPageHide();
      removeEventListener('pagehide', this.onPageHide);
      removeEventListener('pageshow', this.onPageShow);
    }
    this.connection?.stop();
    this.connection = null;
    this.leader = false;
    this.release?.();
    this.release = null;
    this.channel?.close();
    this.channel = null;
    this.setConnected(false);
  }

  private own(): string[] {
    return [...this.listeners.keys()];
  }

  /**
   * Listeners changed: tell the socket (or the leader) once the current task
   * is done, so that React replacing one effect by the next (unsubscribe,
   * then subscribe the same channel) sends nothing at all.
   */
  private changed(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => {
      this.flushQueued = false;
      if (this.connection) this.connection.setChannels(this.union());
      else this.post({ t: 'want', tab: this.tab, channels: this.own() });
    });
  }

  private union(): Set<string> {
    const all = new Set(this.own());
    for (const channels of this.wants.values()) for (const c of channels) all.add(c);
    return all;
  }

  private lead(): void {
    this.leader = true;
    const connection = new Connection(this.options, {
      event: (channel, data, position) => {
        this.post(position === undefined ? { t: 'ev', channel, data } : { t: 'ev', channel, data, position });
        this.deliver(channel, data, position);
      },
      connected: (connected) => {
        this.post({ t: 'state', connected });
        this.setConnected(connected);
      },
      missed: (channel, since) => {
        this.post({ t: 'missed', channel, since });
        this.missedEvents.emit(channel, since);
      },
      status: (status) => {
        this.post({ t: 'status', status });
        this.statusEvents.emit(status);
      },
      error: (code, message, channel) => {
        this.post(channel === undefined ? { t: 'err', code, message } : { t: 'err', code, message, channel });
        this.errorEvents.emit(code, message, channel);
      },
    });
    for (const [channel, position] of this.positions) connection.note(channel, position);
    this.connection = connection;
    connection.setChannels(this.union());
    this.post({ t: 'hello' });
    connection.start();
  }

  private peer(message: Peer): void {
    switch (message.t) {
      case 'ev':
        // Also reaches a tab that just took over: it keeps the position.
        if (message.position !== undefined) this.connection?.note(message.channel, message.position);
        this.deliver(message.channel, message.data, message.position);
        return;
      case 'state':
        if (!this.connection) this.setConnected(message.connected);
        return;
      case 'missed':
        this.missedEvents.emit(message.channel, message.since);
        return;
      case 'status':
        this.statusEvents.emit(message.status);
        return;
      case 'err':
        this.errorEvents.emit(message.code, message.message, message.channel);
        return;
      case 'hello':
        this.post({ t: 'want', tab: this.tab, channels: this.own() });
        return;
      case 'want':
        if (!this.connection) return;
        this.wants.set(message.tab, message.channels);
        this.connection.setChannels(this.union());
        this.post({ t: 'state', connected: this.isConnected });
        return;
      case 'bye':
        if (!this.connection) return;
        this.wants.delete(message.tab);
        this.connection.setChannels(this.union());
        return;
    }
  }

  private deliver(channel: string, data: unknown, position: string | undefined): void {
    if (alreadyHad(this.positions.get(channel), position)) return;
    if (position !== undefined) this.positions.set(channel, position);
    const listeners = this.listeners.get(channel);
    if (!listeners) return;
    const message = toMessage(channel, data, position);
    if (!message) return; // malformed: never delivered
    for (const listener of [...listeners]) {
      try {
        listener(message);
      } catch (error) {
        report(error);
      }
    }
  }

  private post(message: Peer): void {
    this.channel?.postMessage(message);
  }

  private setConnected(connected: boolean): void {
    if (connected === this.isConnected) return;
    this.isConnected = connected;
    this.connectedChange.emit(connected);
  }
}

export type { ConnectionOptions, UpstreamStatus, TokenSource } from './connection.js';
