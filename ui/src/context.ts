//! What every screen reads: the state, the translator, the shared clock's
//! `now`, and the actions. Provided once by the root component.

import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { Actions } from './actions';
import type { Translator } from './i18n';
import type { AppState } from './state/store';

export interface Ctx {
  state: AppState;
  t: Translator;
  now: number;
  actions: Actions;
}

export const AppContext = createContext<Ctx | null>(null);

export function useApp(): Ctx {
  const ctx = useContext(AppContext);
  if (!ctx) throw new Error('useApp outside AppContext');
  return ctx;
}
