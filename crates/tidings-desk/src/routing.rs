//! Notification routing: what happens to a notification the policy decided
//! on, and to it afterwards. The pipeline's part that talks to the
//! [`Notifier`]; it never waits for the daemon (the notifier only queues).
//!
//! - **Native or in the window.** A request goes to the notifier; one it
//!   refuses, or later reports [`NotificationResponse::NotShown`], becomes a
//!   toast in the next batch (at most [`TOAST_CAP`] per batch). After the
//!   daemon was found missing it is asked again every [`NATIVE_RETRY_MS`].
//! - **Following what they announce.** An approval request's notification
//!   is closed (`CloseNotification`) as soon as the request is approved or
//!   rejected, or read or acknowledged in the app (all of a feed at once by
//!   "mark all read"). A resident notification the user dismissed frees its
//!   place.
//! - **Bounded on screen.** At most [`MAX_RESIDENT`] resident notifications
//!   of their own are on screen at once, and at most [`CRITICAL_PER_MINUTE`]
//!   critical ones pop up in any minute. Past either bound a critical request
//!   folds into one critical, resident summary per feed ("12 approval
//!   requests pending") that opens that feed's screen on a click, is
//!   updated in place (same key, so the daemon's replace id), at most once
//!   per [`SUMMARY_REFRESH_MS`], and is closed when nothing it counts is
//!   pending any more. When a resident notification leaves the screen
//!   (resolved, read, dismissed), the oldest folded resident request takes
//!   its place as a notification of its own and leaves the summary's count
//!   (this does not count against [`CRITICAL_PER_MINUTE`]: it replaces one
//!   that just left). So what is on screen is the pending requests, up to
//!   [`MAX_RESIDENT`], plus a summary of the rest.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use tidings_events::Event;

use crate::ipc::{FeedId, FeedItem, Settings, Toast, Urgency};
use crate::notify::{
    ClickTarget, NotificationRequest, NotificationResponse, Notifier, NotifyError,
};
use crate::policy::{SUMMARY_REFRESH_MS, pending_summary};

/// Resident notifications of their own on screen at once.
pub const MAX_RESIDENT: usize = 5;
/// Critical notifications that pop up in any 60 s.
pub const CRITICAL_PER_MINUTE: usize = 10;
/// In-window toasts per batch; a burst keeps the newest.
pub const TOAST_CAP: usize = 20;
/// After no notification daemon answered, how long before asking again.
pub const NATIVE_RETRY_MS: i64 = 60_000;
/// Folded requests remembered per feed (to take them off the summary's
/// count when resolved); beyond it they are counted but not remembered.
const FOLDED_MEMORY: usize = 10_000;
/// Notifications remembered to close later (resident ones are always
/// remembered; they are at most [`MAX_RESIDENT`]).
const TRACKED: usize = 256;

/// A notification on screen that may have to be closed.
#[derive(Debug)]
struct Open {
    key: String,
    feed: FeedId,
    resident: bool,
    /// The approval request it announces (type and id), if it is one.
    resource: Option<String>,
}

/// A folded request that may take a freed place on screen.
#[derive(Debug)]
struct Folded {
    item_id: String,
    seq: u64,
    resource: Option<String>,
    request: NotificationRequest,
}

/// One feed's critical notifications folded into its summary.
#[derive(Debug, Default)]
struct Fold {
    pending: HashSet<String>,
    /// Folded requests, oldest first, to take a freed place on screen
    /// (some may be resolved already: skipped when their turn comes).
    queue: VecDeque<Folded>,
    /// Folded but not remembered (past [`FOLDED_MEMORY`]).
    unremembered: usize,
    newest: String,
    /// Whether the summary is on screen, and when it was last sent.
    shown_at: Option<i64>,
    /// The count changed since the summary was last sent.
    dirty: bool,
}

impl Fold {
    fn count(&self) -> usize {
        self.pending.len() + self.unremembered
    }
}

