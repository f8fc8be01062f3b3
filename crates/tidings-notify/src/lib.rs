//! Native desktop notifications for Tidings, and the D-Bus fixture that
//! proves they are really sent.
//!
//! The desktop core (`tidings-desk`) decides *what* to tell the user and
//! hands a [`tidings_desk::notify::NotificationRequest`] to a
//! [`tidings_desk::notify::Notifier`]. This crate is the Linux/freedesktop
//! implementation of that seam; it does not depend on Tauri, so it builds and
//! tests without a webview.
//!
//! Module map:
//! - [`native`]: [`NativeNotifier`], built on notify-rust directly (not the
//!   Tauri plugin, which drops the handle): urgency, resident approval
//!   requests, replacement by key, and clicks reported back as
//!   [`tidings_desk::notify::NotificationResponse`]s on a bounded channel.
//! - [`sink`] (feature `sink`, never on in the app): a stand-in notification
//!   daemon (`org.freedesktop.Notifications`) that records every call as a
//!   JSON line and can play a user clicking.
//!   The `notification-sink` binary runs it on a bus for scripts and
//!   end-to-end tests.
//! - [`testing`] (feature `sink`): what Rust tests use: a private `dbus-daemon`
//!   ([`testing::PrivateSessionBus`]), the sink running on it
//!   ([`testing::NotificationSink`]) and a way to run code in a child process
//!   whose session bus is the private one.
//!
//! ## Simulated clicks
//!
//! With [`sink::SinkOptions::click_when_contains`] (the binary's
//! `--click-when-contains TEXT`), every `Notify` whose summary or body
//! contains `TEXT` is "clicked": the sink emits `ActionInvoked(id, "default")`,
//! addressed to the caller's connection the way dunst does, 100 ms after the
//! call and then again every 200 ms, until the notification is closed or
//! replaced, for at most 5 s. The repetition is deliberate: notify-rust only
//! starts listening for `ActionInvoked` after `Notify` has returned, so a
//! single early click could race it, while a person clicks many times slower.
//! A client that already got the click simply ignores the repeats.

pub mod native;
#[cfg(feature = "sink")]
pub mod sink;
#[cfg(feature = "sink")]
pub mod testing;

pub use native::NativeNotifier;
