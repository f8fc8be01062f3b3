//! One line of plain text saying what an event is about, for the overview's
//! "latest events" and anywhere a whole row does not fit. Text only: callers
//! render it as a text node.

import type { FeedItem } from './bindings/FeedItem';
import { formatChange, formatMoney, formatNumber } from './format';
import type { Translator } from './i18n';

export function summarize(item: FeedItem, t: Translator): string {
  const e = item.event;
  const loc = t.locale;
  switch (e.type) {
    case 'inventory:change':
      return `${e.productName ?? e.productId} ${formatChange(e.changeAmount, loc)} (${formatNumber(
        e.oldQuantity,
        loc,
      )} → ${formatNumber(e.newQuantity, loc)}) · ${t.maybe(`inv.action.${e.action}`, e.action)}`;
    case 'order:status':
      return `${e.orderNumber} ${orderStatus(e.oldStatus, t)} → ${orderStatus(e.newStatus, t)}${
        e.customerName ? ` · ${e.customerName}` : ''
      }`;
    case 'approval:request':
    case 'approval:approved':
    case 'approval:rejected':
      return `${t.maybe(`apr.type.${e.type}`, e.type)} · ${t.maybe(
        `apr.resource.${e.resourceType}`,
        e.resourceType,
      )} ${e.resourceNumber} · ${e.requesterName}`;
    case 'finance:payment':
    case 'finance:refund':
    case 'finance:overdue':
      return `${t.maybe(`fin.type.${e.type}`, e.type)} ${e.recordNumber} ${formatMoney(e.amount, loc)}${
        e.customerName || e.supplierName ? ` · ${e.customerName ?? e.supplierName}` : ''
      }`;
    case 'data:change':
      return `${t.maybe(`data.resource.${e.resource}`, e.resource)} ${
        e.resourceName ?? e.resourceId
      } · ${t.maybe(`data.action.${e.action}`, e.action)}`;
    case 'system:maintenance':
    case 'system:update':
    case 'system:alert':
      return `${t.maybe(`sys.type.${e.type}`, e.type)} · ${e.message}`;
    case 'broadcast':
      return e.title ? `${e.title} · ${e.message}` : e.message;
    case 'notification':
      return `${e.title} · ${e.message}`;
  }
}

/** An order status, translated when it is one the ERP commonly uses. */
export function orderStatus(status: string, t: Translator): string {
  return t.maybe(`ord.status.${status.toLowerCase()}`, status);
}
