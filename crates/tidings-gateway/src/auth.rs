//! Who a connection is and what it may subscribe to.
//!
//! With a secret configured, every WebSocket upgrade carries an HS256 JWT
//! (`Authorization: Bearer <jwt>` or `?token=<jwt>`). Only HS256 is accepted:
//! `none` and every other algorithm fail, as do a bad signature, an expired
//! `exp` and a `sub` that is not a valid user id. The resulting [`Grant`]
//! allows the user's own `user:{sub}:notifications`, never another user's,
//! and the shared channels, narrowed by an optional `channels` claim, until
//! the token's `exp` (plus the clock leeway): then the connection is closed
//! (docs/gateway.md, "Close codes").
//!
//! With `--jwt-audience` / `--jwt-issuer` the token's `aud` / `iss` must
//! match, and with `--max-token-lifetime` a token may live no longer than
//! that (`exp` minus the earlier of `iat` and now). The same checks apply
//! to a `refresh` frame's token, which must also name the same user
//! ([`Authenticator::verify_refresh`]).
//!
//! Without a secret the gateway is in open mode: [`Grant::Open`] allows every
//! shared channel and every user channel (the gateway says so loudly at start
//! and binds to loopback only unless `--insecure-bind`).

use std::collections::HashSet;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tidings_events::{Channel, UserId};

/// Seconds of clock skew tolerated on `exp` and `nbf`.
const CLOCK_LEEWAY_SECS: u64 = 5;

/// What one connection may subscribe to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// Open mode: anything.
    Open,
    /// An authenticated user.
    User {
        user: UserId,
        /// Shared channels allowed by the `channels` claim; `None` = all.
        shared: Option<HashSet<Channel>>,
        /// The token's `exp` (seconds since the Unix epoch): the connection
        /// is closed then, plus the clock leeway.
        expires_at: u64,
    },
}

/// Why a channel is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Another user's notifications.
    OtherUser,
    /// A shared channel the token's `channels` claim leaves out.
    NotInClaim,
}

impl Grant {
    /// Whether this connection may subscribe to `channel`.
    pub fn check(&self, channel: &Channel) -> Result<(), Refusal> {
        match (self, channel) {
            (Grant::Open, _) => Ok(()),
            (Grant::User { user, .. }, Channel::UserNotifications(owner)) => {
                if owner == user {
                    Ok(())
                } else {
                    Err(Refusal::OtherUser)
                }
            }
            (Grant::User { shared: None, .. }, _) => Ok(()),
            (Grant::User { shared: Some(allowed), .. }, shared) => {
                if allowed.contains(shared) {
                    Ok(())
                } else {
                    Err(Refusal::NotInClaim)
                }
            }
        }
    }

    /// When the connection must end because its token has expired:
    /// `exp` plus the clock leeway, in seconds since the Unix epoch.
    pub fn ends_at(&self) -> Option<u64> {
        match self {
            Grant::Open => None,
            Grant::User { expires_at, .. } => Some(expires_at.saturating_add(CLOCK_LEEWAY_SECS)),
        }
    }

    /// The token's `exp` (seconds since the Unix epoch), without leeway.
    pub fn expires_at(&self) -> Option<u64> {
        match self {
            Grant::Open => None,
            Grant::User { expires_at, .. } => Some(*expires_at),
        }
    }

    /// The authenticated user, if any (for logs).
    pub fn user(&self) -> Option<&UserId> {
        match self {
            Grant::Open => None,
            Grant::User { user, .. } => Some(user),
        }
    }
}

