//! HAProxy in `mode tcp`: the reference for the cheapest possible proxy hop.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Result;

use crate::process::Service;

/// The HAProxy configuration: one TCP listener relaying to `upstream`, no health checks, as
/// many threads as CPUs (HAProxy's default, like the gateway's `[io] threads = 0`).
pub fn config(listen: SocketAddr, upstream: SocketAddr, max_connections: usize) -> String {
    format!(
        "global\n\
         \x20   maxconn {max_connections}\n\
         defaults\n\
         \x20   mode tcp\n\
         \x20   timeout connect 5s\n\
         \x20   timeout client 1h\n\
         \x20   timeout server 1h\n\
         listen mysql\n\
         \x20   bind {listen}\n\
         \x20   maxconn {max_connections}\n\
         \x20   server db {upstream}\n"
    )
}

/// Starts HAProxy in the foreground (`-db`: no daemon, no master process, so the child's pid
/// is the process doing the relaying) and waits until it listens. `name` names its config and
/// log in `dir`.
pub fn start(
    dir: &Path,
    name: &str,
    listen: SocketAddr,
    upstream: SocketAddr,
    max_connections: usize,
) -> Result<Service> {
    let cfg = dir.join(format!("{name}.cfg"));
    std::fs::write(&cfg, config(listen, upstream, max_connections))?;
    let mut service = Service::spawn_logged(
        name,
        Command::new("haproxy").arg("-db").arg("-f").arg(&cfg),
        &dir.join(format!("{name}.log")),
    )?;
    service.wait_listening(listen, Duration::from_secs(10))?;
    Ok(service)
}
