//! Start-up: open the live stream first, then take the snapshot, so nothing
//! falls between the two (overlap is dropped by `seq`). Batches that arrive
//! before the snapshot wait in a small bounded buffer.

import { options, render } from 'preact';
import { App } from './App';
import { createActions } from './actions';
import type { UiBatch } from './bindings/UiBatch';
import { reportUncaughtErrors } from './errors';
import { errorText, ipc } from './ipc';
import { resolveLocale, translator } from './i18n';
import { Store } from './state/observable';
import { BatchScheduler } from './state/scheduler';
import { applyBatches, initialState } from './state/store';
import './styles/theme.css';
import './styles/app.css';

// Preact renders state changes in a task of its own rather than in a
// microtask of the task that made them: a fold at an animation frame and the
// render it causes then run as two short tasks instead of one long one
// (followed by the frame's layout and paint), which keeps the page answering
// input under a flood. The cost is at most one frame of extra latency.
options.debounceRendering = (render) => {
  setTimeout(render, 0);
};

/** Batches kept while the snapshot loads; beyond it the oldest go (the snapshot has them). */
const EARLY_CAP = 200;

async function boot(root: HTMLElement): Promise<void> {
  const early: UiBatch[] = [];
  let scheduler: BatchScheduler | null = null;
  const onBatch = (batch: UiBatch): void => {
    if (scheduler) scheduler.push(batch);
    else {
      early.push(batch);
      if (early.length > EARLY_CAP) early.shift();
    }
  };

  const t = translator(resolveLocale('auto', navigator.language));
  root.setAttribute('aria-busy', 'true');
  root.textContent = t('common.loading');
  try {
    await ipc.subscribe(onBatch);
    const snapshot = await ipc.snapshot();
    const store = new Store(initialState(snapshot));
    const actions = createActions(store, ipc, () =>
      translator(resolveLocale(store.get().settings.language, navigator.language)),
    );
    scheduler = new BatchScheduler((batches) => store.update((s) => applyBatches(s, batches, Date.now())));
    for (const batch of early.splice(0)) scheduler.push(batch);
    root.textContent = '';
    root.removeAttribute('aria-busy');
    render(<App store={store} actions={actions} />, root);
  } catch (error) {
    root.removeAttribute('aria-busy');
    root.textContent = t('common.error', { error: errorText(error, t) });
    root.className = 'boot-error';
  }
}

reportUncaughtErrors(window, ipc.reportError);
const root = document.getElementById('app');
if (root) void boot(root);
