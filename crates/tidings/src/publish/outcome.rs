//! What a publish reports: [`PublishOutcome`], and why it failed
//! ([`PublishError`]); [`ConfigError`] when a publisher cannot be created.

use std::time::Duration;

/// Why a publisher could not even be created: its URL is unusable.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ConfigError(#[from] pub crate::redis_url::RedisUrlError);

/// Why one publish did not reach Redis.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The message was refused before it was sent: bad user id, a typed
    /// event on a channel that does not carry it, malformed JSON, …
    #[error("not sent: {0}")]
    Invalid(String),
    /// Redis could not be reached.
    #[error("cannot reach Redis at {url}: {reason}. Is redis-server running there?")]
    Unreachable {
        /// The Redis URL, password hidden.
        url: String,
        /// The connection error (while reconnects are paused, the last one).
        reason: String,
    },
    /// Redis answered with an error, or the connection broke mid-command.
    #[error("Redis at {url} failed the publish: {source}")]
    Redis {
        /// The Redis URL, password hidden.
        url: String,
        /// The error Redis answered, or the connection failure.
        #[source]
        source: redis::RedisError,
    },
    /// The history script answered something this version does not
    /// understand (a different Tidings version wrote the keys?).
    #[error("Redis at {url} failed the history script: {reason}")]
    History {
        /// The Redis URL, password hidden.
        url: String,
        /// What was wrong with the script's answer.
        reason: String,
    },
    /// No answer within the configured bound.
    #[error(
        "publish to Redis at {url} did not finish within {after:?}; Redis may be down or overloaded"
    )]
    Timeout {
        /// The Redis URL, password hidden.
        url: String,
        /// The configured bound that was exceeded.
        after: Duration,
    },
}

impl PublishError {
    /// Whether the fault is in the message itself (retrying will not help),
    /// rather than in reaching Redis.
    pub fn is_invalid(&self) -> bool {
        matches!(self, PublishError::Invalid(_))
    }
}

/// What became of one publish.
#[derive(Debug)]
#[non_exhaustive]
pub struct PublishOutcome {
    /// The Redis channel, e.g. `ws:inventory` (empty if the channel itself
    /// was invalid).
    pub channel: String,
    /// The exact text sent (or that would have been sent).
    pub payload: String,
    /// How many subscribers Redis delivered it to; `None` if not published.
    pub receivers: Option<u64>,
    /// Where it was recorded in the channel's history (`EPOCH:MILLIS-SEQ`);
    /// `None` without history or if not published.
    pub position: Option<String>,
    /// Why it was not published.
    pub error: Option<PublishError>,
}

impl PublishOutcome {
    /// Whether Redis accepted the message (even with no subscriber).
    pub fn is_published(&self) -> bool {
        self.error.is_none()
    }

    /// The subscriber count or the error, for `?`-style handling.
    pub fn result(&self) -> Result<u64, &PublishError> {
        match (&self.error, self.receivers) {
            (Some(error), _) => Err(error),
            (None, receivers) => Ok(receivers.unwrap_or(0)),
        }
    }

    pub(super) fn refused(channel: String, payload: String, error: PublishError) -> Self {
        PublishOutcome { channel, payload, receivers: None, position: None, error: Some(error) }
    }
}

/// What became of an approval result: the event on `approvals` and the
/// notification to the requester. Each can fail on its own.
#[derive(Debug)]
pub struct ApprovalResultOutcome {
    /// The `approval:approved` or `approval:rejected` event on `approvals`.
    pub approval: PublishOutcome,
    /// The `notification` to the requester on their own user channel.
    pub notification: PublishOutcome,
}

impl ApprovalResultOutcome {
    /// Whether both the event and the notification were published.
    pub fn is_published(&self) -> bool {
        self.approval.is_published() && self.notification.is_published()
    }
}
