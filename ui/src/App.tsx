//! The root component: picks the language, routes between screens (the
//! location hash, so a screen survives a reload), follows focus requests,
//! and lays out the status bar, banners, navigation and toasts.

import type { VNode } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import type { Actions } from './actions';
import { SCREENS } from './bindings/constants';
import type { Screen } from './bindings/Screen';
import type { FeedId } from './bindings/FeedId';
import { useNow } from './clock';
import { Banners, Sidebar, Toasts, TopBar, type NavEntry } from './components/Chrome';
import { AppContext, type Ctx } from './context';
import { resolveLocale, translator } from './i18n';
import { Approvals } from './screens/Approvals';
import { Debug } from './screens/Debug';
import { Broadcasts, DataChanges, Finance, Orders, System } from './screens/Feeds';
import { Inventory } from './screens/Inventory';
import { Mine } from './screens/Mine';
import { Overview } from './screens/Overview';
import { Search } from './screens/Search';
import { SettingsScreen } from './screens/SettingsScreen';
import type { Store } from './state/observable';
import type { AppState } from './state/store';

function screenFromHash(): Screen {
  const name = location.hash.replace(/^#\/?/, '');
  return (SCREENS as readonly string[]).includes(name) ? (name as Screen) : 'overview';
}

export function App({ store, actions }: { store: Store<AppState>; actions: Actions }): VNode {
  const [state, setState] = useState(store.get());
  const [screen, setScreen] = useState<Screen>(screenFromHash);
  const now = useNow();

  useEffect(() => store.subscribe(() => setState(store.get())), [store]);
  useEffect(() => {
    const onHash = (): void => setScreen(screenFromHash());
    window.addEventListener('hashchange', onHash);
    // Effects run after the first paint: a hash set before then (a link, a
    // test, the shell) fired no event this listener heard.
    onHash();
    return () => window.removeEventListener('hashchange', onHash);
  }, []);

  const locale = resolveLocale(state.settings.language, navigator.language);
  const t = useMemo(() => translator(locale), [locale]);
  // The window title carries the unread count, so a glance at the task bar says it.
  let unreadTotal = 0;
  for (const n of Object.values(state.unread)) unreadTotal += n ?? 0;
  useEffect(() => {
    document.documentElement.lang = locale;
    document.title =
      unreadTotal > 0 ? `(${unreadTotal > 999 ? '999+' : unreadTotal}) ${t('app.title')}` : t('app.title');
  }, [locale, unreadTotal]);

  const go = (id: string): void => {
    if (location.hash !== `#/${id}`) location.hash = `#/${id}`;
    setScreen(id as Screen);
    // Move keyboard focus to the new screen's heading region for screen readers.
    requestAnimationFrame(() => document.getElementById('main')?.focus({ preventScroll: true }));
  };

  // A clicked notification or toast: show its feed; the list scrolls to it.
  useEffect(() => {
    if (state.focus && screen !== state.focus.feed) go(state.focus.feed);
  }, [state.focus?.nonce]);

  // Alt+1..9 jump to the first nine screens.
  useEffect(() => {
    const onKey = (ev: KeyboardEvent): void => {
      if (!ev.altKey || ev.ctrlKey || ev.metaKey) return;
      const n = Number(ev.key);
      if (Number.isInteger(n) && n >= 1 && n <= 9) {
        const target = SCREENS[n - 1];
        if (target) {
          ev.preventDefault();
          go(target);
        }
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);

  const ctx: Ctx = { state, t, now, actions };
  const badge = (feed: FeedId): number => state.unread[feed] ?? 0;
  const entries: NavEntry[] = [
    { id: 'overview', label: 'nav.overview' },
    { id: 'inventory', label: 'nav.inventory', badge: badge('inventory') },
    { id: 'orders', label: 'nav.orders', badge: badge('orders') },
    { id: 'approvals', label: 'nav.approvals', badge: state.pending.size },
    { id: 'finance', label: 'nav.finance', badge: badge('finance') },
    { id: 'system', label: 'nav.system', badge: badge('system') },
    { id: 'data', label: 'nav.data', badge: badge('data') },
    { id: 'broadcast', label: 'nav.broadcast', badge: badge('broadcast') },
    { id: 'mine', label: 'nav.mine', badge: badge('mine') },
    { id: 'search', label: 'nav.search' },
    { id: 'debug', label: 'nav.debug' },
    { id: 'settings', label: 'nav.settings' },
  ];

  return (
    <AppContext.Provider value={ctx}>
      <div class="app" data-screen={screen}>
        <TopBar />
        <Banners />
        <div class="body">
          <Sidebar entries={entries} current={screen} go={go} />
          <main id="main" class="main" tabIndex={-1}>
            {renderScreen(screen, go)}
          </main>
        </div>
        <Toasts />
      </div>
    </AppContext.Provider>
  );
}

function renderScreen(screen: Screen, go: (id: string) => void): VNode {
  switch (screen) {
    case 'overview':
      return <Overview go={go} />;
    case 'inventory':
      return <Inventory />;
    case 'orders':
      return <Orders />;
    case 'approvals':
      return <Approvals />;
    case 'finance':
      return <Finance />;
    case 'system':
      return <System />;
    case 'data':
      return <DataChanges />;
    case 'broadcast':
      return <Broadcasts />;
    case 'mine':
      return <Mine />;
    case 'search':
      return <Search />;
    case 'debug':
      return <Debug />;
    case 'settings':
      return <SettingsScreen />;
  }
}
