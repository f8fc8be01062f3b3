// Event types and the client-side classifier.
//
// The types are re-exported from ./bindings, a byte-for-byte copy of
// ui/src/bindings (generated from the Rust contract by ts-rs, drift-checked
// by `cargo test -p tidings-desk --test bindings`; scripts/bindings.mjs
// copies them). The shapes below mirror crates/tidings-events/src/decode.rs
// so that the client classifies a payload as the Rust decoder does: the
// contract tests (test/contract.test.mjs) hold the two to each other.
import type { Event } from './bindings/Event';

export type { Event } from './bindings/Event';
export type { Notification } from './bindings/Notification';
export type { InventoryChange } from './bindings/InventoryChange';
export type { OrderStatus } from './bindings/OrderStatus';
export type { Approval } from './bindings/Approval';
export type { Finance } from './bindings/Finance';
export type { DataChange } from './bindings/DataChange';
export type { SystemNotice } from './bindings/SystemNotice';
export type { Broadcast } from './bindings/Broadcast';
export type { JsonValue } from './bindings/serde_json/JsonValue';

/** The value of an event's `type` field. */
export type EventType = Event['type'];

/** An object whose `type` is not one of the contract's: an older `publishWs` message. */
export type LegacyMessage = { [key: string]: unknown };

/**
 * One message as the hooks hand it over (`{ channel, data }`, as the seed's
 * `onMessage`). `typed` tells a contract event from a legacy one; malformed
 * payloads are never handed over.
 */
export type TidingsMessage =
  | { channel: string; data: Event; typed: true; position?: string }
  | { channel: string; data: LegacyMessage; typed: false; position?: string };

// Field specs: `name` (string), `name?` (optional), `:n` number, `:i`
// integer, `:o` object, `:a` array of strings, `=a|b` one of these strings.
const APPROVAL = 'resourceType=order|return|payment|refund|adjustment;resourceId;resourceNumber;requesterId;requesterName;approverId?;approverName?;reason?;comment?';
const FINANCE = 'action=created|confirmed|cancelled|overdue;recordType=payment|paymentOut|refund;recordId;recordNumber;amount:n;customerId?;customerName?;supplierId?;supplierName?';
const SYSTEM = 'level=info|warning|critical;message;affectedUsers?:a;scheduledTime?:i;estimatedDuration?:i';
const SHAPES: Record<string, string> = {
  notification: 'notificationType=info|success|warning|error;title;message;actionUrl?;actionLabel?',
  'inventory:change': 'action=adjust|inbound|outbound|reserve|release;productId;oldQuantity:n;newQuantity:n;changeAmount:n;productName?;variantId?;reason?;operator?',
  'order:status': 'orderType=sales|return|purchase;orderId;orderNumber;oldStatus;newStatus;customerId?;customerName?',
  'approval:request': APPROVAL,
  'approval:approved': APPROVAL,
  'approval:rejected': APPROVAL,
  'finance:payment': FINANCE,
  'finance:refund': FINANCE,
  'finance:overdue': FINANCE,
  'data:change': 'resource=product|customer|supplier|category|user;action=created|updated|deleted;resourceId;resourceName?;changes?:o',
  'system:maintenance': SYSTEM,
  'system:update': SYSTEM,
  'system:alert': SYSTEM,
  broadcast: 'message;level!=info|success|warning|error;title?',
};

const isObject = (value: unknown): value is { [key: string]: unknown } =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function fits(value: unknown, spec: string): boolean {
  if (spec[0] === '=') return typeof value === 'string' && spec.slice(1).split('|').includes(value);
  switch (spec) {
    case ':n':
      return typeof value === 'number' && Number.isFinite(value);
    case ':i':
      return Number.isSafeInteger(value);
    case ':o':
      return isObject(value);
    case ':a':
      return Array.isArray(value) && value.every((item) => typeof item === 'string');
    default:
      return typeof value === 'string';
  }
}

/**
 * What a payload is: `'typed'` (a contract event with every required field
 * well typed), `'legacy'` (an object with a `type` the contract does not
 * know) or `null` (malformed: never delivered).
 */
export function classify(data: unknown): 'typed' | 'legacy' | null {
  if (!isObject(data)) return null;
  const shape = typeof data.type === 'string' && Object.hasOwn(SHAPES, data.type) ? SHAPES[data.type] : undefined;
  if (shape === undefined) return 'legacy';
  for (const field of `${shape};timestamp:i;userId?`.split(';')) {
    const [, name = '', flag = '', spec = ''] = /^(\w+)([?!]?)(.*)$/.exec(field) ?? [];
    const value = data[name];
    // `?`: absent or null is fine (an Option); `!`: absent is fine (a default).
    if (value === undefined ? flag === '' : !(value === null && flag === '?') && !fits(value, spec)) return null;
  }
  return 'typed';
}

/** `data` as a message, or `null` when it is malformed. */
export function toMessage(channel: string, data: unknown, position?: string): TidingsMessage | null {
  const kind = classify(data);
  if (kind === null) return null;
  const message = { channel, data, typed: kind === 'typed' } as TidingsMessage;
  if (position !== undefined) message.position = position;
  return message;
}

/** Logical channel names (protocol.md §1). */
export const CHANNELS = {
  inventory: 'inventory',
  orders: 'orders',
  approvals: 'approvals',
  finance: 'finance',
  products: 'products',
  customers: 'customers',
  suppliers: 'suppliers',
  system: 'system',
  broadcast: 'broadcast',
  user: (userId: string) => `user:${userId}:notifications`,
} as const;