/// Why an upgrade is refused with 401. Messages never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no token: send a JWT as `Authorization: Bearer <token>` or `?token=<token>`")]
    Missing,
    #[error("token has expired; get a fresh one and reconnect")]
    Expired,
    #[error("token is not an HS256 JWT signed with this gateway's secret")]
    BadSignature,
    #[error("token algorithm is not accepted; only HS256 is")]
    BadAlgorithm,
    #[error("token is not a well-formed JWT: {0}")]
    Malformed(String),
    #[error("token `sub` is not a valid user id: {0}")]
    BadSubject(String),
    #[error("token `aud` does not name this gateway's audience")]
    BadAudience,
    #[error("token `iss` is not this gateway's issuer")]
    BadIssuer,
    #[error(
        "token lives {lifetime}s, longer than this gateway accepts ({max}s, --max-token-lifetime); issue shorter-lived tokens"
    )]
    LifetimeTooLong { lifetime: u64, max: u64 },
    #[error("a refresh token must be for the connection's own user ({expected}), not {got}")]
    OtherUser { expected: String, got: String },
    #[error("this gateway runs in open mode: there is no token to refresh")]
    OpenMode,
}

impl AuthError {
    /// Short label for the `auth_failures_total` metric.
    pub fn label(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::Expired => "expired",
            AuthError::BadSignature => "bad_signature",
            AuthError::BadAlgorithm => "bad_algorithm",
            AuthError::Malformed(_) => "malformed",
            AuthError::BadSubject(_) => "bad_subject",
            AuthError::BadAudience => "bad_audience",
            AuthError::BadIssuer => "bad_issuer",
            AuthError::LifetimeTooLong { .. } => "lifetime_too_long",
            AuthError::OtherUser { .. } => "other_user",
            AuthError::OpenMode => "open_mode",
        }
    }
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    /// Required by the validation (a missing one is refused as such).
    #[serde(default)]
    exp: u64,
    #[serde(default)]
    iat: Option<u64>,
    #[serde(default)]
    channels: Option<Vec<String>>,
}

/// Checks JWTs against one secret.
#[derive(Clone)]
pub struct Authenticator {
    key: DecodingKey,
    validation: Validation,
    max_lifetime: Option<u64>,
}

/// What a token must satisfy beyond its signature and `exp`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenRules {
    /// Required `aud`, if any.
    pub audience: Option<String>,
    /// Required `iss`, if any.
    pub issuer: Option<String>,
    /// Longest lifetime accepted, in seconds, if any.
    pub max_lifetime: Option<u64>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authenticator(HS256, <secret redacted>)")
    }
}

impl Authenticator {
    /// Checks tokens signed with `secret`, with no `aud`, `iss` or
    /// lifetime rule.
    pub fn new(secret: &[u8]) -> Self {
        Authenticator::with_rules(secret, &TokenRules::default())
    }

