//! The gateway as `cargo xtask bench`, `demo` and `mtr` run it: built with cargo, one identity
//! hashed with `gatehouse hash-secret` (or passthrough logins), a generated config,
//! `gatehouse serve`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::process;

/// The environment variable the generated config names as the upstream password's source
/// (`password_env`); set only in the gateway's own environment.
pub const UPSTREAM_PASSWORD_ENV: &str = "GATEHOUSE_UPSTREAM_PASSWORD";

/// The workspace root (the parent of `xtask/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

/// Cargo's target directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Builds the `gatehouse` binary (`cargo build -p gatehouse`, `--release` when asked; cargo's
/// output goes to this terminal) and returns its path.
pub fn build(release: bool) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "-p", "gatehouse", "--bin", "gatehouse"]);
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().context("running cargo build")?;
    if !status.success() {
        bail!(
            "`cargo build -p gatehouse{}` failed ({status})",
            if release { " --release" } else { "" }
        );
    }
    let bin = target_dir()
        .join(if release { "release" } else { "debug" })
        .join("gatehouse");
    if !bin.exists() {
        bail!("cargo build succeeded but {} does not exist", bin.display());
    }
    Ok(bin)
}

/// Hashes `password` into an identity secret with `gatehouse hash-secret --native` (password on
/// stdin). The command prints either the `secret = "..."` line for the config or just the value;
/// both are accepted.
pub fn hash_secret(bin: &Path, password: &str) -> Result<String> {
    let stdout = process::output(
        Command::new(bin).args(["hash-secret", "--native"]),
        &format!("{password}\n"),
    )?;
    let line = stdout
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .context("`gatehouse hash-secret --native` printed nothing")?;
    parse_secret_line(line)
}

fn parse_secret_line(line: &str) -> Result<String> {
    if let Ok(table) = line.parse::<toml::Table>() {
        if let Some(toml::Value::String(s)) = table.get("secret") {
            return Ok(s.clone());
        }
    }
    if let Ok(toml::Value::String(s)) = format!("v = {line}")
        .parse::<toml::Table>()
        .map(|mut t| t.remove("v").expect("just set"))
    {
        return Ok(s);
    }
    Ok(line.to_owned())
}

/// What a generated gateway config says.
pub struct GatewaySetup<'a> {
    /// Where clients connect.
    pub listen: SocketAddr,
    /// The MariaDB behind the gateway.
    pub upstream: SocketAddr,
    /// The account the gateway logs in as upstream.
    pub upstream_user: &'a str,
    /// The one identity clients log in as.
    pub identity: &'a str,
    /// Its secret, as printed by `hash-secret`.
    pub secret: &'a str,
    /// `[io] mode`: `auto`, `epoll` or `uring`.
    pub io_mode: &'a str,
    /// `[io] threads` (0: one per CPU).
    pub io_threads: usize,
    /// `[limits] max_connections`.
    pub max_connections: usize,
    /// `auth = "passthrough"` on the listener: each client logs in with its own MySQL account,
    /// relayed to the target. The config then has no identity and the target no credential
    /// (`upstream_user`, `identity` and `secret` are not written).
    pub passthrough: bool,
    /// `[listener.tls]`: the certificate and key offered to clients; `None`: no TLS.
    pub tls: Option<ListenerTls<'a>>,
    /// `[target.tls]` with `mode = "required"`: the CA the server's certificate must chain to;
    /// `None`: plaintext to the target.
    pub upstream_ca: Option<&'a Path>,
    /// `[policy] paths`: one policy file; `None`: no policy (everything allowed).
    pub policy: Option<&'a Path>,
    /// `[recording]`: the audit log directory and durability (`batched` or `strict`);
    /// `None`: sessions are not recorded.
    pub recording: Option<(&'a Path, &'a str)>,
}

/// The PEM files of a listener's TLS.
#[derive(Debug, Clone, Copy)]
pub struct ListenerTls<'a> {
    /// Certificate chain, leaf first.
    pub cert: &'a Path,
    /// Its private key.
    pub key: &'a Path,
}

