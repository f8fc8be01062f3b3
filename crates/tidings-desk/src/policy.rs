//! The notification policy: which events become desktop notifications, how
//! urgent, and when several become one summary. Pure: the pipeline gives it
//! an item, the settings and the time, and it answers; nothing here touches
//! the desktop.
//!
//! Order of the checks for one item: its feed's rule (shown at all, notifies
//! at all, level at least `min_level`), then quiet hours and "pause" (both let
//! critical through), then burst coalescing (more than `coalesce_count` from
//! one feed within `coalesce_window_secs` → one summary notification that
//! replaces itself, e.g. "12 inventory changes").

use std::collections::{HashMap, VecDeque};

use tidings_events::Event;
use tidings_events::event::{BroadcastLevel, DataAction, NotificationType, SystemLevel};

use crate::config::parse_hhmm;
use crate::ipc::{ActionLink, FeedId, FeedItem, MinLevel, Profile, Settings, Urgency};
use crate::links::{LinkError, host_of, resolve_link};
use crate::notify::{ActionKind, ClickTarget, NotificationAction, NotificationRequest};
use crate::text::{
    BODY_MAX_CHARS, clean_line, clean_lines, notification_body, notification_title, truncate,
};

/// Which feed an event belongs to.
pub fn feed_of(event: &Event) -> FeedId {
    match event {
        Event::Notification(_) => FeedId::Mine,
        Event::InventoryChange(_) => FeedId::Inventory,
        Event::OrderStatus(_) => FeedId::Orders,
        Event::ApprovalRequest(_) | Event::ApprovalApproved(_) | Event::ApprovalRejected(_) => {
            FeedId::Approvals
        }
        Event::FinancePayment(_) | Event::FinanceRefund(_) | Event::FinanceOverdue(_) => {
            FeedId::Finance
        }
        Event::DataChange(_) => FeedId::Data,
        Event::SystemMaintenance(_) | Event::SystemUpdate(_) | Event::SystemAlert(_) => {
            FeedId::System
        }
        Event::Broadcast(_) => FeedId::Broadcast,
    }
}

/// What a notification for one item would be, before the rules.
#[derive(Debug, Clone, PartialEq)]
struct Candidate {
    level: MinLevel,
    urgency: Urgency,
    resident: bool,
    title: String,
    body: String,
}

/// Whether texts are in Chinese.
fn chinese(settings: &Settings) -> bool {
    match settings.language {
        crate::ipc::Language::ZhCn => true,
        crate::ipc::Language::En => false,
        crate::ipc::Language::Auto => std::env::var("LANG")
            .or_else(|_| std::env::var("LC_ALL"))
            .is_ok_and(|lang| lang.starts_with("zh")),
    }
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value}")
    }
}