/// The routing part of the pipeline (see the module docs).
pub(crate) struct Routing {
    notifier: Arc<dyn Notifier>,
    /// Whether the last native notification was accepted (false: toasts).
    pub native: bool,
    /// When to ask the notification daemon again after it was missing.
    retry_at: i64,
    toasts: Vec<Toast>,
    /// By item id.
    open: HashMap<String, Open>,
    /// Approval requests (type and id) → the item id they were shown or
    /// folded under.
    requests: HashMap<String, String>,
    critical_times: VecDeque<i64>,
    folds: BTreeMap<FeedId, Fold>,
}

impl std::fmt::Debug for Routing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routing")
            .field("native", &self.native)
            .field("open", &self.open.len())
            .field("folds", &self.folds)
            .finish_non_exhaustive()
    }
}

/// The approval request an event is about: its resource type and id.
fn resource_of(event: &Event) -> Option<String> {
    match event {
        Event::ApprovalRequest(a) | Event::ApprovalApproved(a) | Event::ApprovalRejected(a) => {
            Some(format!("{:?}:{}", a.resource_type, a.resource_id))
        }
        _ => None,
    }
}

impl Routing {
    pub(crate) fn new(notifier: Arc<dyn Notifier>) -> Self {
        Routing {
            notifier,
            native: true,
            retry_at: 0,
            toasts: Vec::new(),
            open: HashMap::new(),
            requests: HashMap::new(),
            critical_times: VecDeque::new(),
            folds: BTreeMap::new(),
        }
    }

    /// Toasts for the next batch.
    pub(crate) fn take_toasts(&mut self) -> Vec<Toast> {
        std::mem::take(&mut self.toasts)
    }

    /// Shows the policy's `request` for `item`, or folds it (module docs).
    pub(crate) fn route(
        &mut self,
        request: NotificationRequest,
        item: &FeedItem,
        settings: &Settings,
    ) {
        let now = crate::pipeline::now_millis();
        let resource = resource_of(&item.event);
        if request.urgency == Urgency::Critical {
            if self.must_fold(&request, now) {
                self.fold(item, request, resource, settings, now);
                return;
            }
            self.critical_times.push_back(now);
        }
        let key = request.key.clone();
        let resident = request.resident;
        if self.show(request, Some(item.id.clone())).is_ok()
            && (resident || (resource.is_some() && self.open.len() < TRACKED))
        {
            if let Some(resource) = &resource {
                self.requests.insert(resource.clone(), item.id.clone());
            }
            self.open.insert(item.id.clone(), Open { key, feed: item.feed, resident, resource });
        }
    }

    fn must_fold(&mut self, request: &NotificationRequest, now: i64) -> bool {
        while self.critical_times.front().is_some_and(|at| now - at >= 60_000) {
            self.critical_times.pop_front();
        }
        let resident = self.open.values().filter(|open| open.resident).count();
        (request.resident && resident >= MAX_RESIDENT)
            || self.critical_times.len() >= CRITICAL_PER_MINUTE
    }

    fn fold(
        &mut self,
        item: &FeedItem,
        request: NotificationRequest,
        resource: Option<String>,
        settings: &Settings,
        now: i64,
    ) {
        let fold = self.folds.entry(item.feed).or_default();
        if fold.pending.len() < FOLDED_MEMORY {
            fold.pending.insert(item.id.clone());
            if let Some(resource) = &resource {
                self.requests.insert(resource.clone(), item.id.clone());
            }
            if request.resident {
                if fold.queue.len() >= FOLDED_MEMORY {
                    fold.queue.pop_front();
                }
                let (item_id, seq) = (item.id.clone(), item.seq);
                fold.queue.push_back(Folded { item_id, seq, resource, request });
            }
        } else {
            fold.unremembered += 1;
        }
        fold.newest = item.id.clone();
        fold.dirty = true;
        self.refresh(item.feed, settings, now);
    }

