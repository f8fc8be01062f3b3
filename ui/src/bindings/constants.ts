// Generated from crates/tidings-desk/src/ipc.rs by the bindings test; do not edit.
import type { ApprovalResource } from './ApprovalResource';
import type { FeedId } from './FeedId';
import type { Screen } from './Screen';

/** Every feed, in the order the dashboard lists them (`FeedId::ALL`). */
export const FEED_IDS = ["inventory", "orders", "approvals", "finance", "system", "data", "broadcast", "mine"] as const satisfies readonly FeedId[];

/** Every screen, in navigation order (`Screen::ALL`). */
export const SCREENS = ["overview", "inventory", "orders", "approvals", "finance", "system", "data", "broadcast", "mine", "search", "debug", "settings"] as const satisfies readonly Screen[];

/** Newest items per feed the window keeps in memory (`WINDOW_FEED_CAP`). */
export const WINDOW_FEED_CAP = 2000;

/** Every approval `resourceType` (`ApprovalResource::ALL`). */
export const APPROVAL_RESOURCES = ["order", "return", "payment", "refund", "adjustment"] as const satisfies readonly ApprovalResource[];
