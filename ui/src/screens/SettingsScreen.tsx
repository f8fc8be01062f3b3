//! Settings: source (kind, URL, token, user), role profile, per-feed
//! notification rules, quiet hours, low-stock threshold, ERP base URL,
//! coalescing, language and autostart. Edits a draft; Save sends it to Rust,
//! which validates, saves the TOML and answers with what it kept.

import type { VNode } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { ApprovalResource } from '../bindings/ApprovalResource';
import { APPROVAL_RESOURCES, FEED_IDS } from '../bindings/constants';
import type { FeedId } from '../bindings/FeedId';
import type { FeedRule } from '../bindings/FeedRule';
import type { MinLevel } from '../bindings/MinLevel';
import type { Settings } from '../bindings/Settings';
import {
  at,
  CheckField,
  ChoiceField,
  FormContext,
  LinesField,
  NumberField,
  OptionalTextField,
  TextField,
  type FormCtx,
  type Lens,
} from '../components/fields';
import { useApp } from '../context';
import { errorText } from '../ipc';
import type { MessageKey } from '../i18n';
import { validateSettings, type FieldErrors } from '../settingsForm';

const DEFAULT_RULE: FeedRule = { enabled: true, notify: true, minLevel: 'info', sound: true };

type Status = { kind: 'idle' } | { kind: 'saving' } | { kind: 'saved' } | { kind: 'error'; text: string };

function SourceFieldset({ draft, t }: FormCtx): VNode {
  const gateway = draft.source.kind === 'gateway';
  return (
    <fieldset>
      <legend>{t('set.source')}</legend>
      <div class="row">
        <ChoiceField
          name="kind"
          label={t('set.kind')}
          at={at('source', 'kind')}
          options={['gateway', 'redis'] as const}
          labels={(k) => t(`set.kind.${k}`)}
        />
        <TextField
          name="url"
          label={t('set.url')}
          at={at('source', 'url')}
          class="mono wide"
          placeholder={gateway ? 'wss://erp.example.com/ws' : 'redis://127.0.0.1:6379'}
        />
      </div>
      <div class="row">
        {gateway ? (
          <OptionalTextField
            secret
            name="token"
            label={t('set.token')}
            hint={t('set.tokenHint')}
            at={at('source', 'token')}
            class="mono wide"
          />
        ) : null}
        {gateway ? (
          <OptionalTextField
            name="tokenFile"
            label={t('set.tokenFile')}
            hint={t('set.tokenFileHint')}
            at={at('source', 'tokenFile')}
            class="mono wide"
            placeholder="/run/user/1000/erp-token"
          />
        ) : null}
        <OptionalTextField name="userId" label={t('set.user')} at={at('source', 'userId')} />
      </div>
    </fieldset>
  );
}

function GeneralFieldset({ t }: FormCtx): VNode {
  return (
    <fieldset>
      <legend>{t('set.general')}</legend>
      <div class="row">
        <ChoiceField
          name="profile"
          label={t('set.profile')}
          at={at('profile')}
          options={['warehouse', 'approver', 'ops'] as const}
          labels={(p) => t(`set.profile.${p}`)}
        />
        <ChoiceField
          name="language"
          label={t('set.language')}
          at={at('language')}
          options={['auto', 'zh-CN', 'en'] as const}
          labels={(l) => t(`lang.${l}`)}
        />
        <NumberField
          name="lowStockThreshold"
          label={t('set.lowStock')}
          at={at('lowStockThreshold')}
          min={0}
          step="any"
        />
      </div>
      <div class="row">
        <TextField
          name="erpBaseUrl"
          label={t('set.erpBase')}
          at={at('erpBaseUrl')}
          class="mono wide"
          placeholder="https://erp.example.com"
        />
        <LinesField
          name="trustedHosts"
          label={t('set.trustedHosts')}
          hint={t('set.trustedHostsHint')}
          at={at('trustedHosts')}
          placeholder={'wiki.example.com\nerp.example.com:8443'}
        />
        <CheckField title={t('set.autostart')} label={t('set.autostart')} at={at('autostart')} />
      </div>
    </fieldset>
  );
}

