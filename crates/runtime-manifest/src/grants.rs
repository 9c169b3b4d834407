//! The capability grants of `[wasi]`: what outside world a component may
//! touch. Every grant is off unless written down, and each kind of grant must
//! also be allowed by the host's [`GrantPolicy`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Component as PathPart, Path};
use std::str::FromStr;

use serde::Serialize;

use crate::ByteSize;

/// What a read-write directory grant may hold when its manifest states no
/// `max-bytes`: bytes in files, counted from what the directory held when
/// the instance first wrote to it.
pub const DEFAULT_DIR_BYTES: ByteSize = ByteSize::mib(16);
/// Files, directories and links a read-write grant may hold without `max-entries`.
pub const DEFAULT_DIR_ENTRIES: u32 = 1_000;
/// The largest `max-bytes` the default policy allows (`[grants] max-dir-bytes`).
pub const DEFAULT_MAX_DIR_BYTES: ByteSize = ByteSize::mib(256);
/// The largest `max-entries` the default policy allows (`[grants] max-dir-entries`).
pub const DEFAULT_MAX_DIR_ENTRIES: u32 = 10_000;
/// Open files, directories and sockets one instance may hold at once
/// (`[grants] max-descriptors`; in-flight outgoing HTTP requests have the
/// same cap): with the default 1,000 concurrent instances, 16,000
/// descriptors, inside a hard `ulimit -n` of 20,000 and more.
pub const DEFAULT_MAX_DESCRIPTORS: u32 = 16;
/// Outgoing HTTP requests one instance may start in all (`[grants]
/// max-outgoing-requests`), like the subrequest limits of Cloudflare Workers
/// and Fastly: a served request's work stays bounded by the request.
pub const DEFAULT_MAX_OUTGOING_REQUESTS: u32 = 32;

/// The kinds of grant a host may allow or refuse as a whole, in its policy's
/// `[grants]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct GrantPolicy {
    /// Preopened directories (`[wasi.dirs]`, `--dir`). Allowed by default:
    /// each directory is still named one by one.
    pub dirs: bool,
    /// Host directories outside the manifest's own directory (absolute
    /// paths, or `..` that climbs out). Refused by default.
    pub absolute_dirs: bool,
    /// Sockets (`[wasi.network]`, `--allow-tcp`). Refused by default.
    pub network: bool,
    /// Outgoing HTTP (`[wasi.http]`, `--allow-http`). Refused by default.
    pub http: bool,
    /// Host directory paths that cross a symlink (`symlinked-dirs`).
    /// Refused by default: a guest with a read-write grant can plant a
    /// relative symlink that a later grant would otherwise follow out.
    pub symlinked_dirs: bool,
    /// The largest `max-bytes` of a read-write directory grant.
    pub max_dir_bytes: ByteSize,
    /// The largest `max-entries` of a read-write directory grant.
    pub max_dir_entries: u32,
    /// Open files, directories and sockets one instance may hold at once.
    pub max_descriptors: u32,
    /// Outgoing HTTP requests one instance may start in all.
    pub max_outgoing_requests: u32,
}

impl Default for GrantPolicy {
    fn default() -> Self {
        Self {
            dirs: true,
            absolute_dirs: false,
            network: false,
            http: false,
            symlinked_dirs: false,
            max_dir_bytes: DEFAULT_MAX_DIR_BYTES,
            max_dir_entries: DEFAULT_MAX_DIR_ENTRIES,
            max_descriptors: DEFAULT_MAX_DESCRIPTORS,
            max_outgoing_requests: DEFAULT_MAX_OUTGOING_REQUESTS,
        }
    }
}

