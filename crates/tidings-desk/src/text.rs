//! Cleaning text that came from the network before anyone sees it.
//!
//! Removed everywhere (the native notification and everything the core
//! sends to the UI): C0 and C1 control characters (a newline is kept where
//! a text may have lines, and becomes a space where it may not) and the
//! bidirectional overrides and isolates U+202A–U+202E and U+2066–U+2069,
//! which can make `exe.pdf` read as `fdp.exe` or reorder an amount.
//!
//! Notifications are also cut to [`TITLE_MAX_CHARS`] and [`BODY_MAX_CHARS`]
//! characters (on character boundaries, ending in `…`). Escaping for
//! daemons that render markup is the notifier's job (`tidings-notify`): it
//! knows whether the daemon does.
//!
//! The UI gets its strings cleaned here, in the core, as items are built
//! ([`clean_event`]), so the dashboard renders them as they come.

use tidings_events::Event;

use crate::ipc::FeedItem;

/// The longest notification title, in characters.
pub const TITLE_MAX_CHARS: usize = 120;
/// The longest notification body, in characters.
pub const BODY_MAX_CHARS: usize = 500;

/// Whether `c` is removed from text shown to the user (see the module docs).
/// A newline is not: callers decide what becomes of it.
fn removed(c: char) -> bool {
    (c.is_control() && c != '\n') || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `text` without control and bidi-override characters, newlines kept.
pub fn clean_lines(text: &str) -> String {
    if !text.chars().any(removed) {
        return text.to_owned();
    }
    text.chars().filter(|&c| !removed(c)).collect()
}

/// `text` on one line: as [`clean_lines`], with each newline a space.
pub fn clean_line(text: &str) -> String {
    clean_lines(text).replace('\n', " ")
}

/// `text` cut to at most `max` characters, the last of them `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some(_) => {
            let keep = max.saturating_sub(1);
            let end = text.char_indices().nth(keep).map_or(text.len(), |(at, _)| at);
            format!("{}…", &text[..end])
        }
    }
}

/// A notification's title: one line, cleaned, at most [`TITLE_MAX_CHARS`].
pub fn notification_title(text: &str) -> String {
    truncate(clean_line(text).trim(), TITLE_MAX_CHARS)
}

/// A notification's body: cleaned, newlines kept, at most [`BODY_MAX_CHARS`].
pub fn notification_body(text: &str) -> String {
    truncate(clean_lines(text).trim(), BODY_MAX_CHARS)
}

/// Whether a JSON payload may hold a character [`clean_event`] removes:
/// one literally, or any `\u` escape (which may spell one). Most payloads
/// have neither, and skip the slower cleaning.
pub fn may_need_cleaning(payload: &str) -> bool {
    payload.contains("\\u") || payload.chars().any(removed)
}

/// `item`, built from `payload`, with every string of its event and extra
/// fields cleaned; payloads with nothing to clean cost one scan.
pub fn clean_item(item: &mut FeedItem, payload: &[u8]) {
    if !may_need_cleaning(&String::from_utf8_lossy(payload)) {
        return;
    }
    item.event = clean_event(item.event.clone());
    if let Some(extra) = &mut item.extra {
        extra.values_mut().for_each(|value| {
            clean_strings(value);
        });
    }
}

/// `event` with every string in it cleaned ([`clean_lines`]). An event
/// that would not survive the round trip (none should) is kept as it was,
/// and logged.
pub fn clean_event(event: Event) -> Event {
    let Ok(mut value) = serde_json::to_value(&event) else { return event };
    if !clean_strings(&mut value) {
        return event;
    }
    match serde_json::from_value(value) {
        Ok(cleaned) => cleaned,
        Err(error) => {
            tracing::warn!(%error, "an event could not be cleaned of control characters");
            event
        }
    }
}

/// Cleans every string in `value`; true when one changed.
pub fn clean_strings(value: &mut serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(text) if text.chars().any(removed) => {
            *text = clean_lines(text);
            true
        }
        serde_json::Value::Array(items) => {
            items.iter_mut().fold(false, |c, v| clean_strings(v) | c)
        }
        serde_json::Value::Object(map) => map.values_mut().fold(false, |c, v| clean_strings(v) | c),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_overrides_and_isolates_are_removed() {
        let tricky = "invoice\u{202E}fdp.exe\u{202C} \u{2066}a\u{2069} \u{202A}\u{202B}\u{202D}\u{2067}\u{2068}";
        assert_eq!(clean_lines(tricky), "invoicefdp.exe a ");
    }

    #[test]
    fn control_characters_are_removed_and_newlines_kept_in_a_body() {
        assert_eq!(
            clean_lines("a\u{0}b\u{7}c\u{1b}[31md\te\u{85}f\u{9f}\nnext"),
            "abc[31mdef\nnext"
        );
    }

    #[test]
    fn a_title_is_one_line() {
        assert_eq!(notification_title("Low\nstock\r\n"), "Low stock");
    }

    #[test]
    fn a_long_title_is_cut_to_its_length_with_an_ellipsis_on_a_character_boundary() {
        let title = notification_title(&"库".repeat(300));
        assert_eq!(title.chars().count(), TITLE_MAX_CHARS);
        assert!(title.ends_with("库…"));
        assert_eq!(notification_title(&"x".repeat(TITLE_MAX_CHARS)), "x".repeat(TITLE_MAX_CHARS));
    }

    #[test]
    fn a_long_body_is_cut_to_its_length_with_an_ellipsis() {
        let body = notification_body(&"🦀".repeat(BODY_MAX_CHARS + 1));
        assert_eq!(body.chars().count(), BODY_MAX_CHARS);
        assert!(body.ends_with('…'));
    }

    #[test]
    fn every_string_of_an_event_is_cleaned() {
        let json = r#"{"type":"notification","notificationType":"info","title":"a\u202eb","message":"c\u0007d\ne","timestamp":1}"#;
        assert!(may_need_cleaning(json));
        let tidings_events::Decoded::Typed { event, .. } = tidings_events::decode(json.as_bytes())
        else {
            panic!("not typed")
        };
        let Event::Notification(n) = clean_event(event) else { panic!("not a notification") };
        assert_eq!((n.title.as_str(), n.message.as_str()), ("ab", "cd\ne"));
    }

    #[test]
    fn a_plain_payload_skips_the_cleaning() {
        assert!(!may_need_cleaning(r#"{"title":"库存不足 <b>&"}"#));
    }
}
