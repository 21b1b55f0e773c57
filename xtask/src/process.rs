//! Child processes the xtask starts (gateway, HAProxy) and what `/proc` says about a process:
//! CPU time, resident memory, peak resident memory.

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// A long-running child process, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Service {
    name: String,
    child: Child,
    log: Option<PathBuf>,
}

impl Service {
    /// Starts `cmd` with stdout and stderr written to `log`.
    pub fn spawn_logged(name: &str, cmd: &mut Command, log: &Path) -> Result<Service> {
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let child = detach_from_terminal(cmd)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {name} ({cmd:?})"))?;
        Ok(Service {
            name: name.to_owned(),
            child,
            log: Some(log.to_owned()),
        })
    }

    /// Starts `cmd` writing to this terminal.
    pub fn spawn_foreground(name: &str, cmd: &mut Command) -> Result<Service> {
        let child = detach_from_terminal(cmd)
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {name} ({cmd:?})"))?;
        Ok(Service {
            name: name.to_owned(),
            child,
            log: None,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(description)` once the process has exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(e.to_string()),
        }
    }

    /// Waits until `addr` accepts TCP connections; fails (with the end of the log) if the
    /// process exits first or `timeout` passes.
    pub fn wait_listening(&mut self, addr: SocketAddr, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                bail!("{} exited ({status}){}", self.name, self.log_tail());
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not listen on {addr} within {timeout:?}{}",
                    self.name,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last lines of the log, prefixed for appending to an error message.
    pub fn log_tail(&self) -> String {
        let Some(log) = &self.log else {
            return String::new();
        };
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(15)..].join("\n");
        if tail.is_empty() {
            format!(" (log {} is empty)", log.display())
        } else {
            format!("; end of {}:\n{tail}", log.display())
        }
    }

    /// Asks the process to stop (SIGTERM), and kills it if it is still there after 3 s.
    pub fn stop(&mut self) {
        if self.exited().is_some() {
            return;
        }
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) on our own child, which has not been reaped yet (try_wait said so),
        // so the pid cannot have been reused.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Puts the child in its own process group, so a Ctrl-C in the terminal reaches only the
/// xtask, which then stops its children in order; and has the kernel send the child SIGTERM
/// if the xtask dies without doing so.
fn detach_from_terminal(cmd: &mut Command) -> &mut Command {
    cmd.process_group(0);
    // SAFETY: the closure runs between fork and exec and only calls prctl, which is
    // async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        })
    }
}

/// CPU time (user + system, all threads) a process has used so far: `utime + stime` from
/// `/proc/PID/stat`, in clock-tick resolution (10 ms on most kernels).
pub fn cpu_time(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may contain spaces; fields after it are space-separated.
    let after_name = &stat[stat.rfind(')').context("malformed /proc/PID/stat")? + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    // Field 3 (state) is fields[0]; utime is field 14, stime field 15.
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Ok(Duration::from_micros(ticks * 1_000_000 / hz))
}

/// A `kB` field of `/proc/PID/status` (`VmRSS`, `VmHWM`, ...), in KiB.
pub fn status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))
        .with_context(|| format!("no {field} in /proc/{pid}/status"))?;
    let value = line[field.len() + 1..].trim().trim_end_matches("kB").trim();
    Ok(value.parse()?)
}

/// Resets the process's peak RSS (`VmHWM`) to its current RSS, so the next reading is the peak
/// of the window that starts now. Needs to own the process or be root; false if it failed.
pub fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// Raises this process's open-file limit to the hard limit (children inherit it): the idle
/// workload holds thousands of sockets.
pub fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Runs a command to completion with `input` on its stdin; returns its trimmed stdout, or an
/// error with its exit status and stderr.
pub fn output(cmd: &mut Command, input: &str) -> Result<String> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {cmd:?}"))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    // A program that exits without reading its input is not an error here; its status says.
    let _ = std::io::Write::write_all(&mut stdin, input.as_bytes());
    drop(stdin);
    let out = child.wait_with_output()?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        bail!("{cmd:?} failed ({}) {}", out.status, stderr.trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