/// The notification an item deserves by default, if any.
fn candidate(item: &FeedItem, settings: &Settings) -> Option<Candidate> {
    let zh = chinese(settings);
    let t = |zh_text: &str, en_text: &str| if zh { zh_text.to_owned() } else { en_text.to_owned() };
    let normal = |level, title: String, body: String| Candidate {
        level,
        urgency: match level {
            MinLevel::Critical => Urgency::Critical,
            MinLevel::Warning => Urgency::Normal,
            MinLevel::Info => Urgency::Low,
        },
        resident: false,
        title,
        body,
    };
    Some(match &item.event {
        Event::Notification(n) => {
            let level = match n.notification_type {
                NotificationType::Error => MinLevel::Critical,
                NotificationType::Warning => MinLevel::Warning,
                NotificationType::Info | NotificationType::Success => MinLevel::Info,
            };
            // Where its link goes, so the user can judge before clicking.
            // The host line survives the body's length cap.
            let body = match action_link_of(item, settings) {
                Some(Ok(url)) => {
                    let host = format!("\n↗ {}", host_of(&url));
                    let room = BODY_MAX_CHARS.saturating_sub(host.chars().count());
                    format!("{}{host}", truncate(clean_lines(&n.message).trim(), room))
                }
                _ => n.message.clone(),
            };
            let mut candidate = normal(level, n.title.clone(), body);
            if level == MinLevel::Info {
                candidate.urgency = Urgency::Normal;
            }
            candidate
        }
        Event::ApprovalRequest(a) => Candidate {
            level: MinLevel::Critical,
            urgency: Urgency::Critical,
            // Approvers must not miss one: it stays until dismissed.
            resident: settings.profile == Profile::Approver,
            title: t("待审批", "Approval requested"),
            body: format!("{} · {}", a.resource_number, a.requester_name),
        },
        // The requester is told on their own channel (a `notification`);
        // the approvals feed itself only records the decision.
        Event::ApprovalApproved(_) | Event::ApprovalRejected(_) => return None,
        Event::InventoryChange(c) => {
            if c.new_quantity >= settings.low_stock_threshold {
                normal(
                    MinLevel::Info,
                    t("库存变动", "Stock changed"),
                    format!(
                        "{} {} → {}",
                        c.product_name.as_deref().unwrap_or(&c.product_id),
                        number(c.old_quantity),
                        number(c.new_quantity)
                    ),
                )
            } else {
                normal(
                    MinLevel::Warning,
                    t("库存不足", "Low stock"),
                    format!(
                        "{}: {}",
                        c.product_name.as_deref().unwrap_or(&c.product_id),
                        number(c.new_quantity)
                    ),
                )
            }
        }
        Event::OrderStatus(o) => normal(
            MinLevel::Info,
            t("订单状态", "Order status"),
            format!("{} {} → {}", o.order_number, o.old_status, o.new_status),
        ),
        Event::FinanceOverdue(f) => normal(
            MinLevel::Warning,
            t("逾期提醒", "Overdue"),
            format!(
                "{} ¥{:.2} {}",
                f.record_number,
                f.amount,
                f.customer_name.as_deref().or(f.supplier_name.as_deref()).unwrap_or("")
            ),
        ),
        Event::FinancePayment(f) | Event::FinanceRefund(f) => normal(
            MinLevel::Info,
            t("财务", "Finance"),
            format!("{} ¥{:.2}", f.record_number, f.amount),
        ),
        // A deletion cannot be undone from the feed: worth a warning (ops
        // hears of deleted records and user accounts, not every edit).
        Event::DataChange(d) => normal(
            if d.action == DataAction::Deleted { MinLevel::Warning } else { MinLevel::Info },
            t("数据变更", "Data changed"),
            format!(
                "{:?} {} {:?}",
                d.resource,
                d.resource_name.as_deref().unwrap_or(&d.resource_id),
                d.action
            )
            .to_lowercase(),
        ),
        Event::SystemMaintenance(s) | Event::SystemUpdate(s) | Event::SystemAlert(s) => {
            let level = match s.level {
                SystemLevel::Critical => MinLevel::Critical,
                SystemLevel::Warning => MinLevel::Warning,
                SystemLevel::Info => MinLevel::Info,
            };
            normal(level, t("系统通知", "System"), s.message.clone())
        }
        Event::Broadcast(b) => {
            let level = match b.level {
                BroadcastLevel::Error => MinLevel::Critical,
                BroadcastLevel::Warning => MinLevel::Warning,
                BroadcastLevel::Info | BroadcastLevel::Success => MinLevel::Info,
            };
            normal(
                level,
                b.title.clone().unwrap_or_else(|| t("公告", "Broadcast")),
                b.message.clone(),
            )
        }
    })
}

/// Whether `minute` (after local midnight) falls in quiet hours
/// `[start, end)`, which may wrap past midnight.
pub fn in_quiet_hours(settings: &Settings, minute: u32) -> bool {
    let quiet = &settings.quiet_hours;
    let (Some(start), Some(end)) = (parse_hhmm(&quiet.start), parse_hhmm(&quiet.end)) else {
        return false;
    };
    quiet.enabled
        && if start <= end {
            (start..end).contains(&minute)
        } else {
            minute >= start || minute < end
        }
}

/// During a burst, the summary on screen is refreshed at most this often
/// (milliseconds): at thousands of events a second, one D-Bus call per
/// event would swamp the notification daemon. A count that grew since the
/// last refresh is shown by [`Policy::due`], so the last one is never lost.
pub const SUMMARY_REFRESH_MS: i64 = 1000;

/// At most this many notification times are remembered per feed for
/// coalescing; beyond it the oldest are forgotten (a summary then shows
/// this many, not more).
const BURST_MEMORY: usize = 100_000;

