// @tidings/client/react: the seed's hooks, same names, arguments and return
// values, on top of the shared client (docs/web.md). React is a peer
// dependency.
import { createContext, createElement, useCallback, useContext, useEffect, useMemo, useRef, useState } from 'react';
import type { ReactNode } from 'react';
import { TidingsClient } from './client.js';
import type { ClientOptions } from './client.js';
import type { TidingsMessage } from './events.js';

export type { TidingsMessage } from './events.js';
export { TidingsClient } from './client.js';

let fallback: TidingsClient | null = null;

/** Creates the client the hooks use when no `<TidingsProvider>` is above them. Call once at start. */
export function configure(options: ClientOptions): TidingsClient {
  fallback?.close();
  fallback = new TidingsClient(options);
  return fallback;
}

const Context = createContext<TidingsClient | null>(null);

/** Gives the hooks below it `client` instead of the configured one. */
export function TidingsProvider(props: { client: TidingsClient; children?: ReactNode }): ReturnType<typeof createElement> {
  return createElement(Context.Provider, { value: props.client }, props.children);
}

export function useTidingsClient(): TidingsClient {
  const client = useContext(Context) ?? fallback;
  if (!client) throw new Error('@tidings/client/react: call configure({ url, getToken }) or render a <TidingsProvider> first');
  return client;
}

export type MessageHandler = (message: TidingsMessage) => void;

export interface UseWebSocketOptions {
  channels?: string[];
  onMessage?: MessageHandler;
  /** Connect on mount (default true). With false, something else calls `connect()` on the client. */
  autoConnect?: boolean;
}

export interface UseWebSocketResult {
  isConnected: boolean;
  subscribe: (channels: string | string[]) => void;
  unsubscribe: (channels: string | string[]) => void;
}

const list = (channels: string | string[]): string[] => (typeof channels === 'string' ? [channels] : channels);

export function useWebSocket({ channels = [], onMessage, autoConnect = true }: UseWebSocketOptions = {}): UseWebSocketResult {
  const client = useTidingsClient();
  const [isConnected, setConnected] = useState(client.connected);
  const handler = useRef(onMessage);
  handler.current = onMessage;
  const [added, setAdded] = useState<string[]>([]);
  const [removed, setRemoved] = useState<string[]>([]);
  const given = channels.join('\n');
  const wanted = useMemo(() => {
    const set = new Set([...channels, ...added]);
    for (const c of removed) set.delete(c);
    return [...set].sort().join('\n');
    // `given` stands for `channels`, so a new array with the same names changes nothing.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [given, added, removed]);

  useEffect(() => {
    const off = client.onConnectionChange(setConnected);
    setConnected(client.connected);
    if (autoConnect) client.connect();
    return off;
  }, [client, autoConnect]);

  useEffect(() => {
    if (!wanted) return undefined;
    return client.subscribe(wanted.split('\n'), (message) => handler.current?.(message));
  }, [client, wanted]);

  const subscribe = useCallback((more: string | string[]) => {
    const names = list(more);
    setAdded((current) => [...new Set([...current, ...names])]);
    setRemoved((current) => current.filter((c) => !names.includes(c)));
  }, []);
  const unsubscribe = useCallback((less: string | string[]) => {
    const names = list(less);
    setRemoved((current) => [...new Set([...current, ...names])]);
    setAdded((current) => current.filter((c) => !names.includes(c)));
  }, []);
  return { isConnected, subscribe, unsubscribe };
}

const on = (channel: string) => (callback: MessageHandler): UseWebSocketResult =>
  useWebSocket({ channels: [channel], onMessage: callback });

/** `notification`s on `user:{userId}:notifications`; nothing while `userId` is empty. */
export function useUserNotifications(userId: string | null | undefined, callback: MessageHandler): UseWebSocketResult {
  return useWebSocket({ channels: userId ? [`user:${userId}:notifications`] : [], onMessage: callback });
}
/** `inventory:change` on `inventory`. */
export const useInventoryUpdates = on('inventory');
/** `order:status` on `orders`. */
export const useOrderUpdates = on('orders');
/** `approval:request`, `approval:approved`, `approval:rejected` on `approvals`. */
export const useApprovalUpdates = on('approvals');
/** `finance:payment`, `finance:refund`, `finance:overdue` on `finance`. */
export const useFinanceUpdates = on('finance');
/** `data:change` of products and categories on `products`. */
export const useProductUpdates = on('products');
/** `data:change` of customers on `customers`. */
export const useCustomerUpdates = on('customers');
/** `data:change` of suppliers on `suppliers`. */
export const useSupplierUpdates = on('suppliers');
/** `system:*` notices and `data:change` of users on `system`. */
export const useSystemUpdates = on('system');
/** `broadcast` on `broadcast`. */
export const useBroadcast = on('broadcast');
