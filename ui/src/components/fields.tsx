//! Form fields bound to one setting: each is given where its value lives in
//! `Settings` (a lens) and a name, and does the rest — the label, the id
//! (`f-NAME`, which the tests and the error text use), reading and writing
//! the draft, and the error and its ARIA links. A setting is one line.

import { createContext, type ComponentChildren, type VNode } from 'preact';
import { useContext } from 'preact/hooks';
import type { Settings } from '../bindings/Settings';
import type { Translator } from '../i18n';
import type { Field, FieldErrors } from '../settingsForm';

/** Where a value lives in `Settings`: how to read it and how to replace it. */
export interface Lens<T> {
  get: (s: Settings) => T;
  set: (s: Settings, value: T) => Settings;
}

export function at<K extends keyof Settings>(key: K): Lens<Settings[K]>;
export function at<K extends keyof Settings, J extends keyof Settings[K]>(key: K, inner: J): Lens<Settings[K][J]>;
export function at(key: keyof Settings, inner?: string): Lens<unknown> {
  if (inner === undefined) return { get: (s) => s[key], set: (s, v) => ({ ...s, [key]: v }) };
  const outer = (s: Settings): Record<string, unknown> => s[key] as unknown as Record<string, unknown>;
  return {
    get: (s) => outer(s)[inner],
    set: (s, v) => ({ ...s, [key]: { ...outer(s), [inner]: v } }),
  };
}

/** What every field needs from the form: the draft, its errors, a way to change it. */
export interface FormCtx {
  draft: Settings;
  errors: FieldErrors;
  change: (edit: (s: Settings) => Settings) => void;
  t: Translator;
}

export const FormContext = createContext<FormCtx | null>(null);

function useForm(): FormCtx {
  const ctx = useContext(FormContext);
  if (!ctx) throw new Error('a settings field is used outside its form');
  return ctx;
}

interface Common<T> {
  /** `f-NAME` is the id; a `Field` name also picks up that field's error. */
  name: Field | string;
  label: string;
  at: Lens<T>;
  hint?: string;
  class?: string;
  placeholder?: string;
}

function errorOf(ctx: FormCtx, name: string): string | undefined {
  const key = ctx.errors[name as Field];
  return key ? ctx.t(key) : undefined;
}

function ariaOf(ctx: FormCtx, name: string): Record<string, unknown> {
  return ctx.errors[name as Field] ? { 'aria-invalid': true, 'aria-describedby': `f-${name}-error` } : {};
}

/** The label, the control, a hint and the error under it. */
export function FieldRow({
  id,
  label,
  error,
  hint,
  children,
}: {
  id: string;
  label: string;
  error?: string | undefined;
  hint?: string | undefined;
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

const inputText = (ev: Event): string => (ev.target as HTMLInputElement).value;

/** A one-line text setting; `secret` hides what is typed. */
export function TextField(props: Common<string> & { secret?: boolean }): VNode {
  const ctx = useForm();
  const id = `f-${props.name}`;
  return (
    <FieldRow id={id} label={props.label} error={errorOf(ctx, props.name)} hint={props.hint}>
      <input
        id={id}
        class={`input ${props.class ?? 'mono'}`}
        {...(props.secret ? { type: 'password', autoComplete: 'off' } : {})}
        value={props.at.get(ctx.draft)}
        placeholder={props.placeholder}
        {...ariaOf(ctx, props.name)}
        onInput={(ev) => ctx.change((s) => props.at.set(s, inputText(ev)))}
      />
    </FieldRow>
  );
}

/** A text setting that may be absent (`undefined` shows as empty). */
export function OptionalTextField(props: Common<string | undefined> & { secret?: boolean }): VNode {
  const { at: lens, ...rest } = props;
  return <TextField {...rest} at={{ get: (s) => lens.get(s) ?? '', set: lens.set }} />;
}

/** A list of strings, one per line. */
export function LinesField(props: Common<string[]>): VNode {
  const ctx = useForm();
  const id = `f-${props.name}`;
  return (
    <FieldRow id={id} label={props.label} error={errorOf(ctx, props.name)} hint={props.hint}>
      <textarea
        id={id}
        class={`input ${props.class ?? 'mono wide'}`}
        rows={2}
        value={props.at.get(ctx.draft).join('\n')}
        placeholder={props.placeholder}
        onInput={(ev) => ctx.change((s) => props.at.set(s, inputText(ev).split('\n')))}
      />
    </FieldRow>
  );
}

/** A number; an empty box is NaN, which validation reports. */
export function NumberField(props: Common<number> & { min: number; step: string }): VNode {
  const ctx = useForm();
  const id = `f-${props.name}`;
  const value = props.at.get(ctx.draft);
  return (
    <FieldRow id={id} label={props.label} error={errorOf(ctx, props.name)} hint={props.hint}>
      <input
        id={id}
        class="input num"
        type="number"
        min={String(props.min)}
        step={props.step}
        value={Number.isNaN(value) ? '' : value}
        {...ariaOf(ctx, props.name)}
        onInput={(ev) => {
          const raw = inputText(ev).trim();
          ctx.change((s) => props.at.set(s, raw === '' ? Number.NaN : Number(raw)));
        }}
      />
    </FieldRow>
  );
}

/** One of a few values; each option's text is `LABELS.value`. */
export function ChoiceField<T extends string>(
  props: Common<T> & { options: readonly T[]; labels: (value: T) => string },
): VNode {
  const ctx = useForm();
  const id = `f-${props.name}`;
  return (
    <FieldRow id={id} label={props.label} error={errorOf(ctx, props.name)} hint={props.hint}>
      <select
        id={id}
        class="input"
        value={props.at.get(ctx.draft)}
        onChange={(ev) => ctx.change((s) => props.at.set(s, inputText(ev) as T))}
      >
        {props.options.map((o) => (
          <option key={o} value={o}>
            {props.labels(o)}
          </option>
        ))}
      </select>
    </FieldRow>
  );
}

/** An on/off setting: a checkbox with its text beside it. */
export function CheckField(props: Omit<Common<boolean>, 'name'> & { title?: string }): VNode {
  const ctx = useForm();
  const box = (
    <label class="check">
      <input
        type="checkbox"
        checked={props.at.get(ctx.draft)}
        onChange={(ev) => {
          const on = (ev.target as HTMLInputElement).checked;
          ctx.change((s) => props.at.set(s, on));
        }}
      />
      {props.label}
    </label>
  );
  if (props.title === undefined) return box;
  return (
    <div class="field">
      <span class="label">{props.title}</span>
      {box}
    </div>
  );
}