    /// Checks tokens signed with `secret` that also meet `rules`.
    pub fn with_rules(secret: &[u8], rules: &TokenRules) -> Self {
        // `Validation::new(HS256)` accepts HS256 only: a token whose header
        // says `none`, HS512 or RS256 fails before any signature check.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = CLOCK_LEEWAY_SECS;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        match &rules.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        if let Some(issuer) = &rules.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        Authenticator {
            key: DecodingKey::from_secret(secret),
            validation,
            max_lifetime: rules.max_lifetime,
        }
    }

    /// The grant for a `refresh` frame's `token` on a connection holding
    /// `current`: the token must pass [`Authenticator::verify`] and be for
    /// the same user.
    pub fn verify_refresh(&self, current: &Grant, token: &str) -> Result<Grant, AuthError> {
        let grant = self.verify(Some(token))?;
        match (current.user(), grant.user()) {
            (Some(expected), Some(got)) if expected != got => Err(AuthError::OtherUser {
                expected: expected.as_str().to_owned(),
                got: got.as_str().to_owned(),
            }),
            _ => Ok(grant),
        }
    }

    /// The grant for `token`, or why it is refused.
    pub fn verify(&self, token: Option<&str>) -> Result<Grant, AuthError> {
        let token =
            token.map(str::trim).filter(|token| !token.is_empty()).ok_or(AuthError::Missing)?;
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(|error| {
            match error.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::InvalidSignature => AuthError::BadSignature,
                ErrorKind::InvalidAlgorithm
                | ErrorKind::InvalidAlgorithmName
                | ErrorKind::UnsupportedAlgorithm => AuthError::BadAlgorithm,
                ErrorKind::InvalidAudience => AuthError::BadAudience,
                ErrorKind::InvalidIssuer => AuthError::BadIssuer,
                ErrorKind::ImmatureSignature => AuthError::Malformed("token is not valid yet (nbf)".into()),
                ErrorKind::MissingRequiredClaim(claim) => {
                    AuthError::Malformed(format!("claim `{claim}` is required"))
                }
                ErrorKind::InvalidClaimFormat(claim) => {
                    AuthError::Malformed(format!("claim `{claim}` has the wrong type"))
                }
                ErrorKind::Json(_) => AuthError::Malformed(
                    "claims are not a JSON object with a string `sub`, a numeric `exp` and an optional `channels` array".into(),
                ),
                // Header that is not JSON or a token that is not three base64 parts: the
                // error names no token content, so it is safe to show.
                _ => AuthError::Malformed(error.to_string()),
            }
        })?;
        if let Some(max) = self.max_lifetime {
            // From the earlier of `iat` and now: a future `iat` would
            // otherwise make a long-lived token look short.
            let now = jsonwebtoken::get_current_timestamp();
            let from = data.claims.iat.map_or(now, |iat| iat.min(now));
            let lifetime = data.claims.exp.saturating_sub(from);
            if lifetime > max {
                return Err(AuthError::LifetimeTooLong { lifetime, max });
            }
        }
        let user = UserId::new(data.claims.sub)
            .map_err(|error| AuthError::BadSubject(error.to_string()))?;
        // Unknown names and user channels in `channels` grant nothing: the
        // claim only narrows the shared channels.
        let shared = data.claims.channels.map(|names| {
            names
                .iter()
                .filter_map(|name| Channel::parse(name).ok())
                .filter(|channel| channel.shared_name().is_some())
                .collect()
        });
        Ok(Grant::User { user, shared, expires_at: data.claims.exp })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};

    fn token(secret: &[u8], claims: &serde_json::Value) -> String {
        encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret)).unwrap()
    }

    fn in_an_hour() -> u64 {
        jsonwebtoken::get_current_timestamp() + 3600
    }

    #[test]
    fn a_valid_token_grants_its_user_channel_and_every_shared_one() {
        let auth = Authenticator::new(b"s");
        let grant = auth
            .verify(Some(&token(b"s", &serde_json::json!({"sub":"u1","exp":in_an_hour()}))))
            .unwrap();
        assert_eq!(grant.check(&Channel::parse("user:u1:notifications").unwrap()), Ok(()));
        assert_eq!(
            grant.check(&Channel::parse("user:u2:notifications").unwrap()),
            Err(Refusal::OtherUser)
        );
        assert_eq!(grant.check(&Channel::Inventory), Ok(()));
    }

    #[test]
    fn the_channels_claim_narrows_shared_channels_but_never_grants_other_users() {
        let auth = Authenticator::new(b"s");
        let claims = serde_json::json!({
            "sub":"u1","exp":in_an_hour(),"channels":["orders","user:u2:notifications","nonsense"]
        });
        let grant = auth.verify(Some(&token(b"s", &claims))).unwrap();
        assert_eq!(grant.check(&Channel::Orders), Ok(()));
        assert_eq!(grant.check(&Channel::Inventory), Err(Refusal::NotInClaim));
        assert_eq!(
            grant.check(&Channel::parse("user:u2:notifications").unwrap()),
            Err(Refusal::OtherUser)
        );
        assert_eq!(grant.check(&Channel::parse("user:u1:notifications").unwrap()), Ok(()));
    }

    #[test]
    fn a_sub_that_could_widen_a_channel_is_refused() {
        let auth = Authenticator::new(b"s");
        let error = auth
            .verify(Some(&token(b"s", &serde_json::json!({"sub":"*","exp":in_an_hour()}))))
            .unwrap_err();
        assert!(matches!(error, AuthError::BadSubject(_)), "{error}");
    }

    #[test]
    fn a_token_without_exp_is_refused() {
        let auth = Authenticator::new(b"s");
        let error = auth.verify(Some(&token(b"s", &serde_json::json!({"sub":"u1"})))).unwrap_err();
        assert!(error.to_string().contains("exp"), "{error}");
    }
}
