//! The paths from the load generator to MariaDB: direct, through HAProxy, through the gateway
//! on each I/O driver; starting their relay processes and checking them.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use gatehouse_tests::{free_port, MariaDb, APP_PASSWORD, APP_USER};
use serde::Serialize;

use super::workloads::Endpoint;
use super::{haproxy, Settings};
use crate::gateway::{self, GatewaySetup};
use crate::process::Service;

/// One way from the clients to MariaDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathKind {
    /// Straight to MariaDB.
    Direct,
    /// Through HAProxy in `mode tcp`.
    Haproxy,
    /// Through the gateway on its epoll driver.
    GatewayEpoll,
    /// Through the gateway on its io_uring driver.
    GatewayUring,
}

impl PathKind {
    pub(super) const ALL: [PathKind; 4] = [
        PathKind::Direct,
        PathKind::Haproxy,
        PathKind::GatewayEpoll,
        PathKind::GatewayUring,
    ];

    /// The name used in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            PathKind::Direct => "direct",
            PathKind::Haproxy => "haproxy",
            PathKind::GatewayEpoll => "gateway-epoll",
            PathKind::GatewayUring => "gateway-uring",
        }
    }

    /// The gateway's `--io` mode; `None` for the other paths.
    pub fn io_mode(self) -> Option<&'static str> {
        match self {
            PathKind::GatewayEpoll => Some("epoll"),
            PathKind::GatewayUring => Some("uring"),
            PathKind::Direct | PathKind::Haproxy => None,
        }
    }
}

/// The identity clients log in as through the gateway, and its password.
const BENCH_IDENTITY: &str = "bench";
const BENCH_PASSWORD: &str = "bench-Secret-7";

/// A path ready to measure (or why it is not).
pub(super) struct Path {
    pub(super) kind: PathKind,
    /// Where clients connect, or why the path is unusable.
    pub(super) endpoint: Result<Endpoint, String>,
    /// The process relaying (HAProxy, the gateway); none for direct.
    service: Option<Service>,
}

impl Path {
    /// The relay process's id.
    pub(super) fn pid(&self) -> Option<u32> {
        self.service.as_ref().map(Service::pid)
    }

    /// `Err` if the path failed to start, or its process has died since.
    pub(super) fn ready(&mut self) -> Result<&Endpoint, String> {
        if let Some(service) = self.service.as_mut() {
            if let Some(status) = service.exited() {
                let error = format!(
                    "{} exited ({status}){}",
                    self.kind.name(),
                    service.log_tail()
                );
                self.endpoint = Err(error);
                self.service = None;
            }
        }
        self.endpoint.as_ref().map_err(Clone::clone)
    }
}

/// Builds the gateway (unless `--gateway-bin`) and hashes the bench identity's secret.
pub(super) fn prepare_gateway(gateway_bin: Option<&std::path::Path>) -> Result<(PathBuf, String)> {
    let bin = match gateway_bin {
        Some(bin) => bin.to_owned(),
        None => {
            eprintln!("building the gateway: cargo build --release -p gatehouse");
            gateway::build(true)?
        }
    };
    let secret = gateway::hash_secret(&bin, BENCH_PASSWORD)?;
    Ok((bin, secret))
}

/// Starts a path's relay process (HAProxy, a gateway) on a fresh port.
pub(super) struct Launcher<'a> {
    pub(super) db: &'a MariaDb,
    /// Where configs and logs go.
    pub(super) run_dir: &'a std::path::Path,
    /// The gateway binary and the bench identity's secret, when a gateway path is asked for.
    pub(super) gateway: Option<Result<(PathBuf, String), String>>,
    pub(super) settings: &'a Settings,
}

impl Launcher<'_> {
    /// Starts `kind` and checks that the load phase's tables are visible through it.
    pub(super) fn start(&self, kind: PathKind, rt: &tokio::runtime::Runtime) -> Path {
        let started = self
            .launch(kind, kind.name())
            .and_then(|(endpoint, service)| {
                let check = rt.block_on(async {
                    tokio::time::timeout(Duration::from_secs(20), endpoint.check()).await
                });
                let tail = || service.as_ref().map(Service::log_tail).unwrap_or_default();
                match check {
                    Ok(Ok(())) => Ok((endpoint, service)),
                    Ok(Err(e)) => bail!("sanity check through {}: {e:#}{}", kind.name(), tail()),
                    Err(_) => bail!(
                        "sanity check through {} timed out after 20 s{}",
                        kind.name(),
                        tail()
                    ),
                }
            });
        match started {
            Ok((endpoint, service)) => Path {
                kind,
                endpoint: Ok(endpoint),
                service,
            },
            Err(e) => Path {
                kind,
                endpoint: Err(format!("{e:#}")),
                service: None,
            },
        }
    }

    /// A new instance of `kind`'s relay (none for direct); `name` names its config and log.
    pub(super) fn launch(&self, kind: PathKind, name: &str) -> Result<(Endpoint, Option<Service>)> {
        let upstream = self.db.addr();
        let app = |addr| Endpoint {
            addr,
            user: APP_USER.into(),
            password: APP_PASSWORD.into(),
        };
        let listen = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let max_connections = self.settings.max_connections();
        let Some(mode) = kind.io_mode() else {
            return Ok(match kind {
                PathKind::Haproxy => {
                    let service =
                        haproxy::start(self.run_dir, name, listen, upstream, max_connections)?;
                    (app(listen), Some(service))
                }
                _ => (app(upstream), None),
            });
        };
        let (bin, secret) = match &self.gateway {
            Some(Ok(prepared)) => prepared,
            Some(Err(e)) => bail!("{e}"),
            None => unreachable!("prepared when a gateway path is asked for"),
        };
        let config = self.run_dir.join(format!("{name}.toml"));
        GatewaySetup {
            listen,
            upstream,
            upstream_user: APP_USER,
            identity: BENCH_IDENTITY,
            secret,
            io_mode: mode,
            io_threads: self.settings.gateway_threads,
            max_connections,
            passthrough: false,
            tls: None,
            upstream_ca: None,
        }
        .write(&config)?;
        let mut service = Service::spawn_logged(
            name,
            &mut gateway::serve_command(bin, &config, Some(mode), APP_PASSWORD),
            &self.run_dir.join(format!("{name}.log")),
        )?;
        service.wait_listening(listen, Duration::from_secs(15))?;
        let endpoint = Endpoint {
            addr: listen,
            user: BENCH_IDENTITY.into(),
            password: BENCH_PASSWORD.into(),
        };
        Ok((endpoint, Some(service)))
    }
}
