//! A private X display for one test: `Xvfb` on the first free display
//! number, which it reports through `-displayfd`, so tests never share a
//! screen and need no `xvfb-run` around them.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use crate::process::OwnedChild;

/// The screen the app's window gets; large enough for the dashboard.
const SCREEN: &str = "1280x900x24";

/// A running `Xvfb`; stopped when dropped.
#[derive(Debug)]
pub struct Xvfb {
    display: String,
    _server: OwnedChild,
}

impl Xvfb {
    /// Starts Xvfb and returns once it accepts clients.
    pub fn start() -> anyhow::Result<Self> {
        let mut command = Command::new("Xvfb");
        command
            // Xvfb writes the display number it picked to this fd, once
            // it is ready for clients.
            .args(["-displayfd", "1", "-screen", "0", SCREEN, "-nolisten", "tcp", "-noreset"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut server = OwnedChild::spawn("Xvfb (Debian package xvfb)", &mut command)?;
        let stdout = server.take_stdout().context("Xvfb's stdout is piped")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).context("reading Xvfb's display number")?;
        let number = line.trim();
        if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit()) {
            bail!(
                "Xvfb did not report a display number (it printed {line:?}); is another X server misconfigured?"
            );
        }
        Ok(Self { display: format!(":{number}"), _server: server })
    }

    /// The value for `DISPLAY`, e.g. `:99`.
    pub fn display(&self) -> &str {
        &self.display
    }
}
