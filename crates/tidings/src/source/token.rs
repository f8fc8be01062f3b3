//! The gateway source's token: given once, or read from a file that a
//! sign-in helper keeps fresh (docs/desktop.md, "Tokens that expire").
//!
//! - A token file is read at every connect and watched while connected, by
//!   one task per source that polls it every [`TOKEN_FILE_POLL`] with at most
//!   one read in flight (a hung file system holds that task, never the
//!   connection). A new token is handed to the session, which sends it to the
//!   gateway in a `refresh` frame, so the connection keeps its subscriptions.
//! - What a file holds is checked before it is sent anywhere: at most
//!   [`MAX_TOKEN_FILE_BYTES`], and shaped like a JWT (three base64url parts).
//!   Anything else is refused without showing what the file holds, so a path
//!   pointed at some other secret never sends it to the gateway.
//! - [`unverified_claims`] reads `sub` and `exp` without checking the
//!   signature: only to plan (whose notifications channel, when a token
//!   runs out). The gateway verifies every token it is given.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How often a token file is read again while the source runs.
pub const TOKEN_FILE_POLL: Duration = Duration::from_secs(2);

/// Largest token file read; a JWT is a few hundred bytes.
pub const MAX_TOKEN_FILE_BYTES: u64 = 16 * 1024;

/// Where the gateway source gets its JWT.
#[derive(Clone, PartialEq, Eq)]
pub enum GatewayToken {
    /// This token, for the life of the source.
    Fixed(String),
    /// The token this file holds, read at every connect and again every
    /// [`TOKEN_FILE_POLL`] while connected; a new one is sent to the gateway
    /// in a `refresh` frame.
    File(PathBuf),
}

impl From<String> for GatewayToken {
    fn from(token: String) -> Self {
        GatewayToken::Fixed(token)
    }
}

/// `Debug` never shows a fixed token.
impl std::fmt::Debug for GatewayToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GatewayToken::Fixed(_) => f.write_str("Fixed(<redacted>)"),
            GatewayToken::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

/// Why a token file cannot be used; the file's content is never shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenFileError {
    /// The file could not be opened or read.
    #[error(
        "cannot read the token file {path}: {reason}; check that the program that signs you in writes it there"
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        reason: String,
    },
    /// The file is larger than [`MAX_TOKEN_FILE_BYTES`].
    #[error(
        "the token file {path} is larger than {MAX_TOKEN_FILE_BYTES} bytes; it should hold one JWT and nothing else"
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The file holds something that is not one JWT.
    #[error(
        "the token file {path} does not hold a JWT (three base64url parts joined by dots); its content is not shown or sent"
    )]
    NotAJwt {
        /// The file.
        path: PathBuf,
    },
}

/// Reads the token `path` holds, checked as the module docs say.
pub async fn read_token_file(path: &Path) -> Result<String, TokenFileError> {
    let read_error = |error: std::io::Error| TokenFileError::Read {
        path: path.to_owned(),
        reason: error.to_string(),
    };
    let file = tokio::fs::File::open(path).await.map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(MAX_TOKEN_FILE_BYTES + 1).read_to_end(&mut bytes).await.map_err(read_error)?;
    if bytes.len() as u64 > MAX_TOKEN_FILE_BYTES {
        return Err(TokenFileError::TooLarge { path: path.to_owned() });
    }
    let token = std::str::from_utf8(&bytes).map(str::trim).unwrap_or_default();
    if looks_like_a_jwt(token) {
        Ok(token.to_owned())
    } else {
        Err(TokenFileError::NotAJwt { path: path.to_owned() })
    }
}

/// Three non-empty base64url parts joined by dots, and nothing else.
fn looks_like_a_jwt(token: &str) -> bool {
    let base64url = |part: &str| {
        !part.is_empty()
            && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3 && parts.iter().all(|part| base64url(part))
}

/// What the latest read of a token file gave; `None` before the first read.
pub(super) type Latest = Option<Result<String, TokenFileError>>;

/// Starts the task that reads `path` now and every [`TOKEN_FILE_POLL`],
/// publishing each changed result. It ends with `cancel` or when the
/// receiver is dropped (its session ended).
pub(super) fn watch_token_file(
    path: PathBuf,
    cancel: CancellationToken,
) -> watch::Receiver<Latest> {
    let (sender, receiver) = watch::channel(None);
    tokio::spawn(async move {
        loop {
            let read = read_token_file(&path).await;
            sender.send_if_modified(|latest| {
                let changed = latest.as_ref() != Some(&read);
                *latest = Some(read);
                changed
            });
            tokio::select! {
                () = cancel.cancelled() => return,
                () = sender.closed() => return,
                () = tokio::time::sleep(TOKEN_FILE_POLL) => {}
            }
        }
    });
    receiver
}

/// The claims the source plans with, read without verifying the signature.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnverifiedClaims {
    /// `sub`: the user the token is for.
    pub sub: Option<String>,
    /// `exp`: when it runs out, in seconds since the Unix epoch.
    pub exp: Option<u64>,
}

/// The `sub` and `exp` of a JWT (`header.payload.signature`, base64url
/// JSON), unverified; `None` when the payload cannot be read.
pub fn unverified_claims(token: &str) -> Option<UnverifiedClaims> {
    use base64::Engine as _;
    let payload = token.trim().split('.').nth(1)?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&json).ok()?;
    Some(UnverifiedClaims {
        sub: claims.get("sub").and_then(|sub| sub.as_str()).map(str::to_owned),
        exp: claims.get("exp").and_then(serde_json::Value::as_u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSIsImV4cCI6MTcwMDAwMDAwMH0.c2ln";

    #[test]
    fn claims_are_read_without_a_signature_check() {
        let claims = unverified_claims(TOKEN).unwrap();
        assert_eq!(claims.sub.as_deref(), Some("u1"));
        assert_eq!(claims.exp, Some(1_700_000_000));
        assert_eq!(unverified_claims("not a token"), None);
    }

    #[test]
    fn only_three_base64url_parts_look_like_a_jwt() {
        assert!(looks_like_a_jwt(TOKEN));
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "a..c",
            "-----BEGIN OPENSSH PRIVATE KEY-----",
            "a.b.c d",
            "a.b+.c",
        ] {
            assert!(!looks_like_a_jwt(bad), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_token_file_is_read_trimmed_and_anything_else_is_refused_unshown() {
        let dir = std::env::temp_dir().join(format!("tidings-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
        assert_eq!(read_token_file(&path).await.unwrap(), TOKEN);

        std::fs::write(&path, "ssh-ed25519 AAAAC3Nza secret@host\n").unwrap();
        let error = read_token_file(&path).await.unwrap_err();
        assert_eq!(error, TokenFileError::NotAJwt { path: path.clone() });
        assert!(!error.to_string().contains("AAAAC3Nza"), "{error}");

        std::fs::write(&path, "a".repeat(MAX_TOKEN_FILE_BYTES as usize + 1)).unwrap();
        assert_eq!(
            read_token_file(&path).await.unwrap_err(),
            TokenFileError::TooLarge { path: path.clone() }
        );

        let missing = dir.join("missing");
        let error = read_token_file(&missing).await.unwrap_err();
        assert!(error.to_string().contains("cannot read the token file"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