/// The policy's memory: recent notifications per feed, for coalescing.
#[derive(Debug, Default)]
pub struct Policy {
    bursts: HashMap<FeedId, Burst>,
}

/// One feed's recent notifications and, while they come in a burst, its
/// summary.
#[derive(Debug, Default)]
struct Burst {
    /// When each recent notification was decided, oldest first, within the
    /// coalescing window.
    recent: VecDeque<i64>,
    summary: Option<Summary>,
}

/// The summary notification of a burst.
#[derive(Debug)]
struct Summary {
    /// When it was last sent to the desktop.
    shown_at: i64,
    /// A newer count than the one shown, waiting for the next refresh.
    waiting: Option<usize>,
    target: Option<ClickTarget>,
}

/// What the current moment looks like to the policy.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// Milliseconds since the Unix epoch.
    pub millis: i64,
    /// Minutes after local midnight.
    pub local_minute: u32,
    /// Notifications paused until (ms), if paused.
    pub paused_until: Option<i64>,
}

impl Policy {
    /// The notification for `item`, or `None`.
    pub fn decide(
        &mut self,
        item: &FeedItem,
        settings: &Settings,
        now: Now,
    ) -> Option<NotificationRequest> {
        let rule = settings.feeds.get(&item.feed)?;
        if !rule.enabled || !rule.notify {
            return None;
        }
        let candidate = candidate(item, settings)?;
        if candidate.level < rule.min_level {
            return None;
        }
        let critical = candidate.urgency == Urgency::Critical;
        if !critical {
            if in_quiet_hours(settings, now.local_minute) {
                return None;
            }
            if now.paused_until.is_some_and(|until| now.millis < until) {
                return None;
            }
        }
        let target = Some(ClickTarget {
            feed: item.feed,
            item_id: item.id.clone(),
            open_url: action_url_of(item, settings),
        });
        // Critical ones are never folded into a summary.
        if !critical && settings.coalesce_count > 0 {
            let window = i64::from(settings.coalesce_window_secs.max(1)) * 1000;
            let burst = self.bursts.entry(item.feed).or_default();
            while burst.recent.front().is_some_and(|at| now.millis - at > window) {
                burst.recent.pop_front();
            }
            if burst.recent.len() >= BURST_MEMORY {
                burst.recent.pop_front();
            }
            burst.recent.push_back(now.millis);
            let count = burst.recent.len();
            if count > settings.coalesce_count as usize {
                let target = target.map(|t| ClickTarget { open_url: None, ..t });
                let summary = burst.summary.get_or_insert(Summary {
                    shown_at: i64::MIN,
                    waiting: None,
                    target: None,
                });
                summary.target = target.clone();
                if now.millis.saturating_sub(summary.shown_at) >= SUMMARY_REFRESH_MS {
                    summary.shown_at = now.millis;
                    summary.waiting = None;
                    return Some(summary_request(item.feed, count, settings, target));
                }
                summary.waiting = Some(count);
                return None;
            }
        }
        let actions = actions_for(item, settings, target.as_ref());
        let sound = if rule.sound { sound_for(item, candidate.urgency) } else { None };
        Some(NotificationRequest {
            key: notification_key(item),
            title: notification_title(&candidate.title),
            body: notification_body(&candidate.body),
            urgency: candidate.urgency,
            resident: candidate.resident,
            target,
            actions,
            default_label: default_label(settings),
            sound,
        })
    }

    /// Summaries whose count grew since they were last shown and whose
    /// refresh interval has passed; call it regularly (the pipeline does on
    /// every flush). Bursts that are over are forgotten.
    pub fn due(&mut self, settings: &Settings, now_millis: i64) -> Vec<NotificationRequest> {
        let window = i64::from(settings.coalesce_window_secs.max(1)) * 1000;
        let mut requests = Vec::new();
        for (feed, burst) in &mut self.bursts {
            if let Some(summary) = &mut burst.summary
                && let Some(count) = summary.waiting
                && now_millis.saturating_sub(summary.shown_at) >= SUMMARY_REFRESH_MS
            {
                summary.shown_at = now_millis;
                summary.waiting = None;
                requests.push(summary_request(*feed, count, settings, summary.target.clone()));
            }
            while burst.recent.front().is_some_and(|at| now_millis - at > window) {
                burst.recent.pop_front();
            }
            if burst.recent.is_empty() {
                burst.summary = None;
            }
        }
        self.bursts.retain(|_, burst| !burst.recent.is_empty());
        requests
    }
}

