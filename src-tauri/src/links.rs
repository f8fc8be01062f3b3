//! Opening an item's action link in the user's browser. The desktop core
//! resolves the link (a relative `actionUrl` joined to the ERP base URL);
//! this is the last gate before the system opener, and it lets only http(s)
//! through, whatever the core or the network produced.
//!
//! With `TIDINGS_RECORD_OPENED=/path/file` set, the URL is appended to that
//! file as one line instead of launching a browser; the end-to-end tests
//! read it.

use std::io::Write;

use tauri::{AppHandle, Url};
use tauri_plugin_opener::OpenerExt;

/// The variable that turns opening into recording.
pub const RECORD_OPENED_ENV: &str = "TIDINGS_RECORD_OPENED";

/// Why a link was not opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LinkError {
    #[error("the link {link:?} uses {scheme}:, and only http and https links are opened")]
    NotHttp { link: String, scheme: String },
    #[error("the link {link:?} is not an absolute URL: {reason}")]
    Invalid { link: String, reason: String },
    #[error("could not open {url}: {reason}")]
    Open { url: String, reason: String },
}

/// `link` as a URL the app may open: absolute, http or https.
pub fn checked(link: &str) -> Result<Url, LinkError> {
    let url = Url::parse(link.trim())
        .map_err(|error| LinkError::Invalid { link: link.to_owned(), reason: error.to_string() })?;
    if matches!(url.scheme(), "http" | "https") {
        Ok(url)
    } else {
        Err(LinkError::NotHttp { link: link.to_owned(), scheme: url.scheme().to_owned() })
    }
}

/// Opens `link` in the default browser (or records it, see the module
/// docs) if it passes [`checked`].
pub fn open(app: &AppHandle, link: &str) -> Result<(), LinkError> {
    let url = checked(link)?;
    let fail = |reason: String| LinkError::Open { url: url.to_string(), reason };
    if let Some(path) = std::env::var_os(RECORD_OPENED_ENV) {
        let mut file =
            std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(|error| {
                fail(format!("recording to {}: {error}", path.to_string_lossy()))
            })?;
        return writeln!(file, "{url}").map_err(|error| fail(error.to_string()));
    }
    app.opener().open_url(url.as_str(), None::<&str>).map_err(|error| fail(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absolute_http_or_https_link_passes_as_it_is() {
        assert_eq!(
            checked("https://erp.example.com/orders/42?tab=lines").unwrap().as_str(),
            "https://erp.example.com/orders/42?tab=lines"
        );
        assert_eq!(
            checked(" http://wiki.example.com/p#x ").unwrap().as_str(),
            "http://wiki.example.com/p#x"
        );
    }

    #[test]
    fn links_that_are_not_http_are_refused() {
        for link in
            ["javascript:alert(1)", "file:///etc/passwd", "erp://orders/1", "data:text/html,x"]
        {
            assert!(
                matches!(checked(link), Err(LinkError::NotHttp { .. })),
                "{link} must be refused"
            );
        }
    }

    #[test]
    fn a_relative_link_is_refused_here_the_core_resolves_it() {
        let error = checked("/orders/1").unwrap_err();
        assert!(matches!(error, LinkError::Invalid { .. }), "{error}");
    }
}
