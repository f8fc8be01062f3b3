//! The one rule for where an item's `actionUrl` may lead. Every place that
//! shows, offers or opens a link asks [`resolve_link`]: the UI's button
//! (through [`crate::ipc::ActionLink`]), the native notification, and the
//! app's opener (`src-tauri` opens only what this returned).
//!
//! The rule, fail closed:
//! - a relative `actionUrl` (`/approvals/123`, `orders/1?tab=x`) is joined
//!   to the ERP base URL (`erpBaseUrl`);
//! - an absolute one opens only when it has the base's scheme, host and
//!   port, or its host is in `trustedHosts`;
//! - refused whatever else holds: any scheme but http(s); user name or
//!   password in the URL (`https://erp.example.com@evil.com/` goes to
//!   evil.com); protocol-relative (`//evil.com`); any backslash
//!   (`/\evil.com`, `\\evil.com`: browsers read `\` as `/`); control
//!   characters (parsers drop tabs and newlines, so `/\t/evil.com` would
//!   become `//evil.com`); http when the base is https (no downgrade).
//!
//! Hosts are compared as the URL parser normalises them (lower case,
//! internationalised names in their `xn--` form), and that form is what the
//! UI and the notification show, so a look-alike name cannot hide.

use url::Url;

/// Why a link is not opened. The messages are shown in the UI as they are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The `actionUrl` is empty or only whitespace.
    #[error("the link is empty")]
    Empty,
    /// The URL parser refused it, or it names no host; the parser's reason.
    #[error("the link is not a valid URL ({0})")]
    Invalid(String),
    /// Its scheme (given) is neither http nor https.
    #[error("the link uses {0}:, and only http and https links are opened")]
    NotHttp(String),
    /// It carries a user name or password.
    #[error("the link carries a user name or password, which can disguise where it goes")]
    Credentials,
    /// It starts with `//`, naming another host.
    #[error("the link starts with // and would leave the ERP for another host")]
    ProtocolRelative,
    /// It contains a backslash.
    #[error("the link contains a backslash, which browsers read as / to reach another host")]
    Backslash,
    /// It contains control characters (tabs, newlines and the like).
    #[error("the link contains control characters")]
    Control,
    /// It is http while the ERP base URL is https.
    #[error("the link would downgrade https to http")]
    Downgrade,
    /// Its host is neither the ERP's nor in `trustedHosts`.
    #[error(
        "the link goes to {host}, which is neither the ERP ({base}) nor a trusted host; add it to trustedHosts in Settings to allow it"
    )]
    Untrusted {
        /// The link's host (with the port when not the default), as shown.
        host: String,
        /// The ERP base URL's host (port as for `host`), or `none set`.
        base: String,
    },
    /// It is relative and the ERP base URL (given) is not a usable http(s) URL.
    #[error(
        "relative links need an ERP base URL (http or https), and {0:?} is not one; set erpBaseUrl in Settings"
    )]
    NoBase(String),
}

/// Where `raw` (an item's `actionUrl`) leads, if the app may open it: see
/// the module docs for the rule. `base` is the ERP base URL; `trusted` the
/// extra hosts (`host`, or `host:port` for a port other than the scheme's
/// default), compared without case.
pub fn resolve_link(raw: &str, base: &str, trusted: &[String]) -> Result<Url, LinkError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(LinkError::Empty);
    }
    if raw.contains('\\') {
        return Err(LinkError::Backslash);
    }
    if raw.chars().any(char::is_control) {
        return Err(LinkError::Control);
    }
    if raw.starts_with("//") {
        return Err(LinkError::ProtocolRelative);
    }
    let base_url = parse_base(base);
    let url = match Url::parse(raw) {
        Ok(url) => url,
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            let base_url = base_url.clone().map_err(|()| LinkError::NoBase(base.to_owned()))?;
            base_url.join(raw).map_err(|error| LinkError::Invalid(error.to_string()))?
        }
        Err(error) => return Err(LinkError::Invalid(error.to_string())),
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Err(LinkError::NotHttp(url.scheme().to_owned()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(LinkError::Credentials);
    }
    let Some(host) = url.host_str() else {
        return Err(LinkError::Invalid("it names no host".into()));
    };
    if let Ok(base_url) = &base_url {
        if base_url.scheme() == "https" && url.scheme() == "http" {
            return Err(LinkError::Downgrade);
        }
        if url.scheme() == base_url.scheme()
            && Some(host) == base_url.host_str()
            && url.port_or_known_default() == base_url.port_or_known_default()
        {
            return Ok(url);
        }
    }
    let shown = host_of(&url);
    if trusted.iter().any(|entry| entry.trim().eq_ignore_ascii_case(&shown)) {
        return Ok(url);
    }
    Err(LinkError::Untrusted {
        host: shown,
        base: base_url.map_or_else(|()| "none set".to_owned(), |b| host_of(&b)),
    })
}

/// The ERP base URL, when it is one: http(s), a host, no credentials.
fn parse_base(base: &str) -> Result<Url, ()> {
    let url = Url::parse(base.trim()).map_err(|_| ())?;
    let usable = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some()
        && url.username().is_empty()
        && url.password().is_none();
    if usable { Ok(url) } else { Err(()) }
}

