//! Which approval requests are still waiting for a decision.
//!
//! A request is pending from its `approval:request` until an
//! `approval:approved` or `approval:rejected` for the same
//! `resourceType` + `resourceId` arrives (arrival order, i.e. `seq`). A
//! resource submitted again after a decision is pending again. The set is kept
//! apart from the capped approvals feed so that a flood of other approval
//! traffic never pushes an undecided request out of sight; it has its own,
//! much larger cap (oldest dropped first, which only happens past thousands of
//! open requests).

import type { FeedItem } from '../bindings/FeedItem';

export const PENDING_CAP = 5000;

export type ApprovalEvent = Extract<
  FeedItem['event'],
  { type: 'approval:request' | 'approval:approved' | 'approval:rejected' }
>;

export function isApproval(event: FeedItem['event']): event is ApprovalEvent {
  return event.type === 'approval:request' || event.type === 'approval:approved' || event.type === 'approval:rejected';
}

/** The key that pairs a result with its request. */
export function approvalKey(event: ApprovalEvent): string {
  return `${event.resourceType}\u0000${event.resourceId}`;
}

/**
 * Folds `items` (in arrival order) into `pending` and returns the new map, or
 * the same map when nothing about approvals changed. Insertion order is the
 * order requests arrived, oldest first.
 */
export function foldPending(
  pending: ReadonlyMap<string, FeedItem>,
  items: readonly FeedItem[],
): ReadonlyMap<string, FeedItem> {
  let next: Map<string, FeedItem> | null = null;
  for (const item of items) {
    const event = item.event;
    if (!isApproval(event)) continue;
    next ??= new Map(pending);
    const key = approvalKey(event);
    if (event.type === 'approval:request') {
      // Re-insert so a resubmitted request moves to the newest position.
      next.delete(key);
      next.set(key, item);
      if (next.size > PENDING_CAP) {
        const oldest = next.keys().next().value;
        if (oldest !== undefined) next.delete(oldest);
      }
    } else {
      next.delete(key);
    }
  }
  return next ?? pending;
}

/** Whether the current user asked for it or decides on it. */
export function isMine(event: ApprovalEvent, userId: string | null): boolean {
  if (!userId) return false;
  return event.requesterId === userId || event.approverId === userId;
}
