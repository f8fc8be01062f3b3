//! `tidings token`: signs an HS256 JWT that the gateway accepts, for
//! development, scripts and the run command (production tokens come from the
//! ERP's login). The claims are the ones protocol.md §2 names: `sub` (the
//! user id), an optional `channels` list, and `exp`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::cli::TokenArgs;
use crate::exit::Exit;

#[derive(Debug, Serialize)]
struct Claims<'a> {
    sub: &'a str,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    channels: Option<&'a [String]>,
}

/// Prints the token on stdout, alone on its line, so `$(tidings token …)` works.
pub(crate) fn run(args: &TokenArgs) -> anyhow::Result<Exit> {
    let Some(secret) = args.jwt_secret.as_deref().filter(|secret| !secret.is_empty()) else {
        eprintln!(
            "error: no secret to sign with; pass --jwt-secret or set TIDINGS_JWT_SECRET (the gateway's secret)"
        );
        return Ok(Exit::BadInput);
    };
    println!("{}", sign(secret, args.user.as_str(), args.ttl, args.channels.as_deref())?);
    Ok(Exit::Success)
}

fn sign(
    secret: &str,
    user: &str,
    ttl: Duration,
    channels: Option<&[String]>,
) -> anyhow::Result<String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let claims = Claims { sub: user, exp: now + ttl.as_secs().max(1), channels };
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use tidings_events::Channel;
    use tidings_gateway::Authenticator;

    use super::*;

    #[test]
    fn a_signed_token_is_accepted_by_the_gateway_for_that_user() {
        let token = sign("s3cret", "u7", Duration::from_secs(60), None).unwrap();
        let grant = Authenticator::new(b"s3cret").verify(Some(&token)).unwrap();
        assert_eq!(grant.user().map(|user| user.as_str()), Some("u7"));
        assert!(grant.check(&Channel::parse("user:u7:notifications").unwrap()).is_ok());
        assert!(grant.check(&Channel::parse("user:u8:notifications").unwrap()).is_err());
    }

    #[test]
    fn a_channels_list_narrows_what_the_token_grants() {
        let channels = vec!["inventory".to_owned()];
        let token = sign("s3cret", "u7", Duration::from_secs(60), Some(&channels)).unwrap();
        let grant = Authenticator::new(b"s3cret").verify(Some(&token)).unwrap();
        assert!(grant.check(&Channel::Inventory).is_ok());
        assert!(grant.check(&Channel::Orders).is_err());
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let token = sign("other", "u7", Duration::from_secs(60), None).unwrap();
        assert!(Authenticator::new(b"s3cret").verify(Some(&token)).is_err());
    }
}