impl GrantPolicy {
    /// The boolean `[grants]` keys and whether each is allowed, in file order.
    pub fn entries(&self) -> [(&'static str, bool); 5] {
        [
            ("dirs", self.dirs),
            ("absolute-dirs", self.absolute_dirs),
            ("symlinked-dirs", self.symlinked_dirs),
            ("network", self.network),
            ("http", self.http),
        ]
    }

    /// Every grant of `wasi` this policy refuses, as (manifest key, policy key).
    pub fn refusals(&self, wasi: &WasiConfig) -> Vec<(&'static str, &'static str)> {
        let mut refused = Vec::new();
        if !wasi.dirs.is_empty() && !self.dirs {
            refused.push(("wasi.dirs", "dirs"));
        }
        if !self.absolute_dirs && wasi.dirs.values().any(|dir| dir.leaves_base()) {
            refused.push(("wasi.dirs", "absolute-dirs"));
        }
        if !wasi.network.is_empty() && !self.network {
            refused.push(("wasi.network", "network"));
        }
        if !wasi.http.allowed_hosts.is_empty() && !self.http {
            refused.push(("wasi.http", "http"));
        }
        refused
    }
}

/// The `[wasi]` table. WASI is deny-by-default: without a grant a component
/// has no arguments, no environment, no stdin, no directories, no sockets and
/// no outgoing HTTP; clocks and random are always allowed, and its stdout and
/// stderr are discarded.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub struct WasiConfig {
    /// What happens to stdout and stderr.
    #[serde(skip_serializing_if = "is_default")]
    pub stdio: Stdio,
    /// Whether the component reads the host's stdin.
    #[serde(skip_serializing_if = "is_default")]
    pub stdin: Stdin,
    /// Arguments after argv\[0\] (which is the component's name).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Environment variables.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Preopened directories, by the path the guest sees.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub dirs: BTreeMap<String, DirGrant>,
    /// Sockets.
    #[serde(skip_serializing_if = "NetworkGrant::is_empty")]
    pub network: NetworkGrant,
    /// Outgoing HTTP, and what serving does when a client leaves.
    #[serde(skip_serializing_if = "HttpGrant::is_default")]
    pub http: HttpGrant,
    /// The runtime's reference host interfaces (`wasm-runtime:host/*`) the
    /// component may call; a call into any other fails `capability-denied`.
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub host_functions: BTreeSet<HostInterface>,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

impl WasiConfig {
    /// A configuration granting nothing but `stdio`.
    pub fn with_stdio(stdio: Stdio) -> Self {
        Self { stdio, ..Self::default() }
    }

    /// The same grants, with the reference host interfaces `interfaces` added.
    pub fn with_host_functions(mut self, interfaces: impl IntoIterator<Item = HostInterface>) -> Self {
        self.host_functions.extend(interfaces);
        self
    }

    /// Whether this grants nothing at all.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// One of the runtime's reference host interfaces (`wit/host.wit`), granted
/// by name in `[wasi] host-functions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum HostInterface {
    /// `wasm-runtime:host/log`: records on the host's log.
    Log,
    /// `wasm-runtime:host/time`: `sleep`, bounded by the call's deadline.
    Time,
    /// `wasm-runtime:host/kv`: a per-instance key-value store with a fixed cap.
    Kv,
}

impl HostInterface {
    /// The names a manifest may use.
    pub const NAMES: &[&str] = &["log", "time", "kv"];
    /// Every reference interface.
    pub const ALL: [Self; 3] = [Self::Log, Self::Time, Self::Kv];

    /// The name a manifest uses.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Log => "log",
            Self::Time => "time",
            Self::Kv => "kv",
        }
    }
}

impl FromStr for HostInterface {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|interface| interface.name() == text).ok_or(())
    }
}

/// What happens to a component's stdout and stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Stdio {
    /// Written output is dropped (the default).
    #[default]
    Discard,
    /// Written output is kept, up to a cap, and returned with the call.
    Capture,
    /// Written output goes to the host process's stdout and stderr.
    Inherit,
}

impl Stdio {
    /// The names a manifest may use.
    pub const NAMES: &[&str] = &["discard", "capture", "inherit"];
}

impl FromStr for Stdio {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "discard" => Ok(Self::Discard),
            "capture" => Ok(Self::Capture),
            "inherit" => Ok(Self::Inherit),
            _ => Err(()),
        }
    }
}

/// What a served request's work does when its client goes away
/// (`[wasi.http] on-client-gone`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum OnClientGone {
    /// The guest is stopped at once, as at its deadline (the default).
    #[default]
    Cancel,
    /// The guest runs on to its end or its deadline; its answer is
    /// thrown away.
    Finish,
}

impl OnClientGone {
    /// The names a manifest may use.
    pub const NAMES: &[&str] = &["cancel", "finish"];
}

impl FromStr for OnClientGone {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "cancel" => Ok(Self::Cancel),
            "finish" => Ok(Self::Finish),
            _ => Err(()),
        }
    }
}