fn summary_request(
    feed: FeedId,
    count: usize,
    settings: &Settings,
    target: Option<ClickTarget>,
) -> NotificationRequest {
    let zh = chinese(settings);
    let (zh_name, en_name) = match feed {
        FeedId::Inventory => ("条库存变动", "inventory changes"),
        FeedId::Orders => ("条订单更新", "order updates"),
        FeedId::Approvals => ("条审批", "approvals"),
        FeedId::Finance => ("条财务事件", "finance events"),
        FeedId::System => ("条系统通知", "system notices"),
        FeedId::Data => ("条数据变更", "data changes"),
        FeedId::Broadcast => ("条公告", "broadcasts"),
        FeedId::Mine => ("条我的通知", "notifications"),
    };
    let window = settings.coalesce_window_secs.max(1);
    let (title, body) = if zh {
        (format!("{count} {zh_name}"), format!("最近 {window} 秒内"))
    } else {
        (format!("{count} {en_name}"), format!("in the last {window} s"))
    };
    NotificationRequest {
        // The same key replaces the previous summary instead of stacking.
        key: format!("summary:{feed:?}"),
        title,
        body,
        urgency: Urgency::Low,
        resident: false,
        target,
        actions: Vec::new(),
        default_label: default_label(settings),
        sound: None,
    }
}

/// The summary critical notifications of `feed` fold into past the bounds
/// on screen (`crate::routing`): critical and resident, says how many are
/// pending, and a click opens the feed's screen (focusing `target`).
pub fn pending_summary(
    key: String,
    feed: FeedId,
    count: usize,
    settings: &Settings,
    target: ClickTarget,
) -> NotificationRequest {
    let (zh_name, en_one, en_many) = match feed {
        FeedId::Approvals => {
            ("条审批请求待处理", "approval request pending", "approval requests pending")
        }
        FeedId::System => ("条紧急系统通知", "critical system notice", "critical system notices"),
        FeedId::Mine => ("条紧急通知", "urgent notification", "urgent notifications"),
        FeedId::Broadcast => ("条紧急公告", "urgent broadcast", "urgent broadcasts"),
        FeedId::Inventory => {
            ("条紧急库存变动", "urgent inventory change", "urgent inventory changes")
        }
        FeedId::Orders => ("条紧急订单更新", "urgent order update", "urgent order updates"),
        FeedId::Finance => ("条紧急财务事件", "urgent finance event", "urgent finance events"),
        FeedId::Data => ("条紧急数据变更", "urgent data change", "urgent data changes"),
    };
    let (title, body) = if chinese(settings) {
        (format!("{count} {zh_name}"), "点击在 Tidings 中查看".to_owned())
    } else {
        let name = if count == 1 { en_one } else { en_many };
        (format!("{count} {name}"), "Click to see them in Tidings".to_owned())
    };
    NotificationRequest {
        key,
        title: notification_title(&title),
        body: notification_body(&body),
        urgency: Urgency::Critical,
        resident: true,
        target: Some(target),
        actions: Vec::new(),
        default_label: default_label(settings),
        // Updated in place as the count changes: silent, or it would ring
        // on every update.
        sound: None,
    }
}

/// The default action's label, in the language setting's language.
pub fn default_label(settings: &Settings) -> String {
    if chinese(settings) { "在 Tidings 中查看" } else { "Show in Tidings" }.to_owned()
}

/// Snooze choices offered on a notification: 15 minutes (the Approvals
/// screen offers 1 h and "tomorrow 9:00" as well).
pub const NOTIFICATION_SNOOZE_MINUTES: u32 = 15;

