//! Capability grants from the command line: `--env`, `--dir`, `--dir-ro`,
//! `--allow-tcp`, `--allow-udp`, `--allow-http`, `--host-functions`, `--stdin`, `--stdio` and the
//! arguments after `--`. They add to the manifest's `[wasi]` grants; each kind
//! must be allowed by the host policy, exactly as in a manifest. The person
//! typing them is the host, so their host directories may lie anywhere.

use std::path::Path;

use runtime::{
    HostPolicy, manifest::DirGrant, manifest::DirMode, manifest::HostInterface, manifest::HttpOrigin, manifest::Stdin,
    manifest::Stdio, manifest::WasiConfig,
};

/// The grant flags of `wasm-runtime run`.
#[derive(Debug, Default, clap::Args)]
pub(crate) struct GrantFlags {
    /// Set an environment variable: `KEY=VALUE`, or `KEY` to pass the
    /// host's own value. Repeatable.
    #[arg(long = "env", value_name = "KEY[=VALUE]")]
    env: Vec<String>,
    /// Preopen a host directory read-write: `HOST::GUEST` (e.g. `out::/out`). Repeatable.
    #[arg(long = "dir", value_name = "HOST::GUEST")]
    dirs: Vec<String>,
    /// Preopen a host directory read-only: `HOST::GUEST` (e.g. `data::/data`). Repeatable.
    #[arg(long = "dir-ro", value_name = "HOST::GUEST")]
    dirs_ro: Vec<String>,
    /// The most bytes each `--dir` directory may hold in files (e.g. `64MiB`;
    /// default 16 MiB, at most the policy's `[grants] max-dir-bytes`).
    #[arg(long = "dir-max-bytes", value_name = "SIZE")]
    dir_max_bytes: Option<runtime::ByteSize>,
    /// The most files, directories and links each `--dir` directory may
    /// hold (default 1,000, at most the policy's `[grants] max-dir-entries`).
    #[arg(long = "dir-max-entries", value_name = "N")]
    dir_max_entries: Option<u32>,
    /// Let TCP sockets connect to `IP:PORT` (the port may be `*`, the IP a
    /// CIDR range: `127.0.0.0/8:*`). Needs `[grants] network = true` in the policy.
    #[arg(long = "allow-tcp", value_name = "IP:PORT")]
    tcp: Vec<String>,
    /// Let TCP sockets bind (and listen) on `IP:PORT` (`*` and CIDR ranges
    /// as `--allow-tcp`; `127.0.0.1:*` binds any loopback port). Needs
    /// `[grants] network = true` in the policy.
    #[arg(long = "allow-tcp-bind", value_name = "IP:PORT")]
    tcp_bind: Vec<String>,
    /// Let UDP sockets use `IP:PORT` (`*` and CIDR ranges as `--allow-tcp`).
    /// Needs `[grants] network = true` in the policy.
    #[arg(long = "allow-udp", value_name = "IP:PORT")]
    udp: Vec<String>,
    /// Let outgoing HTTP requests go to an origin, e.g. `http://127.0.0.1:8080`.
    /// Needs `[grants] http = true` in the policy.
    #[arg(long = "allow-http", value_name = "ORIGIN")]
    http: Vec<String>,
    /// Let the guest call the runtime's reference host interfaces
    /// (`wasm-runtime:host/*`): `log`, `time` (sleep) and `kv`,
    /// comma-separated. Repeatable.
    #[arg(long = "host-functions", value_name = "NAMES", value_delimiter = ',', value_parser = ["log", "time", "kv"])]
    host_functions: Vec<String>,
    /// The guest's stdin: `inherit` (this process's) or `none` (end of file).
    #[arg(long, value_name = "MODE", value_parser = ["none", "inherit"])]
    stdin: Option<String>,
    /// The guest's stdout and stderr: `capture`, `inherit` or `discard`.
    /// A command (no --invoke) inherits them unless this says otherwise.
    #[arg(long, value_name = "MODE", value_parser = ["capture", "inherit", "discard"])]
    pub(crate) stdio: Option<String>,
}

impl GrantFlags {
    /// Whether these flags preopen any directory.
    pub(crate) fn grants_dirs(&self) -> bool {
        !self.dirs.is_empty() || !self.dirs_ro.is_empty()
    }

