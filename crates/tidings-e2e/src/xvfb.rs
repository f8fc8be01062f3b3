//! A private X display for one test: `Xvfb` on the first free display
//! number, which it reports through `-displayfd`, so tests never share a
//! screen and need no `xvfb-run` around them; [`capture_png`] takes
//! screenshots of it.

use std::io::{BufRead, BufReader};
use std::path::Path;
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

/// Saves what display `display` shows (the whole screen: the app's real
/// window as X draws it) as a PNG at `path`.
///
/// Taken over the X protocol rather than with WebDriver's screenshot
/// command, which WebKitWebDriver (WebKitGTK 2.50) never answers under
/// Xvfb; a picture of the real window is what a test artifact should be
/// anyway.
pub fn capture_png(display: &str, path: &Path) -> anyhow::Result<()> {
    use x11rb::connection::Connection;
    use x11rb::protocol::xproto::{ConnectionExt, ImageFormat, ImageOrder};

    let (connection, screen_number) = x11rb::connect(Some(display))
        .with_context(|| format!("connecting to X display {display} for a screenshot"))?;
    let setup = connection.setup();
    let screen = &setup.roots[screen_number];
    let (width, height) = (screen.width_in_pixels, screen.height_in_pixels);
    let image = connection
        .get_image(ImageFormat::Z_PIXMAP, screen.root, 0, 0, width, height, u32::MAX)?
        .reply()
        .context("reading the screen's pixels")?;
    let bits_per_pixel = setup
        .pixmap_formats
        .iter()
        .find(|format| format.depth == image.depth)
        .map(|format| format.bits_per_pixel);
    // Xvfb's `-screen 0 WxHx24` (see SCREEN) stores pixels as 32-bit
    // little-endian words 0x00RRGGBB, rows unpadded; anything else would
    // need a real image library.
    if bits_per_pixel != Some(32) || setup.image_byte_order != ImageOrder::LSB_FIRST {
        bail!(
            "the X screen stores {bits_per_pixel:?} bits per pixel, byte order {:?}; screenshots expect 32, LSB first (Xvfb -screen 0 {SCREEN})",
            setup.image_byte_order
        );
    }
    let mut rgb = Vec::with_capacity(usize::from(width) * usize::from(height) * 3);
    for pixel in image.data.chunks_exact(4) {
        rgb.extend_from_slice(&[pixel[2], pixel[1], pixel[0]]);
    }
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width.into(), height.into());
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder
        .write_header()
        .and_then(|mut writer| writer.write_image_data(&rgb))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