/// The buttons a notification about `item` offers besides the default
/// action: "Open" (labelled with the seed's `actionLabel`, cleaned, and the
/// destination host) when its link resolves by the rule in
/// [`crate::links`]; "Remind me in 15 min" on an approval request.
pub fn actions_for(
    item: &FeedItem,
    settings: &Settings,
    target: Option<&ClickTarget>,
) -> Vec<NotificationAction> {
    let zh = chinese(settings);
    let mut actions = Vec::new();
    if target.is_none() {
        return actions;
    }
    if let Some(Ok(url)) = action_link_of(item, settings) {
        let label = match &item.event {
            Event::Notification(n) => n.action_label.as_deref().map(clean_line),
            _ => None,
        }
        .filter(|label| !label.trim().is_empty())
        .unwrap_or_else(|| if zh { "打开".to_owned() } else { "Open".to_owned() });
        let label = truncate(label.trim(), ACTION_LABEL_MAX_CHARS);
        actions.push(NotificationAction {
            id: "open".into(),
            label: format!("{label} ↗ {}", host_of(&url)),
            kind: ActionKind::Open,
        });
    }
    if matches!(item.event, Event::ApprovalRequest(_)) {
        let minutes = NOTIFICATION_SNOOZE_MINUTES;
        actions.push(NotificationAction {
            id: format!("snooze-{minutes}"),
            label: if zh {
                format!("{minutes} 分钟后提醒")
            } else {
                format!("Remind me in {minutes} min")
            },
            kind: ActionKind::Snooze { minutes },
        });
    }
    actions
}

/// Characters of a button label (before the host is added).
pub const ACTION_LABEL_MAX_CHARS: usize = 24;

/// The freedesktop sound (`sound-name`) an item's notification plays:
/// approval requests `message-new-instant`, other critical notices
/// `dialog-warning`, nothing else.
pub fn sound_for(item: &FeedItem, urgency: Urgency) -> Option<String> {
    match (&item.event, urgency) {
        (Event::ApprovalRequest(_), _) => Some("message-new-instant".into()),
        (_, Urgency::Critical) => Some("dialog-warning".into()),
        _ => None,
    }
}

/// Where an item's `actionUrl` leads (`None` when it has none), by the one
/// rule in [`crate::links`].
pub fn action_link_of(item: &FeedItem, settings: &Settings) -> Option<Result<url::Url, LinkError>> {
    let raw = match &item.event {
        Event::Notification(notification) => notification.action_url.clone()?,
        Event::ApprovalRequest(a) => approval_url(a, settings)?,
        _ => return None,
    };
    Some(resolve_link(&raw, &settings.erp_base_url, &settings.trusted_hosts))
}