    /// Adds these grants (and `args`) to `wasi`, refusing any kind the policy
    /// refuses. `inherit` makes stdio inherited unless `--stdio` says otherwise
    /// (a command whose manifest does not name its own).
    pub(crate) fn apply(
        &self,
        wasi: &mut WasiConfig,
        args: &[String],
        inherit: bool,
        policy: &HostPolicy,
    ) -> Result<(), String> {
        wasi.args.extend(args.iter().cloned());
        for entry in &self.env {
            let (key, value) = match entry.split_once('=') {
                Some((key, value)) => (key.to_owned(), value.to_owned()),
                None => {
                    let value = std::env::var(entry)
                        .map_err(|_| format!("--env {entry}: the host has no variable `{entry}` to pass on"))?;
                    (entry.clone(), value)
                }
            };
            runtime::manifest::check_env_var(&key, &value).map_err(|reason| format!("--env {entry}: {reason}"))?;
            wasi.env.insert(key, value);
        }
        let dirs = self.dirs.iter().map(|d| (d, DirMode::ReadWrite, "--dir"));
        for (entry, mode, flag) in dirs.chain(self.dirs_ro.iter().map(|d| (d, DirMode::ReadOnly, "--dir-ro"))) {
            let (host, guest) = entry
                .split_once("::")
                .ok_or_else(|| format!("{flag} {entry}: write HOST::GUEST, e.g. {flag} data::/data"))?;
            runtime::manifest::check_guest_dir(guest).map_err(|reason| format!("{flag} {entry}: {reason}"))?;
            let absolute = std::path::absolute(Path::new(host))
                .map_err(|error| format!("{flag} {entry}: cannot resolve {host}: {error}"))?;
            let grant = DirGrant::new(absolute.to_string_lossy(), mode)
                .map_err(|r| format!("{flag} {entry}: {r}"))?
                .with_quota(self.dir_max_bytes, self.dir_max_entries);
            wasi.dirs.insert(guest.to_owned(), grant);
        }
        for (entry, list, flag) in [
            (&self.tcp, &mut wasi.network.tcp_connect, "--allow-tcp"),
            (&self.tcp_bind, &mut wasi.network.tcp_bind, "--allow-tcp-bind"),
            (&self.udp, &mut wasi.network.udp, "--allow-udp"),
        ] {
            for address in entry {
                let parsed = address.parse::<runtime::manifest::AddressPattern>().map_err(|reason| {
                    format!("{flag} {address}: {reason} (e.g. 127.0.0.1:8080, 127.0.0.1:* or 127.0.0.0/8:*); host names are not accepted")
                })?;
                list.push(parsed);
            }
        }
        for origin in &self.http {
            let parsed = origin.parse::<HttpOrigin>().map_err(|reason| format!("--allow-http {origin}: {reason}"))?;
            wasi.http.allowed_hosts.push(parsed);
        }
        for name in &self.host_functions {
            let interface =
                name.parse::<HostInterface>().map_err(|()| format!("--host-functions {name}: not a host interface"))?;
            wasi.host_functions.insert(interface);
        }
        if let Some(stdin) = &self.stdin {
            wasi.stdin = if stdin == "inherit" { Stdin::Inherit } else { Stdin::None };
        }
        wasi.stdio = match self.stdio.as_deref() {
            Some("capture") => Stdio::Capture,
            Some("inherit") => Stdio::Inherit,
            Some(_) => Stdio::Discard,
            None if inherit => Stdio::Inherit,
            None => wasi.stdio,
        };
        let limits = policy.grants();
        if let Some(bytes) = self.dir_max_bytes.filter(|b| b.as_bytes() > limits.max_dir_bytes.as_bytes()) {
            return Err(format!(
                "--dir-max-bytes {bytes} is above the policy's `[grants] max-dir-bytes` ({})",
                limits.max_dir_bytes
            ));
        }
        if let Some(entries) = self.dir_max_entries.filter(|n| *n > limits.max_dir_entries) {
            return Err(format!(
                "--dir-max-entries {entries} is above the policy's `[grants] max-dir-entries` ({})",
                limits.max_dir_entries
            ));
        }
        // Directories typed here are the host's own choice; only the kinds
        // of grant are the policy's to refuse.
        let refused: Vec<_> =
            policy.grant_refusals(wasi).into_iter().filter(|(_, key)| *key != "absolute-dirs").collect();
        if let Some((grant, key)) = refused.first() {
            if *key == "network-ranges" {
                let ranges: Vec<String> = policy.network_ranges().iter().map(ToString::to_string).collect();
                return Err(format!(
                    "`{grant}` names an address outside the host policy's `[grants] network-ranges` ({})",
                    ranges.join(", ")
                ));
            }
            return Err(format!(
                "`{grant}` is granted but the host policy refuses it: set `[grants] {key} = true` in a policy file and pass it with --policy FILE"
            ));
        }
        Ok(())
    }
}