/// What the user is shown as a link's destination: its host, with the port
/// when it is not the scheme's default (`erp.example.com`,
/// `erp.example.com:8443`).
pub fn host_of(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://erp.example.com/app/";

    fn resolve(raw: &str) -> Result<String, LinkError> {
        resolve_link(raw, BASE, &["wiki.example.com".to_owned()]).map(String::from)
    }

    #[test]
    fn a_relative_link_joins_the_erp_base() {
        assert_eq!(resolve("/approvals/123").unwrap(), "https://erp.example.com/approvals/123");
        assert_eq!(
            resolve("orders/1?tab=lines").unwrap(),
            "https://erp.example.com/app/orders/1?tab=lines"
        );
        assert_eq!(resolve("?page=2").unwrap(), "https://erp.example.com/app/?page=2");
    }

    #[test]
    fn an_absolute_link_to_the_erp_itself_opens() {
        assert_eq!(
            resolve(" HTTPS://ERP.example.com:443/orders/42#x ").unwrap(),
            "https://erp.example.com/orders/42#x"
        );
    }

    #[test]
    fn an_absolute_link_to_a_trusted_host_opens() {
        assert_eq!(resolve("https://WIKI.example.com/p").unwrap(), "https://wiki.example.com/p");
    }

    #[test]
    fn an_absolute_link_to_any_other_host_is_refused() {
        assert_eq!(
            resolve("https://evil.com/login"),
            Err(LinkError::Untrusted { host: "evil.com".into(), base: "erp.example.com".into() })
        );
        assert!(matches!(
            resolve("https://erp.example.com.evil.com/"),
            Err(LinkError::Untrusted { .. })
        ));
    }

    #[test]
    fn the_erp_host_on_another_port_is_another_destination() {
        assert_eq!(
            resolve("https://erp.example.com:8443/x"),
            Err(LinkError::Untrusted {
                host: "erp.example.com:8443".into(),
                base: "erp.example.com".into()
            })
        );
        let trusted = ["erp.example.com:8443".to_owned()];
        assert!(resolve_link("https://erp.example.com:8443/x", BASE, &trusted).is_ok());
    }

    #[test]
    fn a_link_with_credentials_is_refused() {
        assert_eq!(resolve("https://erp.example.com@evil.com/"), Err(LinkError::Credentials));
        assert_eq!(resolve("https://user:pw@erp.example.com/"), Err(LinkError::Credentials));
    }

    #[test]
    fn a_protocol_relative_link_is_refused() {
        assert_eq!(resolve("//evil.com"), Err(LinkError::ProtocolRelative));
        assert_eq!(resolve("///evil.com"), Err(LinkError::ProtocolRelative));
        assert_eq!(resolve("  //evil.com/x"), Err(LinkError::ProtocolRelative));
    }

    #[test]
    fn a_link_with_a_backslash_is_refused() {
        for link in
            ["/\\evil.com", "\\\\evil.com", "\\/evil.com", "https://erp.example.com\\@evil.com"]
        {
            assert_eq!(resolve(link), Err(LinkError::Backslash), "{link}");
        }
    }

    #[test]
    fn a_link_with_control_characters_is_refused() {
        assert_eq!(resolve("/\t/evil.com"), Err(LinkError::Control));
        assert_eq!(resolve("/\n/evil.com"), Err(LinkError::Control));
    }

    #[test]
    fn https_is_never_downgraded_to_http() {
        assert_eq!(resolve("http://erp.example.com/orders/1"), Err(LinkError::Downgrade));
        assert_eq!(resolve("http://wiki.example.com/p"), Err(LinkError::Downgrade));
    }

    #[test]
    fn an_http_base_opens_its_own_http_links() {
        let base = "http://127.0.0.1:3000";
        assert_eq!(
            resolve_link("/orders/1", base, &[]).unwrap().as_str(),
            "http://127.0.0.1:3000/orders/1"
        );
        assert!(resolve_link("http://127.0.0.1:3000/x", base, &[]).is_ok());
        assert!(matches!(
            resolve_link("http://127.0.0.1:4000/x", base, &[]),
            Err(LinkError::Untrusted { .. })
        ));
    }

    #[test]
    fn links_that_are_not_http_are_refused() {
        for link in
            ["javascript:alert(1)", "file:///etc/passwd", "erp://orders/1", "data:text/html,x"]
        {
            assert!(matches!(resolve(link), Err(LinkError::NotHttp(_))), "{link}");
        }
    }

    #[test]
    fn a_relative_link_without_a_usable_base_is_refused() {
        assert!(matches!(resolve_link("/orders/1", "", &[]), Err(LinkError::NoBase(_))));
        assert!(matches!(
            resolve_link("/orders/1", "https://u:p@erp.example.com", &[]),
            Err(LinkError::NoBase(_))
        ));
    }

    #[test]
    fn a_look_alike_host_is_shown_in_its_ascii_form() {
        let error = resolve("https://еrp.example.com/").unwrap_err(); // Cyrillic е
        assert!(error.to_string().contains("xn--"), "{error}");
    }
}