impl GatewaySetup<'_> {
    /// The config as TOML. (Not checked with the gateway's parser in this process: a gateway
    /// bug must fail the gateway's path, not the bench; `serve` reports what it rejects.)
    pub fn to_toml(&self) -> String {
        let q = |s: &str| toml::Value::String(s.to_owned()).to_string();
        let mut out = if self.passthrough {
            "# Generated by cargo xtask; clients log in with their own MySQL accounts.\n".to_owned()
        } else {
            format!("# Generated by cargo xtask; the upstream password is read from ${UPSTREAM_PASSWORD_ENV}.\n")
        };
        out.push_str(&format!(
            "[[listener]]\n\
             name = \"main\"\n\
             address = {}\n\
             target = \"mariadb\"\n",
            q(&self.listen.to_string()),
        ));
        if self.passthrough {
            out.push_str("auth = \"passthrough\"\n");
        }
        if let Some(tls) = &self.tls {
            out.push_str(&format!(
                "\n[listener.tls]\ncert = {}\nkey = {}\n",
                q(&tls.cert.display().to_string()),
                q(&tls.key.display().to_string()),
            ));
        }
        out.push_str(&format!(
            "\n[[target]]\nname = \"mariadb\"\naddress = {}\n",
            q(&self.upstream.to_string())
        ));
        if !self.passthrough {
            out.push_str(&format!(
                "user = {}\npassword_env = {}\n",
                q(self.upstream_user),
                q(UPSTREAM_PASSWORD_ENV),
            ));
        }
        if let Some(ca) = self.upstream_ca {
            out.push_str(&format!(
                "\n[target.tls]\nmode = \"required\"\nca = {}\n",
                q(&ca.display().to_string())
            ));
        }
        if !self.passthrough {
            out.push_str(&format!(
                "\n[[identity]]\nname = {identity}\ngroups = [{identity}]\nsecret = {secret}\n",
                identity = q(self.identity),
                secret = q(self.secret),
            ));
        }
        out.push_str(&format!(
            "\n[limits]\n\
             max_connections = {max_connections}\n\
             \n\
             [io]\n\
             mode = {mode}\n\
             threads = {threads}\n",
            max_connections = self.max_connections,
            mode = q(self.io_mode),
            threads = self.io_threads,
        ));
        if let Some(policy) = self.policy {
            out.push_str(&format!(
                "\n[policy]\npaths = [{}]\n",
                q(&policy.display().to_string())
            ));
        }
        if let Some((dir, durability)) = self.recording {
            out.push_str(&format!(
                "\n[recording]\ndir = {}\ndurability = {}\n",
                q(&dir.display().to_string()),
                q(durability)
            ));
        }
        out
    }

    /// Writes the config to `path`.
    pub fn write(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_toml()).with_context(|| format!("writing {}", path.display()))
    }
}

/// `gatehouse serve --config CONFIG [--io MODE]` with the upstream password in its environment.
pub fn serve_command(
    bin: &Path,
    config: &Path,
    io_mode: Option<&str>,
    upstream_password: &str,
) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("serve").arg("--config").arg(config);
    if let Some(mode) = io_mode {
        cmd.args(["--io", mode]);
    }
    cmd.env(UPSTREAM_PASSWORD_ENV, upstream_password);
    if std::env::var_os("RUST_LOG").is_none() {
        cmd.env("RUST_LOG", "info");
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_line_forms() {
        assert_eq!(parse_secret_line(r#"secret = "abc$1""#).unwrap(), "abc$1");
        assert_eq!(parse_secret_line(r#""abc$1""#).unwrap(), "abc$1");
        assert_eq!(parse_secret_line("native:abc").unwrap(), "native:abc");
    }

    #[test]
    fn generated_config_is_valid_toml() {
        let setup = GatewaySetup {
            listen: "127.0.0.1:4000".parse().unwrap(),
            upstream: "127.0.0.1:3306".parse().unwrap(),
            upstream_user: "app",
            identity: "bench",
            secret: "x\"y",
            io_mode: "epoll",
            io_threads: 0,
            max_connections: 100,
            passthrough: false,
            tls: None,
            upstream_ca: None,
            policy: Some(Path::new("/p/bench-policy.toml")),
            recording: Some((Path::new("/p/audit"), "strict")),
        };
        let config: toml::Table = setup.to_toml().parse().unwrap();
        assert_eq!(
            config["policy"]["paths"][0].as_str(),
            Some("/p/bench-policy.toml")
        );
        assert_eq!(config["recording"]["dir"].as_str(), Some("/p/audit"));
        assert_eq!(config["recording"]["durability"].as_str(), Some("strict"));
        let identity = &config["identity"].as_array().unwrap()[0];
        assert_eq!(identity["secret"].as_str(), Some("x\"y"));
        assert_eq!(
            config["listener"][0]["address"].as_str(),
            Some("127.0.0.1:4000")
        );
        assert_eq!(
            config["target"][0]["password_env"].as_str(),
            Some(UPSTREAM_PASSWORD_ENV)
        );
        assert!(config["listener"][0].get("tls").is_none());
    }

    #[test]
    fn passthrough_config_has_no_credential_nor_identity() {
        let cert = Path::new("/c/cert.pem");
        let key = Path::new("/c/key.pem");
        let setup = GatewaySetup {
            listen: "127.0.0.1:4000".parse().unwrap(),
            upstream: "127.0.0.1:3306".parse().unwrap(),
            upstream_user: "",
            identity: "",
            secret: "",
            io_mode: "uring",
            io_threads: 1,
            max_connections: 100,
            passthrough: true,
            tls: Some(ListenerTls { cert, key }),
            upstream_ca: Some(Path::new("/c/ca.pem")),
            policy: None,
            recording: None,
        };
        let config: toml::Table = setup.to_toml().parse().unwrap();
        let listener = &config["listener"][0];
        assert_eq!(listener["auth"].as_str(), Some("passthrough"));
        assert_eq!(listener["tls"]["cert"].as_str(), Some("/c/cert.pem"));
        assert_eq!(listener["tls"]["key"].as_str(), Some("/c/key.pem"));
        let target = &config["target"][0];
        assert!(target.get("user").is_none() && target.get("password_env").is_none());
        assert!(config.get("identity").is_none() && config.get("policy").is_none());
        assert_eq!(target["tls"]["mode"].as_str(), Some("required"));
        assert_eq!(target["tls"]["ca"].as_str(), Some("/c/ca.pem"));
        assert_eq!(config["io"]["mode"].as_str(), Some("uring"));
    }
}