/** Per feed: shown at all, notified, and from which level. */
function RulesFieldset({ draft, change, t }: FormCtx): VNode {
  const rule = (feed: FeedId): FeedRule => draft.feeds[feed] ?? DEFAULT_RULE;
  const setRule = (feed: FeedId, edit: Partial<FeedRule>): void =>
    change((s) => ({ ...s, feeds: { ...s.feeds, [feed]: { ...rule(feed), ...edit } } }));
  const checked = (ev: Event): boolean => (ev.target as HTMLInputElement).checked;
  return (
    <fieldset>
      <legend>{t('set.rules')}</legend>
      <table class="rules">
        <thead>
          <tr>
            <th scope="col">{t('set.feed')}</th>
            <th scope="col">{t('set.enabled')}</th>
            <th scope="col">{t('set.notify')}</th>
            <th scope="col">{t('set.minLevel')}</th>
            <th scope="col">{t('set.sound')}</th>
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
                    onChange={(ev) => setRule(feed, { enabled: checked(ev) })}
                  />
                </td>
                <td>
                  <input
                    type="checkbox"
                    aria-label={`${name} · ${t('set.notify')}`}
                    checked={r.notify}
                    disabled={!r.enabled}
                    onChange={(ev) => setRule(feed, { notify: checked(ev) })}
                  />
                </td>
                <td>
                  <select
                    class="input"
                    aria-label={`${name} · ${t('set.minLevel')}`}
                    value={r.minLevel}
                    disabled={!r.enabled || !r.notify}
                    onChange={(ev) => setRule(feed, { minLevel: (ev.target as HTMLSelectElement).value as MinLevel })}
                  >
                    {(['info', 'warning', 'critical'] as const).map((l) => (
                      <option key={l} value={l}>
                        {t(`set.minLevel.${l}`)}
                      </option>
                    ))}
                  </select>
                </td>
                <td>
                  <input
                    type="checkbox"
                    aria-label={`${name} · ${t('set.sound')}`}
                    checked={r.sound}
                    disabled={!r.enabled || !r.notify}
                    onChange={(ev) => setRule(feed, { sound: checked(ev) })}
                  />
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </fieldset>
  );
}

function QuietFieldset({ t }: FormCtx): VNode {
  return (
    <fieldset>
      <legend>{t('set.quiet')}</legend>
      <CheckField label={t('set.quietEnabled')} at={at('quietHours', 'enabled')} />
      <div class="row">
        <TextField name="quietStart" label={t('set.quietFrom')} at={at('quietHours', 'start')} placeholder="22:00" />
        <TextField name="quietEnd" label={t('set.quietTo')} at={at('quietHours', 'end')} placeholder="07:00" />
      </div>
    </fieldset>
  );
}

/** Where an approval request's "Open" button leads, per resource type. */
function ApprovalPagesFieldset({ t }: FormCtx): VNode {
  return (
    <fieldset>
      <legend>{t('set.approvalPages')}</legend>
      <p class="hint muted small">{t('set.approvalPagesHint')}</p>
      <div class="row">
        {APPROVAL_RESOURCES.map((kind) => (
          <TextField
            key={kind}
            name={`approvalUrl.${kind}`}
            label={t(`apr.resource.${kind}`)}
            at={approvalPageAt(kind)}
            class="mono"
            placeholder="/approvals/{resourceId}"
          />
        ))}
      </div>
    </fieldset>
  );
}

/** One resource type's page; emptied, the type has no "Open" button. */
function approvalPageAt(kind: ApprovalResource): Lens<string> {
  return {
    get: (s) => s.approvalUrls[kind] ?? '',
    set: (s, page) => {
      const { [kind]: _old, ...others } = s.approvalUrls;
      return { ...s, approvalUrls: page === '' ? others : { ...others, [kind]: page } };
    },
  };
}

function CoalesceFieldset({ t }: FormCtx): VNode {
  return (
    <fieldset>
      <legend>{t('set.coalesce')}</legend>
      <div class="row">
        <NumberField name="coalesceCount" label={t('set.coalesceCount')} at={at('coalesceCount')} min={1} step="1" />
        <NumberField
          name="coalesceWindowSecs"
          label={t('set.coalesceWindow')}
          at={at('coalesceWindowSecs')}
          min={1}
          step="1"
        />
      </div>
    </fieldset>
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

  const change = (edit: (s: Settings) => Settings): void => {
    setDraft((d) => {
      const next = edit(d);
      if (Object.keys(errors).length) setErrors(validateSettings(next));
      return next;
    });
    setStatus({ kind: 'idle' });
  };
  const form: FormCtx = { draft, errors, change, t };

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
      setStatus({ kind: 'error', text: errorText(error, t) });
    }
  };

  return (
    <section class="screen settings">
      <header class="screen-head">
        <h1>{t('set.title')}</h1>
      </header>
      <FormContext.Provider value={form}>
        <form class="settings-form" onSubmit={save} noValidate>
          <SourceFieldset {...form} />
          <GeneralFieldset {...form} />
          <RulesFieldset {...form} />
          <QuietFieldset {...form} />
          <CoalesceFieldset {...form} />
          <ApprovalPagesFieldset {...form} />

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
                  .catch((e: unknown) => setTestNote(t('common.error', { error: errorText(e, t) })))
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
      </FormContext.Provider>
    </section>
  );
}