/// Whether a component reads the host's stdin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Stdin {
    /// Reads see end of file at once (the default).
    #[default]
    None,
    /// Reads come from the host process's stdin.
    Inherit,
}

impl FromStr for Stdin {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "none" => Ok(Self::None),
            "inherit" => Ok(Self::Inherit),
            _ => Err(()),
        }
    }
}

/// One preopened directory: the host directory and what the guest may do in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DirGrant {
    /// The host directory: relative to the manifest's directory, or absolute
    /// when the policy allows `absolute-dirs` (or the host itself granted it).
    pub host: String,
    /// Read-only or read-write.
    pub mode: DirMode,
    /// Bytes a read-write grant may hold in files (`max-bytes`); `None`:
    /// [`DEFAULT_DIR_BYTES`], within the policy's maximum.
    #[serde(rename = "max-bytes", skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<ByteSize>,
    /// Files, directories and links a read-write grant may hold
    /// (`max-entries`); `None`: [`DEFAULT_DIR_ENTRIES`], within the policy's maximum.
    #[serde(rename = "max-entries", skip_serializing_if = "Option::is_none")]
    pub max_entries: Option<u32>,
}

impl DirGrant {
    /// The byte quota this grant gets under `policy`.
    pub fn effective_max_bytes(&self, policy: &GrantPolicy) -> ByteSize {
        let bytes = self.max_bytes.unwrap_or(DEFAULT_DIR_BYTES).as_bytes().min(policy.max_dir_bytes.as_bytes());
        ByteSize::bytes(bytes)
    }

    /// The entry quota this grant gets under `policy`.
    pub fn effective_max_entries(&self, policy: &GrantPolicy) -> u32 {
        self.max_entries.unwrap_or(DEFAULT_DIR_ENTRIES).min(policy.max_dir_entries)
    }

    /// The same grant with its quotas.
    pub fn with_quota(mut self, max_bytes: Option<ByteSize>, max_entries: Option<u32>) -> Self {
        self.max_bytes = max_bytes;
        self.max_entries = max_entries;
        self
    }

    /// A grant of `host` with `mode`, after checking the path is usable.
    pub fn new(host: impl Into<String>, mode: DirMode) -> Result<Self, &'static str> {
        let host = host.into();
        if host.is_empty() {
            return Err("the host path is empty");
        }
        if host.contains('\0') {
            return Err("the host path contains a NUL character");
        }
        Ok(Self { host, mode, max_bytes: None, max_entries: None })
    }

    /// Whether the host path is absolute or climbs out of its base directory
    /// through `..`, judged on the text alone (symlinks are checked when the
    /// directory is opened).
    pub fn leaves_base(&self) -> bool {
        let mut depth: usize = 0;
        for part in Path::new(&self.host).components() {
            match part {
                PathPart::Normal(_) => depth += 1,
                PathPart::CurDir => {}
                PathPart::ParentDir => match depth.checked_sub(1) {
                    Some(up) => depth = up,
                    None => return true,
                },
                PathPart::RootDir | PathPart::Prefix(_) => return true,
            }
        }
        false
    }
}

/// Checks a path as the guest will see a preopened directory.
pub fn check_guest_dir(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("the guest path is empty");
    }
    if path.contains('\0') {
        return Err("the guest path contains a NUL character");
    }
    Ok(())
}

/// What a guest may do in a preopened directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum DirMode {
    /// List, stat and read; every write, create, rename or delete fails.
    #[serde(rename = "ro")]
    ReadOnly,
    /// Everything, inside the directory only.
    #[serde(rename = "rw")]
    ReadWrite,
}

impl FromStr for DirMode {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "ro" => Ok(Self::ReadOnly),
            "rw" => Ok(Self::ReadWrite),
            _ => Err(()),
        }
    }
}

impl fmt::Display for DirMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ReadOnly => "ro",
            Self::ReadWrite => "rw",
        })
    }
}

/// An address a network grant names: one IP address or a CIDR range, and
/// one port or any (`*`). Written `127.0.0.1:8080`, `127.0.0.1:*`,
/// `10.0.0.0/8:443`, `[::1]:*` or `[fd00::/8]:53`; host names are not
/// accepted (a name's addresses change under the grant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressPattern {
    ip: IpAddr,
    /// Leading bits of `ip` an address must share (32 or 128: exactly it).
    prefix: u8,
    /// `None`: any port.
    port: Option<u16>,
}

