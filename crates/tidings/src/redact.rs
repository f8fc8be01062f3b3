//! Connection URLs made safe to print: the password (and a gateway token in
//! the query) is replaced by `***`, everything else is kept so a person can
//! still tell which server is meant.

/// `url` with its password and any `token` query value hidden. Text that is
/// not a URL is returned with everything between `://` and the last `@`
/// hidden, in case it still carries credentials.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                // Only fails for URLs that cannot have credentials at all.
                let _ = parsed.set_password(Some("***"));
            }
            let has_token = parsed.query_pairs().any(|(key, _)| key == "token");
            if has_token {
                let pairs: Vec<(String, String)> = parsed
                    .query_pairs()
                    .map(|(key, value)| {
                        let value = if key == "token" { "***".into() } else { value.into_owned() };
                        (key.into_owned(), value)
                    })
                    .collect();
                parsed.query_pairs_mut().clear().extend_pairs(pairs);
            }
            parsed.to_string()
        }
        Err(_) => match (url.find("://"), url.rfind('@')) {
            (Some(start), Some(end)) if end > start + 3 => {
                format!("{}***{}", &url[..start + 3], &url[end..])
            }
            _ => url.to_owned(),
        },
    }
}

/// `scheme://user:password@rest` cut around the password: what comes
/// before it (up to and with the `:`), the password as written, and what
/// follows (from the `@`); `None` without a `user:password@` part. By hand,
/// not with the `url` crate, which refuses a Sentinel URL's host list
/// (`h1:26379,h2:26379`) whose password must be hidden all the same. The
/// desktop's settings use it to mask a password and put it back.
pub fn split_password(url: &str) -> Option<(&str, &str, &str)> {
    let start = url.find("://")? + 3;
    let authority_end = url[start..].find('/').map_or(url.len(), |end| start + end);
    let at = start + url[start..authority_end].rfind('@')?;
    let colon = start + url[start..at].find(':')?;
    Some((&url[..=colon], &url[colon + 1..at], &url[at..]))
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_hidden_and_the_rest_is_kept() {
        assert_eq!(redact_url("redis://:s3cret@127.0.0.1:6379"), "redis://:***@127.0.0.1:6379");
        assert_eq!(
            redact_url("rediss://alice:s3cret@redis.example.com:6380/2"),
            "rediss://alice:***@redis.example.com:6380/2"
        );
    }

    #[test]
    fn urls_without_credentials_are_unchanged() {
        assert_eq!(redact_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }

    #[test]
    fn gateway_tokens_in_the_query_are_hidden() {
        assert_eq!(
            redact_url("ws://127.0.0.1:8080/ws?token=abc.def.ghi&x=1"),
            "ws://127.0.0.1:8080/ws?token=***&x=1"
        );
    }

    #[test]
    fn unparsable_text_with_an_at_sign_loses_what_precedes_it() {
        assert_eq!(redact_url("redis://:pa ss@host:bad"), "redis://***@host:bad");
    }
}
