//! Settings: source (kind, URL, token, user), role profile, per-feed
//! notification rules, quiet hours, low-stock threshold, ERP base URL,
//! coalescing, language and autostart. Edits a draft; Save sends it to Rust,
//! which validates, saves the TOML and answers with what it kept.

import type { ComponentChildren, VNode } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { FeedId } from '../bindings/FeedId';
import type { FeedRule } from '../bindings/FeedRule';
import type { Language } from '../bindings/Language';
import type { MinLevel } from '../bindings/MinLevel';
import type { Profile } from '../bindings/Profile';
import type { Settings } from '../bindings/Settings';
import type { SourceKind } from '../bindings/SourceKind';
import { useApp } from '../context';
import { errorText } from '../ipc';
import type { MessageKey } from '../i18n';
import { validateSettings, type Field, type FieldErrors } from '../settingsForm';
import { FEED_IDS } from '../state/store';

const DEFAULT_RULE: FeedRule = { enabled: true, notify: true, minLevel: 'info' };

type Status = { kind: 'idle' } | { kind: 'saving' } | { kind: 'saved' } | { kind: 'error'; text: string };

function FieldRow({
  id,
  label,
  error,
  hint,
  children,
}: {
  id: string;
  label: string;
  error?: string | undefined;
  hint?: string;
  children: ComponentChildren;
}): VNode {
  return (
    <div class={error ? 'field invalid' : 'field'}>
      <label for={id}>{label}</label>
      {children}
      {hint ? <p class="hint muted small">{hint}</p> : null}
      {error ? (
        <p class="error small" id={`${id}-error`} role="alert">
          {error}
        </p>
      ) : null}
    </div>
  );
}