impl AddressPattern {
    /// Whether every address `other` names is one this pattern names.
    pub fn contains(&self, other: &AddressPattern) -> bool {
        let port = match (self.port, other.port) {
            (None, _) => true,
            (Some(mine), Some(theirs)) => mine == theirs,
            (Some(_), None) => false,
        };
        let range = self.prefix <= other.prefix
            && match (self.ip, other.ip) {
                (IpAddr::V4(net), IpAddr::V4(ip)) => {
                    let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                    u32::from(net) & mask == u32::from(ip) & mask
                }
                (IpAddr::V6(net), IpAddr::V6(ip)) => {
                    let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                    u128::from(net) & mask == u128::from(ip) & mask
                }
                _ => false,
            };
        port && range
    }

    /// Whether `address` is one this pattern names.
    pub fn matches(&self, address: SocketAddr) -> bool {
        self.contains(&AddressPattern::from(address))
    }
}

impl From<SocketAddr> for AddressPattern {
    fn from(address: SocketAddr) -> Self {
        let prefix = if address.is_ipv4() { 32 } else { 128 };
        Self { ip: address.ip(), prefix, port: Some(address.port()) }
    }
}

impl FromStr for AddressPattern {
    type Err = &'static str;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        const SHAPE: &str = "not IP:PORT, IP/PREFIX:PORT or [IPv6]:PORT, with a port number or `*`";
        let (host, port) = text.rsplit_once(':').ok_or(SHAPE)?;
        let port = match port {
            "*" => None,
            number => Some(number.parse::<u16>().map_err(|_| SHAPE)?),
        };
        let (host, v6) = match host.strip_prefix('[') {
            Some(inside) => (inside.strip_suffix(']').ok_or(SHAPE)?, true),
            None => (host, false),
        };
        let (ip, prefix) = match host.split_once('/') {
            Some((ip, prefix)) => (ip, Some(prefix.parse::<u8>().map_err(|_| SHAPE)?)),
            None => (host, None),
        };
        let ip: IpAddr = ip.parse().map_err(|_| SHAPE)?;
        if ip.is_ipv6() != v6 {
            return Err("an IPv6 address goes in brackets (`[::1]:8080`), an IPv4 one does not");
        }
        let bits = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(bits);
        if prefix > bits {
            return Err("the prefix is longer than the address (32 bits for IPv4, 128 for IPv6)");
        }
        Ok(Self { ip, prefix, port })
    }
}

impl fmt::Display for AddressPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bits = if self.ip.is_ipv4() { 32 } else { 128 };
        let prefix = if self.prefix == bits { String::new() } else { format!("/{}", self.prefix) };
        match self.ip {
            IpAddr::V4(ip) => write!(f, "{ip}{prefix}:")?,
            IpAddr::V6(ip) => write!(f, "[{ip}{prefix}]:")?,
        }
        match self.port {
            Some(port) => write!(f, "{port}"),
            None => f.write_str("*"),
        }
    }
}

impl Serialize for AddressPattern {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The `[wasi.network]` table: the socket addresses a guest may use. Name
/// lookup is off unless granted.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub struct NetworkGrant {
    /// Addresses a TCP socket may connect to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tcp_connect: Vec<AddressPattern>,
    /// Addresses a TCP socket may bind (and listen on).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tcp_bind: Vec<AddressPattern>,
    /// Addresses a UDP socket may bind, send to or connect to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub udp: Vec<AddressPattern>,
    /// Whether `wasi:sockets/ip-name-lookup` resolves names.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ip_name_lookup: bool,
}

impl NetworkGrant {
    /// Whether this grants no network access at all.
    pub fn is_empty(&self) -> bool {
        self.tcp_connect.is_empty() && self.tcp_bind.is_empty() && self.udp.is_empty() && !self.ip_name_lookup
    }
}

/// The `[wasi.http]` table: the origins outgoing requests may go to.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub struct HttpGrant {
    /// Origins as `scheme://host[:port]`, e.g. `http://127.0.0.1:8080`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_hosts: Vec<HttpOrigin>,
    /// What a served request's work does when its client goes away.
    #[serde(skip_serializing_if = "is_default")]
    pub on_client_gone: OnClientGone,
}

