//! The desktop a test's app runs on: its own X display (Xvfb), its own
//! D-Bus session bus, and the notification sink that owns
//! `org.freedesktop.Notifications` on that bus and records every `Notify`.

use std::time::Duration;

use anyhow::Context;
use tidings_notify::sink::{NotifyCall, SinkOptions, SinkRecord};
use tidings_notify::testing::{NotificationSink, PrivateSessionBus};

use crate::xvfb::Xvfb;

/// Whether a notification names `text` in its summary or its body (a
/// summary is often generic, "Approval requested", and the body names the
/// item).
pub fn mentions(call: &NotifyCall, text: &str) -> bool {
    call.summary.contains(text) || call.body.contains(text)
}

/// Display, session bus and notification sink of one test.
#[derive(Debug)]
pub struct Desktop {
    // Field order is drop order: the sink leaves the bus before it stops.
    sink: NotificationSink,
    bus: PrivateSessionBus,
    xvfb: Xvfb,
}

impl Desktop {
    /// A desktop whose notification sink only records.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(SinkOptions::default())
    }

    /// A desktop whose sink behaves as `options` say (e.g. clicks).
    pub fn start_with(options: SinkOptions) -> anyhow::Result<Self> {
        let xvfb = Xvfb::start()?;
        let bus = PrivateSessionBus::start().context("starting a private D-Bus session bus")?;
        let sink = NotificationSink::start_with(&bus, options)
            .context("starting the notification sink on the private bus")?;
        Ok(Self { sink, bus, xvfb })
    }

    /// The Xvfb display name, for `DISPLAY` (e.g. `:99`).
    pub fn display(&self) -> &str {
        self.xvfb.display()
    }

    /// The private session bus's address, for `DBUS_SESSION_BUS_ADDRESS`.
    pub fn bus_address(&self) -> &str {
        self.bus.address()
    }

    /// Waits for a `Notify` call that `wanted` accepts.
    pub fn wait_for_notification(
        &self,
        timeout: Duration,
        wanted: impl FnMut(&NotifyCall) -> bool,
    ) -> anyhow::Result<NotifyCall> {
        self.sink.wait_for_notify(timeout, wanted).map_err(anyhow::Error::msg)
    }

    /// Waits until the app closes notification `id` (`CloseNotification`).
    pub fn wait_for_close(&self, timeout: Duration, id: u32) -> anyhow::Result<()> {
        let closed = |record: &SinkRecord| matches!(record, SinkRecord::CloseNotification { id: closed } if *closed == id);
        anyhow::ensure!(
            self.sink.wait_for_record(timeout, closed).is_some(),
            "notification {id} was not closed within {timeout:?}"
        );
        Ok(())
    }

    /// Every `Notify` call so far, oldest first.
    pub fn notifications(&self) -> Vec<NotifyCall> {
        self.sink.records().iter().filter_map(|record| record.as_notify().cloned()).collect()
    }
}