/// An approval request's ERP page, from the template for its resource type
/// in `approvalUrls` (`order` → `/approvals/{resourceId}`); `None` when
/// there is no template for it. The id is percent-encoded, so it cannot add
/// path segments, a query or another host; the result still goes through
/// [`resolve_link`].
fn approval_url(approval: &tidings_events::event::Approval, settings: &Settings) -> Option<String> {
    let kind = approval.resource_type.as_str();
    let template = settings.approval_urls.get(kind).filter(|t| !t.trim().is_empty())?;
    let id: String = url::form_urlencoded::byte_serialize(approval.resource_id.as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    Some(template.replace("{resourceId}", &id).replace("{resourceType}", kind))
}

/// The URL an item's action opens, when it has one the rule allows.
pub fn action_url_of(item: &FeedItem, settings: &Settings) -> Option<String> {
    action_link_of(item, settings)?.ok().map(String::from)
}

/// `item` as the UI is to see it: with [`ActionLink`] filled in (the
/// destination host, or why the link is refused).
pub fn for_ui(mut item: FeedItem, settings: &Settings) -> FeedItem {
    item.link = action_link_of(&item, settings).map(|link| match link {
        Ok(url) => ActionLink::Opens { host: host_of(&url) },
        Err(error) => ActionLink::Refused { reason: error.to_string() },
    });
    item
}

/// What a notification replaces: the one before it with the same key.
///
/// A system notice repeated with the same kind, level and message (a
/// monitor re-raising "replication lag above 30 s" every few seconds)
/// updates the one notification on screen instead of stacking a new one
/// each time; every other event is its own notification.
fn notification_key(item: &FeedItem) -> String {
    match &item.event {
        Event::SystemMaintenance(s) | Event::SystemUpdate(s) | Event::SystemAlert(s) => {
            let kind = item.event.kind();
            let digest = xxhash_rust::xxh3::xxh3_64(s.message.as_bytes());
            format!("system:{kind:?}:{:?}:{digest:016x}", s.level)
        }
        _ => item.id.clone(),
    }
}

#[cfg(test)]
mod tests {
    use tidings_events::decode;

    use super::*;
    use crate::config::{default_settings, preset_feeds};
    use crate::ipc::Language;

    fn item(json: &str) -> FeedItem {
        let tidings_events::Decoded::Typed { event, .. } = decode(json.as_bytes()) else {
            panic!("not typed: {json}")
        };
        FeedItem {
            id: "i1".into(),
            seq: 1,
            feed: feed_of(&event),
            channel: "x".into(),
            received_at: 0,
            read: false,
            event,
            extra: None,
            link: None,
        }
    }

    fn settings(profile: Profile) -> Settings {
        let mut settings = default_settings(profile);
        settings.language = Language::En;
        settings
    }

    const NOON: Now = Now { millis: 1_000_000, local_minute: 12 * 60, paused_until: None };

    const APPROVAL: &str = r#"{"type":"approval:request","resourceType":"refund","resourceId":"r1","resourceNumber":"RF-2026-000042","requesterId":"u2","requesterName":"李娜","timestamp":1}"#;
    const LOW_STOCK: &str = r#"{"type":"inventory:change","productId":"p1","productName":"螺丝刀","action":"outbound","oldQuantity":12,"newQuantity":3,"changeAmount":-9,"timestamp":1}"#;
    const STOCK: &str = r#"{"type":"inventory:change","productId":"p1","action":"inbound","oldQuantity":12,"newQuantity":30,"changeAmount":18,"timestamp":1}"#;
    const CRITICAL: &str =
        r#"{"type":"system:alert","level":"critical","message":"DB down","timestamp":1}"#;

    #[test]
    fn an_approval_request_is_critical_and_resident_for_approvers() {
        let request =
            Policy::default().decide(&item(APPROVAL), &settings(Profile::Approver), NOON).unwrap();
        assert_eq!(request.urgency, Urgency::Critical);
        assert!(request.resident);
        assert!(request.body.contains("RF-2026-000042"));
    }

    #[test]
    fn a_warehouse_profile_does_not_notify_approvals_but_does_low_stock() {
        let mut policy = Policy::default();
        let warehouse = settings(Profile::Warehouse);
        assert_eq!(policy.decide(&item(APPROVAL), &warehouse, NOON), None);
        let low = policy.decide(&item(LOW_STOCK), &warehouse, NOON).unwrap();
        assert!(low.title.contains("Low stock") && low.body.contains("3"));
        assert_eq!(policy.decide(&item(STOCK), &warehouse, NOON), None, "above threshold is info");
    }

    #[test]
    fn ops_hears_critical_system_alerts_as_critical() {
        let request =
            Policy::default().decide(&item(CRITICAL), &settings(Profile::Ops), NOON).unwrap();
        assert_eq!(request.urgency, Urgency::Critical);
    }

    #[test]
    fn ops_hears_of_deleted_records_but_not_of_every_edit() {
        let change = |action: &str| {
            format!(
                r#"{{"type":"data:change","resource":"user","action":"{action}","resourceId":"u7","resourceName":"王伟","timestamp":1}}"#
            )
        };
        let ops = settings(Profile::Ops);
        let mut policy = Policy::default();
        assert_eq!(policy.decide(&item(&change("updated")), &ops, NOON), None);
        let deleted = policy.decide(&item(&change("deleted")), &ops, NOON).unwrap();
        assert_eq!(
            (deleted.title.as_str(), deleted.body.as_str()),
            ("Data changed", "user 王伟 deleted")
        );
    }

    #[test]
    fn a_muted_feed_stays_silent() {
        let mut approver = settings(Profile::Approver);
        approver.feeds.get_mut(&FeedId::Approvals).unwrap().notify = false;
        assert_eq!(Policy::default().decide(&item(APPROVAL), &approver, NOON), None);
    }

    #[test]
    fn quiet_hours_hold_back_all_but_critical() {
        let mut warehouse = settings(Profile::Warehouse);
        warehouse.quiet_hours.enabled = true; // 22:00 → 07:00
        let night = Now { local_minute: 23 * 60, ..NOON };
        assert_eq!(Policy::default().decide(&item(LOW_STOCK), &warehouse, night), None);
        let critical = Policy::default().decide(&item(CRITICAL), &warehouse, night);
        assert!(critical.is_some(), "critical gets through quiet hours");
        assert!(Policy::default().decide(&item(LOW_STOCK), &warehouse, NOON).is_some());
    }

    #[test]
    fn pausing_holds_back_all_but_critical_until_the_pause_ends() {
        let warehouse = settings(Profile::Warehouse);
        let paused = Now { paused_until: Some(NOON.millis + 1), ..NOON };
        assert_eq!(Policy::default().decide(&item(LOW_STOCK), &warehouse, paused), None);
        assert!(Policy::default().decide(&item(CRITICAL), &warehouse, paused).is_some());
    }

    #[test]
    fn a_burst_becomes_one_summary_that_replaces_itself() {
        let warehouse = settings(Profile::Warehouse);
        let mut policy = Policy::default();
        let mut requests = Vec::new();
        for n in 0..12 {
            let now = Now { millis: NOON.millis + n * 10, ..NOON };
            requests.extend(policy.decide(&item(LOW_STOCK), &warehouse, now));
        }
        let count = warehouse.coalesce_count as usize;
        assert!(requests[..count].iter().all(|r| r.title.contains("Low stock")));
        assert_eq!(requests.len(), count + 1, "then one summary, not one per event");
        assert_eq!(requests[count].title, "6 inventory changes");
        assert_eq!(requests[count].body, "in the last 10 s");
        // The count that grew meanwhile is shown once the refresh interval
        // has passed, under the same key, so it replaces the first.
        let soon = NOON.millis + 110;
        assert_eq!(policy.due(&warehouse, soon), [], "not before the refresh interval");
        let refreshed = policy.due(&warehouse, NOON.millis + 2 * SUMMARY_REFRESH_MS);
        assert_eq!(refreshed.len(), 1);
        assert_eq!(refreshed[0].title, "12 inventory changes");
        assert_eq!(refreshed[0].key, requests[count].key, "summaries replace each other");
        assert_eq!(policy.due(&warehouse, NOON.millis + 5 * SUMMARY_REFRESH_MS), []);
        // After the window, single notifications again.
        let later = Now { millis: NOON.millis + 60_000, ..NOON };
        assert!(
            policy.decide(&item(LOW_STOCK), &warehouse, later).unwrap().title.contains("Low stock")
        );
    }

    #[test]
    fn a_critical_notification_is_never_folded_into_a_summary() {
        let ops = settings(Profile::Ops);
        let mut policy = Policy::default();
        let notice =
            r#"{"type":"system:update","level":"info","message":"v2 deployed","timestamp":1}"#;
        let mut summaries = 0;
        for n in 0..20 {
            let now = Now { millis: NOON.millis + n, ..NOON };
            let request = policy.decide(&item(notice), &ops, now);
            summaries += request.is_some_and(|r| r.key.starts_with("summary:")) as u32;
        }
        assert_eq!(summaries, 1, "the system feed is in a burst");
        let critical = policy.decide(&item(CRITICAL), &ops, NOON).unwrap();
        assert_eq!(critical.urgency, Urgency::Critical);
        assert_eq!(critical.title, "System");
    }

    #[test]
    fn a_repeated_system_alert_replaces_its_notification_and_a_different_one_does_not() {
        let ops = settings(Profile::Ops);
        let mut policy = Policy::default();
        let alert = |message: &str, at: i64| {
            item(&format!(
                r#"{{"type":"system:alert","level":"critical","message":"{message}","timestamp":{at}}}"#
            ))
        };
        let mut first = alert("Replication lag above 30 s", 1);
        first.id = "a".into();
        let mut again = alert("Replication lag above 30 s", 2);
        again.id = "b".into();
        let mut other = alert("Disk almost full", 3);
        other.id = "c".into();
        let key =
            |item: &FeedItem, policy: &mut Policy| policy.decide(item, &ops, NOON).unwrap().key;
        assert_eq!(key(&first, &mut policy), key(&again, &mut policy));
        assert_ne!(key(&first, &mut policy), key(&other, &mut policy));
        let request = |n: &str| {
            let mut i = item(&format!(
                r#"{{"type":"approval:request","resourceType":"payment","resourceId":"{n}","resourceNumber":"{n}","requesterId":"u2","requesterName":"R","timestamp":1}}"#
            ));
            i.id = n.into();
            i
        };
        let approver = settings(Profile::Approver);
        assert_ne!(
            policy.decide(&request("p1"), &approver, NOON).unwrap().key,
            policy.decide(&request("p2"), &approver, NOON).unwrap().key,
            "every approval request is its own notification"
        );
    }

    const MINE_WITH_LINK: &str = r#"{"type":"notification","id":"n1","userId":"u1","title":"审批","message":"请审核","notificationType":"info","actionUrl":"/approvals/123","actionLabel":"立即审核","timestamp":1}"#;

    #[test]
    fn the_ui_sees_where_an_action_link_goes() {
        let mut warehouse = settings(Profile::Warehouse);
        warehouse.erp_base_url = "https://erp.example.com".into();
        let shown = for_ui(item(MINE_WITH_LINK), &warehouse);
        assert_eq!(shown.link, Some(ActionLink::Opens { host: "erp.example.com".into() }));
    }

    #[test]
    fn the_ui_sees_why_an_action_link_is_refused() {
        let evil = MINE_WITH_LINK.replace("/approvals/123", "//evil.com");
        let shown = for_ui(item(&evil), &settings(Profile::Warehouse));
        let Some(ActionLink::Refused { reason }) = shown.link else { panic!("{:?}", shown.link) };
        assert!(reason.contains("//"), "{reason}");
        assert_eq!(
            for_ui(item(STOCK), &settings(Profile::Warehouse)).link,
            None,
            "no link, no button"
        );
    }

    #[test]
    fn a_notification_names_the_host_its_link_opens() {
        let mut warehouse = settings(Profile::Warehouse);
        warehouse.erp_base_url = "https://erp.example.com".into();
        let request = Policy::default().decide(&item(MINE_WITH_LINK), &warehouse, NOON).unwrap();
        assert!(request.body.ends_with("↗ erp.example.com"), "{}", request.body);
        assert_eq!(
            request.target.unwrap().open_url.as_deref(),
            Some("https://erp.example.com/approvals/123")
        );
    }

    #[test]
    fn a_notification_with_a_refused_link_opens_nothing_and_names_no_host() {
        let evil = MINE_WITH_LINK.replace("/approvals/123", "https://erp.example.com@evil.com/");
        let request =
            Policy::default().decide(&item(&evil), &settings(Profile::Warehouse), NOON).unwrap();
        assert!(!request.body.contains("evil.com"), "{}", request.body);
        assert_eq!(request.target.unwrap().open_url, None);
    }

    #[test]
    fn a_notification_is_cut_to_its_documented_lengths() {
        let long = format!(
            r#"{{"type":"notification","notificationType":"info","title":"{}","message":"{}","timestamp":1}}"#,
            "标".repeat(200),
            "正".repeat(900)
        );
        let request =
            Policy::default().decide(&item(&long), &settings(Profile::Warehouse), NOON).unwrap();
        assert_eq!(request.title.chars().count(), crate::text::TITLE_MAX_CHARS);
        assert_eq!(request.body.chars().count(), BODY_MAX_CHARS);
        assert!(request.title.ends_with('…') && request.body.ends_with('…'));
    }

    #[test]
    fn a_long_message_keeps_the_host_its_link_opens() {
        let long = MINE_WITH_LINK.replace("请审核", &"正".repeat(900));
        let mut warehouse = settings(Profile::Warehouse);
        warehouse.erp_base_url = "https://erp.example.com".into();
        let request = Policy::default().decide(&item(&long), &warehouse, NOON).unwrap();
        assert!(request.body.chars().count() <= BODY_MAX_CHARS);
        assert!(request.body.ends_with("…\n↗ erp.example.com"), "{}", request.body);
    }

    #[test]
    fn a_notification_carries_no_control_or_bidi_override_characters() {
        let tricky = r#"{"type":"broadcast","level":"warning","title":"Pay\u202eexe.pdf\n","message":"a\u0007b\u2066c\nd","timestamp":1}"#;
        let request =
            Policy::default().decide(&item(tricky), &settings(Profile::Warehouse), NOON).unwrap();
        assert_eq!((request.title.as_str(), request.body.as_str()), ("Payexe.pdf", "abc\nd"));
    }

    #[test]
    fn presets_are_what_settings_default_to() {
        assert_eq!(settings(Profile::Ops).feeds, preset_feeds(Profile::Ops));
    }
}