    /// Shows, updates or closes `feed`'s summary: a count of zero closes it
    /// at once; a changed count is shown at most once per refresh interval.
    fn refresh(&mut self, feed: FeedId, settings: &Settings, now: i64) {
        let Some(fold) = self.folds.get_mut(&feed) else { return };
        let count = fold.count();
        if count == 0 {
            if fold.shown_at.is_some() {
                self.notifier.close(&summary_key(feed));
            }
            self.folds.remove(&feed);
            return;
        }
        let due = fold.shown_at.is_none_or(|at| now.saturating_sub(at) >= SUMMARY_REFRESH_MS);
        if !fold.dirty || !due {
            return;
        }
        fold.dirty = false;
        fold.shown_at = Some(now);
        let target = ClickTarget { feed, item_id: fold.newest.clone(), open_url: None };
        let request = pending_summary(summary_key(feed), feed, count, settings, target);
        let _shown = self.show(request, None);
    }

    /// Promotions that had to wait, and summaries whose count changed and
    /// whose refresh interval has passed; the pipeline calls this on every
    /// flush.
    pub(crate) fn due(&mut self, settings: &Settings) {
        // Places a promotion could not fill earlier (the notifier was busy).
        for _ in 0..MAX_RESIDENT {
            if !self.promote(settings) {
                break;
            }
        }
        let now = crate::pipeline::now_millis();
        let dirty: Vec<FeedId> =
            self.folds.iter().filter(|(_, fold)| fold.dirty).map(|(feed, _)| *feed).collect();
        for feed in dirty {
            self.refresh(feed, settings, now);
        }
    }

    /// Every new item passes here: a decision on an approval request
    /// resolves the request's notification.
    pub(crate) fn observe(&mut self, item: &FeedItem, settings: &Settings) {
        if matches!(item.event, Event::ApprovalApproved(_) | Event::ApprovalRejected(_))
            && let Some(resource) = resource_of(&item.event)
            && let Some(id) = self.requests.remove(&resource)
        {
            self.resolved(&id, settings);
        }
    }

    /// Items read or acknowledged in the app.
    pub(crate) fn read(&mut self, ids: &[String], settings: &Settings) {
        for id in ids {
            self.resolved(id, settings);
        }
    }

    /// A whole feed marked read: its summary goes first (nothing of it is
    /// promoted), then its own notifications.
    pub(crate) fn read_all(&mut self, feed: FeedId, settings: &Settings) {
        if let Some(fold) = self.folds.remove(&feed) {
            if fold.shown_at.is_some() {
                self.notifier.close(&summary_key(feed));
            }
            self.requests.retain(|_, id| !fold.pending.contains(id));
        }
        let ids: Vec<String> = self
            .open
            .iter()
            .filter(|(_, open)| open.feed == feed)
            .map(|(id, _)| id.clone())
            .collect();
        self.read(&ids, settings);
    }

    /// The item `id` needs no notification any more: close its own, or take
    /// it off its feed's summary.
    fn resolved(&mut self, id: &str, settings: &Settings) {
        if let Some(open) = self.open.remove(id) {
            self.notifier.close(&open.key);
            if let Some(resource) = open.resource {
                self.requests.remove(&resource);
            }
            if open.resident {
                let _promoted = self.promote(settings);
            }
            return;
        }
        let folded = self.folds.iter_mut().find(|(_, fold)| fold.pending.contains(id));
        if let Some((feed, fold)) = folded {
            let feed = *feed;
            fold.pending.remove(id);
            fold.dirty = true;
            self.requests.retain(|_, item| item != id);
            self.refresh(feed, settings, crate::pipeline::now_millis());
        }
    }

