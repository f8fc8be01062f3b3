// The browser tests' page: the hooks of @tidings/client/react as an app
// uses them. Everything the network sends is rendered as text by React.
import { useState } from 'react';
import { createRoot } from 'react-dom/client';
import {
  configure,
  useApprovalUpdates,
  useBroadcast,
  useCustomerUpdates,
  useFinanceUpdates,
  useInventoryUpdates,
  useOrderUpdates,
  useProductUpdates,
  useSupplierUpdates,
  useSystemUpdates,
  useUserNotifications,
  useWebSocket,
} from '@tidings/client/react';
import type { TidingsMessage } from '@tidings/client/react';

const params = new URLSearchParams(location.search);
const client = configure({ url: params.get('gw') ?? '', minDelayMs: 100, maxDelayMs: 800 });

type Probe = { client: typeof client; events: TidingsMessage[]; missed: [string, string | null][]; statuses: string[] };
const probe: Probe = { client, events: [], missed: [], statuses: [] };
(window as unknown as { __t: Probe }).__t = probe;
client.onMissed((channel, since) => probe.missed.push([channel, since]));
client.onStatus((status) => probe.statuses.push(status.upstream));

function Inventory() {
  const [rows, setRows] = useState<TidingsMessage[]>([]);
  const { isConnected } = useInventoryUpdates((message) => {
    probe.events.push(message);
    setRows((current) => [...current, message]);
  });
  return (
    <section data-testid="inventory" data-connected={String(isConnected)}>
      <ul>
        {rows.map((m, i) => (
          <li key={i} data-testid="row">
            {m.typed && m.data.type === 'inventory:change' ? `${m.data.productId} ${m.data.productName ?? ''} ${m.data.changeAmount}` : `legacy ${String(m.data.type)}`}
          </li>
        ))}
      </ul>
    </section>
  );
}

function Approvals() {
  const [count, setCount] = useState(0);
  useApprovalUpdates((message) => {
    probe.events.push(message);
    setCount((n) => n + 1);
  });
  return <p data-testid="approvals">{count}</p>;
}

function Extra() {
  // subscribe()/unsubscribe() from useWebSocket, as the seed's callers do.
  const { subscribe, unsubscribe } = useWebSocket({ onMessage: (m) => probe.events.push(m) });
  (window as unknown as { __sub: unknown }).__sub = { subscribe, unsubscribe };
  return null;
}

// Every named hook, each recording `channel type` of what it got.
const hooks: { [hook: string]: string[] } = {};
(window as unknown as { __hooks: typeof hooks }).__hooks = hooks;
const all: TidingsMessage[] = [];
(window as unknown as { __all: typeof all }).__all = all;
const record = (hook: string) => (m: TidingsMessage) => {
  all.push(m);
  (hooks[hook] ??= []).push(`${m.channel} ${String(m.data.type)}`);
};
function AllHooks() {
  useUserNotifications(params.get('user'), record('useUserNotifications'));
  useOrderUpdates(record('useOrderUpdates'));
  useFinanceUpdates(record('useFinanceUpdates'));
  useProductUpdates(record('useProductUpdates'));
  useCustomerUpdates(record('useCustomerUpdates'));
  useSupplierUpdates(record('useSupplierUpdates'));
  useSystemUpdates(record('useSystemUpdates'));
  useBroadcast(record('useBroadcast'));
  return null;
}

createRoot(document.getElementById('root') as HTMLElement).render(
  <>
    <Inventory />
    <Approvals />
    <Extra />
    {params.has('all') && <AllHooks />}
  </>,
);
