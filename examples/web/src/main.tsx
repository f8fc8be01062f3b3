// An ERP web app's real-time pages on @tidings/client/react. Run it against
// scripts/run.sh's gateway (README in this folder):
//   VITE_TIDINGS_URL=ws://127.0.0.1:8787/ws VITE_TIDINGS_TOKEN=<jwt> npm run dev
// Open it in two tabs: they share one WebSocket (docs/web.md).
import { useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { configure, useTidingsClient } from '@tidings/client/react';
import { InventoryPage } from './InventoryPage';
import { ApprovalsPage } from './ApprovalsPage';

const params = new URLSearchParams(location.search);
const url = params.get('gateway') ?? import.meta.env.VITE_TIDINGS_URL ?? 'ws://127.0.0.1:8787/ws';
const token = params.get('token') ?? import.meta.env.VITE_TIDINGS_TOKEN;

configure({
  url,
  // A real app fetches a fresh token from its own backend here; the
  // gateway closes an expired one with 4001 and this is asked again.
  getToken: () => token ?? null,
});

function Banner() {
  const client = useTidingsClient();
  const [missed, setMissed] = useState<string | null>(null);
  const [upstream, setUpstream] = useState<string>('live');
  useEffect(() => client.onMissed((channel) => setMissed(channel)), [client]);
  useEffect(() => client.onStatus((status) => setUpstream(status.upstream)), [client]);
  return (
    <>
      {missed && <p className="notice">Some {missed} updates may have been missed while offline; reload the list to be sure.</p>}
      {upstream !== 'live' && <p className="notice">The gateway lost its event source; updates resume by themselves.</p>}
    </>
  );
}

function App() {
  const [page, setPage] = useState<'inventory' | 'approvals'>('inventory');
  return (
    <>
      <nav>
        <strong>ERP</strong>
        <button aria-current={page === 'inventory' ? 'page' : undefined} onClick={() => setPage('inventory')}>
          Inventory
        </button>
        <button aria-current={page === 'approvals' ? 'page' : undefined} onClick={() => setPage('approvals')}>
          Approvals
        </button>
      </nav>
      <main>
        <Banner />
        {page === 'inventory' ? <InventoryPage /> : <ApprovalsPage />}
      </main>
    </>
  );
}

createRoot(document.getElementById('root') as HTMLElement).render(<App />);