impl HttpGrant {
    /// Whether no origin is allowed.
    pub fn is_empty(&self) -> bool {
        self.allowed_hosts.is_empty()
    }

    /// Whether the table says nothing.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Whether a request to `scheme` and `authority` may go out.
    pub fn allows(&self, scheme: &str, authority: &str) -> bool {
        let Ok(origin) = HttpOrigin::from_str(&format!("{scheme}://{authority}")) else {
            return false;
        };
        self.allowed_hosts.contains(&origin)
    }
}

/// An HTTP origin, normalized: lowercase scheme and host, explicit port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct HttpOrigin(String);

impl HttpOrigin {
    /// The origin as `scheme://host:port`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for HttpOrigin {
    type Err = &'static str;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (scheme, rest) = text.split_once("://").ok_or("an origin starts with http:// or https://")?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return Err("the scheme must be http or https"),
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty() {
            return Err("the origin has no host");
        }
        if authority.contains(['/', '?', '#', '@', '*']) || authority.chars().any(char::is_whitespace) {
            return Err("an origin is scheme://host[:port], without a path, user or wildcard");
        }
        // A trailing `:digits` is the port unless it is part of a bare IPv6 address.
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && (!host.contains(':') || host.ends_with(']')) => {
                (host, port.parse::<u16>().map_err(|_| "the port is not a number from 0 to 65535")?)
            }
            _ => (authority, default_port),
        };
        if host.is_empty() {
            return Err("the origin has no host");
        }
        Ok(Self(format!("{scheme}://{}:{port}", host.to_ascii_lowercase())))
    }
}

impl fmt::Display for HttpOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks an environment variable's name and value.
pub fn check_env_var(name: &str, value: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("the variable name is empty");
    }
    if name.contains(['=', '\0']) {
        return Err("a variable name cannot contain `=` or NUL");
    }
    if value.contains('\0') {
        return Err("a value cannot contain NUL");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalized_with_their_port() {
        let origin = |text: &str| HttpOrigin::from_str(text).map(|o| o.0);
        assert_eq!(origin("http://127.0.0.1:8080"), Ok("http://127.0.0.1:8080".into()));
        assert_eq!(origin("HTTP://Example.com/"), Ok("http://example.com:80".into()));
        assert_eq!(origin("https://[::1]"), Ok("https://[::1]:443".into()));
        for bad in ["127.0.0.1:80", "ftp://x", "http://", "http://x/path", "http://*.x", "http://u@x", "http://x:99999"]
        {
            assert!(origin(bad).is_err(), "{bad}");
        }
        let grant = HttpGrant {
            allowed_hosts: vec!["http://127.0.0.1:8080".parse().unwrap_or_else(|_| unreachable!())],
            ..HttpGrant::default()
        };
        assert!(grant.allows("http", "127.0.0.1:8080"));
        assert!(!grant.allows("http", "127.0.0.1:8081"));
        assert!(!grant.allows("https", "127.0.0.1:8080"));
    }

    #[test]
    fn dir_grants_know_when_they_leave_their_base() {
        let leaves = |host: &str| DirGrant::new(host, DirMode::ReadOnly).map(|d| d.leaves_base());
        assert_eq!(leaves("data"), Ok(false));
        assert_eq!(leaves("./a/../data"), Ok(false));
        assert_eq!(leaves("../data"), Ok(true));
        assert_eq!(leaves("a/../../data"), Ok(true));
        assert_eq!(leaves("/etc"), Ok(true));
        assert!(leaves("").is_err());
    }

    #[test]
    fn the_default_policy_allows_dirs_inside_the_base_only() {
        let mut wasi = WasiConfig::default();
        let policy = GrantPolicy::default();
        assert!(policy.refusals(&wasi).is_empty());
        wasi.dirs.insert("/data".into(), DirGrant::new("data", DirMode::ReadOnly).unwrap_or_else(|_| unreachable!()));
        assert!(policy.refusals(&wasi).is_empty());
        wasi.dirs.insert("/etc".into(), DirGrant::new("/etc", DirMode::ReadOnly).unwrap_or_else(|_| unreachable!()));
        assert_eq!(policy.refusals(&wasi), [("wasi.dirs", "absolute-dirs")]);
        wasi.network.ip_name_lookup = true;
        assert_eq!(policy.refusals(&wasi).len(), 2);
    }
}
