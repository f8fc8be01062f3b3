//! Checks on the settings form before it is sent. Rust validates again and
//! may still refuse (its message is shown as it comes); these checks only
//! point at the field early, in the user's language.

import type { ApprovalResource } from './bindings/ApprovalResource';
import { APPROVAL_RESOURCES } from './bindings/constants';
import type { Settings } from './bindings/Settings';
import type { MessageKey } from './i18n';

export type Field =
  | 'url'
  | 'tokenFile'
  | 'userId'
  | 'quietStart'
  | 'quietEnd'
  | 'lowStockThreshold'
  | 'coalesceCount'
  | 'coalesceWindowSecs'
  | 'erpBaseUrl'
  | `approvalUrl.${ApprovalResource}`;

export type FieldErrors = Partial<Record<Field, MessageKey>>;

const USER_ID = /^[A-Za-z0-9._@-]{1,128}$/;
const HHMM = /^([01]\d|2[0-3]):[0-5]\d$/;

export function validateSettings(s: Settings): FieldErrors {
  const errors: FieldErrors = {};
  const url = s.source.url.trim();
  if (s.source.kind === 'gateway' && !/^wss?:\/\/[^\s/]+/i.test(url)) errors.url = 'set.err.gatewayUrl';
  if (s.source.kind === 'redis' && !/^(rediss?(\+sentinel|\+cluster)?|redis\+unix):\/\/[^\s]+/i.test(url))
    errors.url = 'set.err.redisUrl';
  const tokenFile = (s.source.tokenFile ?? '').trim();
  if (s.source.kind === 'gateway' && tokenFile !== '' && !/^(\/|[A-Za-z]:[\\/]|\\\\)/.test(tokenFile))
    errors.tokenFile = 'set.err.tokenFile';
  const user = (s.source.userId ?? '').trim();
  if (s.source.kind === 'redis' && user === '') errors.userId = 'set.err.userRequired';
  else if (user !== '' && !USER_ID.test(user)) errors.userId = 'set.err.userId';
  if (s.quietHours.enabled || s.quietHours.start !== '') {
    if (!HHMM.test(s.quietHours.start)) errors.quietStart = 'set.err.time';
  }
  if (s.quietHours.enabled || s.quietHours.end !== '') {
    if (!HHMM.test(s.quietHours.end)) errors.quietEnd = 'set.err.time';
  }
  if (!Number.isFinite(s.lowStockThreshold) || s.lowStockThreshold < 0) errors.lowStockThreshold = 'set.err.number';
  if (!Number.isInteger(s.coalesceCount) || s.coalesceCount < 1) errors.coalesceCount = 'set.err.positive';
  if (!Number.isInteger(s.coalesceWindowSecs) || s.coalesceWindowSecs < 1)
    errors.coalesceWindowSecs = 'set.err.positive';
  const base = s.erpBaseUrl.trim();
  if (base !== '' && !/^https?:\/\/[^\s/]+/i.test(base)) errors.erpBaseUrl = 'set.err.erpBase';
  for (const kind of APPROVAL_RESOURCES) {
    const page = (s.approvalUrls[kind] ?? '').trim();
    if (page !== '' && !/^(\/[^/\\]|\/$|https?:\/\/[^\s/]+)/i.test(page)) {
      errors[`approvalUrl.${kind}`] = 'set.err.approvalUrl';
    }
  }
  return errors;
}