    /// A resident notification left the screen: the oldest folded resident
    /// request still pending takes its place, and leaves its summary.
    /// One the notifier cannot take now (its queue is full) stays folded
    /// and is tried again at the next flush ([`Routing::due`]); in the
    /// window's toasts nothing is promoted. True when one was.
    fn promote(&mut self, settings: &Settings) -> bool {
        let resident = self.open.values().filter(|open| open.resident).count();
        if resident >= MAX_RESIDENT || !self.native {
            return false;
        }
        let Some((feed, next)) = self.next_folded() else { return false };
        if self.notifier.notify(next.request.clone()).is_err() {
            let fold = self.folds.entry(feed).or_default();
            fold.pending.insert(next.item_id.clone());
            fold.queue.push_front(next);
            return false;
        }
        let open = Open { key: next.request.key, feed, resident: true, resource: next.resource };
        self.open.insert(next.item_id, open);
        self.refresh(feed, settings, crate::pipeline::now_millis());
        true
    }

    /// Takes the oldest folded resident request still pending off its
    /// feed's summary.
    fn next_folded(&mut self) -> Option<(FeedId, Folded)> {
        loop {
            let (feed, fold) = self
                .folds
                .iter_mut()
                .filter(|(_, fold)| !fold.queue.is_empty())
                .min_by_key(|(_, fold)| fold.queue.front().map(|next| next.seq))?;
            let next = fold.queue.pop_front()?;
            if fold.pending.remove(&next.item_id) {
                fold.dirty = true;
                return Some((*feed, next));
            }
        }
    }

    /// What the desktop said about a notification (other than a click).
    pub(crate) fn response(&mut self, response: NotificationResponse, settings: &Settings) {
        match response {
            NotificationResponse::Dismissed { key } => {
                self.forget_key(&key);
                let _promoted = self.promote(settings);
            }
            NotificationResponse::NotShown { request, error } => {
                self.forget_key(&request.key);
                let item_id = request.target.as_ref().map(|target| target.item_id.clone());
                self.failed(request, item_id, &error);
            }
            NotificationResponse::Clicked(_) | NotificationResponse::Action { .. } => {}
        }
    }

    fn forget_key(&mut self, key: &str) {
        self.open.retain(|_, open| open.key != key);
        if let Some(feed) = FeedId::ALL.into_iter().find(|feed| summary_key(*feed) == key)
            && let Some(fold) = self.folds.get_mut(&feed)
        {
            fold.shown_at = None;
        }
    }

    /// Shows `request` natively, or as a toast in the next batch when the
    /// notifier refuses it; says which. After the daemon was found missing,
    /// it is asked again only every [`NATIVE_RETRY_MS`] (one may start later
    /// in the session); the log says so once per outage.
    pub(crate) fn show(
        &mut self,
        request: NotificationRequest,
        item_id: Option<String>,
    ) -> Result<(), NotifyError> {
        let now = crate::pipeline::now_millis();
        let result = if self.native || now >= self.retry_at {
            self.notifier.notify(request.clone())
        } else {
            Err(NotifyError::Unavailable("no notification daemon answered recently".into()))
        };
        match &result {
            Ok(()) => {
                if !self.native {
                    tracing::info!("a notification daemon answers again; notifying natively");
                    self.native = true;
                }
            }
            Err(error) => self.failed(request, item_id, error),
        }
        result
    }

    fn failed(
        &mut self,
        request: NotificationRequest,
        item_id: Option<String>,
        error: &NotifyError,
    ) {
        let now = crate::pipeline::now_millis();
        match error {
            NotifyError::Unavailable(reason) => {
                if self.native {
                    tracing::warn!(%reason, "no notification daemon; showing notifications inside the window until one answers");
                    self.native = false;
                }
                if now >= self.retry_at {
                    self.retry_at = now + NATIVE_RETRY_MS;
                }
            }
            NotifyError::Refused(_) => {
                tracing::warn!(%error, "notification refused; showing it inside the window");
            }
        }
        let toast =
            Toast { title: request.title, body: request.body, urgency: request.urgency, item_id };
        crate::pipeline::push_capped_vec(&mut self.toasts, toast, TOAST_CAP);
    }
}

/// The key of a feed's summary of folded critical notifications.
fn summary_key(feed: FeedId) -> String {
    format!("pending:{feed:?}")
}
