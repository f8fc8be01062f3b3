//! Child processes a test owns (Xvfb, tauri-driver, the gateway): each is
//! killed by its own PID (or, for a process tree such as tauri-driver →
//! WebKitWebDriver → app → WebKit processes, by the process group it was
//! started in) when its owner is dropped, never by name, so a test run stops
//! exactly what it started.

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A spawned child process, killed (SIGKILL, by PID) and reaped on drop.
#[derive(Debug)]
pub struct OwnedChild {
    name: &'static str,
    child: Option<Child>,
    /// Whether the child leads its own process group, killed as a whole.
    group: bool,
}

impl OwnedChild {
    /// Spawns `command`; `name` is what errors call it.
    pub fn spawn(name: &'static str, command: &mut Command) -> anyhow::Result<Self> {
        let child = command.spawn().with_context(|| {
            format!("could not start {name} ({:?}); is it installed? scripts/setup.sh installs what the end-to-end tests need", command.get_program())
        })?;
        Ok(Self { name, child: Some(child), group: false })
    }

    /// Spawns `command` as the leader of a new process group; dropping the
    /// result kills the whole group (the child and everything it started
    /// that stayed in the group).
    pub fn spawn_group(name: &'static str, command: &mut Command) -> anyhow::Result<Self> {
        use std::os::unix::process::CommandExt;
        command.process_group(0);
        let mut child = Self::spawn(name, command)?;
        child.group = true;
        Ok(child)
    }

    /// Takes the child's piped stdout (once).
    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.as_mut().and_then(|child| child.stdout.take())
    }

    /// The process id; `None` once it has been killed or terminated.
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Fails if the process has already exited (it should still be serving).
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        let name = self.name;
        if let Some(child) = self.child.as_mut()
            && let Some(status) = child.try_wait()?
        {
            bail!("{name} exited early with {status}; its log is in the test's artifacts");
        }
        Ok(())
    }

    /// Kills the process now and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            if self.group {
                // The group id is the leader's PID.
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .stderr(std::process::Stdio::null())
                    .status();
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Asks the process to stop (SIGTERM), waiting up to `grace` before
    /// killing it; returns whether it stopped on its own.
    pub fn terminate(&mut self, grace: Duration) -> bool {
        let Some(mut child) = self.child.take() else { return true };
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }
}

impl Drop for OwnedChild {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until something accepts TCP connections on `address`, while
/// `still_starting` says the server process is alive.
pub fn wait_for_port(
    address: SocketAddr,
    timeout: Duration,
    what: &str,
    mut still_starting: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        still_starting()?;
        if Instant::now() >= deadline {
            bail!("{what} did not listen on {address} within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A loopback TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    tidings_testkit::free_port()
}