export function SettingsScreen(): VNode {
  const { state, t, actions } = useApp();
  const [draft, setDraft] = useState<Settings>(state.settings);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [status, setStatus] = useState<Status>({ kind: 'idle' });
  const [testNote, setTestNote] = useState<string | null>(null);
  const dirty = JSON.stringify(draft) !== JSON.stringify(state.settings);

  // Settings changed elsewhere (language switch, another save): follow them
  // unless the user is in the middle of editing.
  useEffect(() => {
    if (!dirty) setDraft(state.settings);
  }, [state.settings]);

  const err = (field: Field): string | undefined => {
    const key = errors[field];
    return key ? t(key) : undefined;
  };
  const aria = (field: Field) => (errors[field] ? { 'aria-invalid': true, 'aria-describedby': `f-${field}-error` } : {});
  const set = (change: (s: Settings) => Settings): void => {
    setDraft((d) => {
      const next = change(d);
      if (Object.keys(errors).length) setErrors(validateSettings(next));
      return next;
    });
    setStatus({ kind: 'idle' });
  };
  const rule = (feed: FeedId): FeedRule => draft.feeds[feed] ?? DEFAULT_RULE;
  const setRule = (feed: FeedId, change: Partial<FeedRule>): void =>
    set((s) => ({ ...s, feeds: { ...s.feeds, [feed]: { ...rule(feed), ...change } } }));
  const num = (ev: Event): number => {
    const raw = (ev.target as HTMLInputElement).value.trim();
    return raw === '' ? Number.NaN : Number(raw);
  };
  const text = (ev: Event): string => (ev.target as HTMLInputElement).value;

  const save = async (ev: Event): Promise<void> => {
    ev.preventDefault();
    const found = validateSettings(draft);
    setErrors(found);
    if (Object.keys(found).length) {
      setStatus({ kind: 'error', text: t('set.invalid') });
      return;
    }
    setStatus({ kind: 'saving' });
    try {
      const saved = await actions.saveSettings(draft);
      setDraft(saved);
      setStatus({ kind: 'saved' });
    } catch (error) {
      setStatus({ kind: 'error', text: errorText(error) });
    }
  };

  return (
    <section class="screen settings">
      <header class="screen-head">
        <h1>{t('set.title')}</h1>
      </header>
      <form class="settings-form" onSubmit={save} noValidate>
        <fieldset>
          <legend>{t('set.source')}</legend>
          <div class="row">
            <FieldRow id="f-kind" label={t('set.kind')}>
              <select
                id="f-kind"
                class="input"
                value={draft.source.kind}
                onChange={(ev) =>
                  set((s) => ({ ...s, source: { ...s.source, kind: text(ev) as SourceKind } }))
                }
              >
                <option value="gateway">{t('set.kind.gateway')}</option>
                <option value="redis">{t('set.kind.redis')}</option>
              </select>
            </FieldRow>
            <FieldRow id="f-url" label={t('set.url')} error={err('url')}>
              <input
                id="f-url"
                class="input mono wide"
                value={draft.source.url}
                placeholder={draft.source.kind === 'gateway' ? 'wss://erp.example.com/ws' : 'redis://127.0.0.1:6379'}
                {...aria('url')}
                onInput={(ev) => set((s) => ({ ...s, source: { ...s.source, url: text(ev) } }))}
              />
            </FieldRow>
          </div>
          <div class="row">
            {draft.source.kind === 'gateway' ? (
              <FieldRow id="f-token" label={t('set.token')} hint={t('set.tokenHint')}>
                <input
                  id="f-token"
                  class="input mono wide"
                  type="password"
                  autoComplete="off"
                  value={draft.source.token ?? ''}
                  onInput={(ev) => set((s) => ({ ...s, source: { ...s.source, token: text(ev) } }))}
                />
              </FieldRow>
            ) : null}
            <FieldRow id="f-userId" label={t('set.user')} error={err('userId')}>
              <input
                id="f-userId"
                class="input mono"
                value={draft.source.userId ?? ''}
                {...aria('userId')}
                onInput={(ev) => set((s) => ({ ...s, source: { ...s.source, userId: text(ev) } }))}
              />
            </FieldRow>
          </div>
        </fieldset>

        <fieldset>
          <legend>{t('set.general')}</legend>
          <div class="row">
            <FieldRow id="f-profile" label={t('set.profile')}>
              <select
                id="f-profile"
                class="input"
                value={draft.profile}
                onChange={(ev) => set((s) => ({ ...s, profile: text(ev) as Profile }))}
              >
                {(['warehouse', 'approver', 'ops'] as const).map((p) => (
                  <option key={p} value={p}>
                    {t(`set.profile.${p}` as MessageKey)}
                  </option>
                ))}
              </select>
            </FieldRow>
            <FieldRow id="f-language" label={t('set.language')}>
              <select
                id="f-language"
                class="input"
                value={draft.language}
                onChange={(ev) => set((s) => ({ ...s, language: text(ev) as Language }))}
              >
                {(['auto', 'zh-CN', 'en'] as const).map((l) => (
                  <option key={l} value={l}>
                    {t(`lang.${l}` as MessageKey)}
                  </option>
                ))}
              </select>
            </FieldRow>
            <FieldRow id="f-lowStockThreshold" label={t('set.lowStock')} error={err('lowStockThreshold')}>
              <input
                id="f-lowStockThreshold"
                class="input num"
                type="number"
                min="0"
                step="any"
                value={Number.isNaN(draft.lowStockThreshold) ? '' : draft.lowStockThreshold}
                {...aria('lowStockThreshold')}
                onInput={(ev) => set((s) => ({ ...s, lowStockThreshold: num(ev) }))}
              />
            </FieldRow>
          </div>
          <div class="row">
            <FieldRow id="f-erpBaseUrl" label={t('set.erpBase')} error={err('erpBaseUrl')}>
              <input
                id="f-erpBaseUrl"
                class="input mono wide"
                value={draft.erpBaseUrl}
                placeholder="https://erp.example.com"
                {...aria('erpBaseUrl')}
                onInput={(ev) => set((s) => ({ ...s, erpBaseUrl: text(ev) }))}
              />
            </FieldRow>
            <FieldRow id="f-trustedHosts" label={t('set.trustedHosts')} hint={t('set.trustedHostsHint')}>
              <textarea
                id="f-trustedHosts"
                class="input mono wide"
                rows={2}
                value={(draft.trustedHosts ?? []).join('\n')}
                placeholder={'wiki.example.com\nerp.example.com:8443'}
                onInput={(ev) => set((s) => ({ ...s, trustedHosts: text(ev).split('\n') }))}
              />
            </FieldRow>
            <div class="field">
              <span class="label">{t('set.autostart')}</span>
              <label class="check">
                <input
                  type="checkbox"
                  checked={draft.autostart}
                  onChange={(ev) => set((s) => ({ ...s, autostart: (ev.target as HTMLInputElement).checked }))}
                />
                {t('set.autostart')}
              </label>
            </div>
          </div>
        </fieldset>

        <fieldset>
          <legend>{t('set.rules')}</legend>
          <table class="rules">
            <thead>
              <tr>
                <th scope="col">{t('set.feed')}</th>
                <th scope="col">{t('set.enabled')}</th>
                <th scope="col">{t('set.notify')}</th>
                <th scope="col">{t('set.minLevel')}</th>
              </tr>
            </thead>
            <tbody>
              {FEED_IDS.map((feed) => {
                const r = rule(feed);
                const name = t(`feed.${feed}` as MessageKey);
                return (
                  <tr key={feed}>
                    <th scope="row">{name}</th>
                    <td>
                      <input
                        type="checkbox"
                        aria-label={`${name} · ${t('set.enabled')}`}
                        checked={r.enabled}
                        onChange={(ev) => setRule(feed, { enabled: (ev.target as HTMLInputElement).checked })}
                      />
                    </td>
                    <td>
                      <input
                        type="checkbox"
                        aria-label={`${name} · ${t('set.notify')}`}
                        checked={r.notify}
                        disabled={!r.enabled}
                        onChange={(ev) => setRule(feed, { notify: (ev.target as HTMLInputElement).checked })}
                      />
                    </td>
                    <td>
                      <select
                        class="input"
                        aria-label={`${name} · ${t('set.minLevel')}`}
                        value={r.minLevel}
                        disabled={!r.enabled || !r.notify}
                        onChange={(ev) => setRule(feed, { minLevel: text(ev) as MinLevel })}
                      >
                        {(['info', 'warning', 'critical'] as const).map((l) => (
                          <option key={l} value={l}>
                            {t(`set.minLevel.${l}` as MessageKey)}
                          </option>
                        ))}
                      </select>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </fieldset>

        <fieldset>
          <legend>{t('set.quiet')}</legend>
          <label class="check">
            <input
              type="checkbox"
              checked={draft.quietHours.enabled}
              onChange={(ev) =>
                set((s) => ({ ...s, quietHours: { ...s.quietHours, enabled: (ev.target as HTMLInputElement).checked } }))
              }
            />
            {t('set.quietEnabled')}
          </label>
          <div class="row">
            <FieldRow id="f-quietStart" label={t('set.quietFrom')} error={err('quietStart')}>
              <input
                id="f-quietStart"
                class="input mono"
                value={draft.quietHours.start}
                placeholder="22:00"
                {...aria('quietStart')}
                onInput={(ev) => set((s) => ({ ...s, quietHours: { ...s.quietHours, start: text(ev) } }))}
              />
            </FieldRow>
            <FieldRow id="f-quietEnd" label={t('set.quietTo')} error={err('quietEnd')}>
              <input
                id="f-quietEnd"
                class="input mono"
                value={draft.quietHours.end}
                placeholder="07:00"
                {...aria('quietEnd')}
                onInput={(ev) => set((s) => ({ ...s, quietHours: { ...s.quietHours, end: text(ev) } }))}
              />
            </FieldRow>
          </div>
        </fieldset>

        <fieldset>
          <legend>{t('set.coalesce')}</legend>
          <div class="row">
            <FieldRow id="f-coalesceCount" label={t('set.coalesceCount')} error={err('coalesceCount')}>
              <input
                id="f-coalesceCount"
                class="input num"
                type="number"
                min="1"
                step="1"
                value={Number.isNaN(draft.coalesceCount) ? '' : draft.coalesceCount}
                {...aria('coalesceCount')}
                onInput={(ev) => set((s) => ({ ...s, coalesceCount: num(ev) }))}
              />
            </FieldRow>
            <FieldRow id="f-coalesceWindowSecs" label={t('set.coalesceWindow')} error={err('coalesceWindowSecs')}>
              <input
                id="f-coalesceWindowSecs"
                class="input num"
                type="number"
                min="1"
                step="1"
                value={Number.isNaN(draft.coalesceWindowSecs) ? '' : draft.coalesceWindowSecs}
                {...aria('coalesceWindowSecs')}
                onInput={(ev) => set((s) => ({ ...s, coalesceWindowSecs: num(ev) }))}
              />
            </FieldRow>
          </div>
        </fieldset>

        <div class="form-actions">
          <button type="submit" class="btn primary" disabled={status.kind === 'saving'}>
            {status.kind === 'saving' ? t('set.saving') : t('set.save')}
          </button>
          <button
            type="button"
            class="btn"
            disabled={!dirty}
            onClick={() => {
              setDraft(state.settings);
              setErrors({});
              setStatus({ kind: 'idle' });
            }}
          >
            {t('set.revert')}
          </button>
          <button
            type="button"
            class="btn ghost"
            onClick={() =>
              actions
                .sendTestNotification()
                .then(() => setTestNote(t('set.testSent')))
                .catch((e: unknown) => setTestNote(t('common.error', { error: errorText(e) })))
            }
          >
            {t('set.test')}
          </button>
          <span role="status" class="form-status">
            {status.kind === 'saved' ? <span class="ok-text">{t('set.saved')}</span> : null}
            {status.kind === 'error' ? <span class="error">{status.text}</span> : null}
            {testNote ? <span class="muted"> {testNote}</span> : null}
          </span>
        </div>
      </form>
    </section>
  );
}
