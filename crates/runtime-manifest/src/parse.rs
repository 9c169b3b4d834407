//! Parsing and validation: TOML text -> [`ComponentManifest`] or every problem found.
//!
//! The document is parsed into toml's spanned tree and walked by hand rather
//! than deserialized with serde: serde stops at the first error, while a user
//! fixing a manifest wants every problem at once, each at its exact place.

use crate::AddressPattern;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;
use std::str::FromStr;

use miette::SourceSpan;
use toml::Spanned;
use toml::de::{DeInteger, DeTable, DeValue};

use crate::error::{Error, InvalidManifest};
use crate::grants::{
    DirGrant, DirMode, HostInterface, HttpGrant, HttpOrigin, NetworkGrant, OnClientGone, Stdio, WasiConfig,
    check_env_var, check_guest_dir,
};
use crate::manifest::{ComponentInfo, ComponentManifest, ComponentName, Resources, WasmPath};
use crate::policy::{Bounds, HostPolicy, LimitKey, PolicyViolation};
use crate::problem::ManifestProblem;
use crate::units::{ByteSize, Fuel, QuantityError, Timeout};

/// The largest manifest accepted, in bytes. A real one is a few hundred bytes;
/// the cap bounds the parser's work on hostile input.
pub const MAX_MANIFEST_BYTES: usize = 64 * 1024;

const ROOT_KEYS: &[&str] = &["component", "resources", "wasi"];
const COMPONENT_KEYS: &[&str] = &["name", "version", "wasm"];
const RESOURCE_KEYS: &[&str] = &["memory", "fuel", "timeout", "table-elements", "instances"];
const WASI_KEYS: &[&str] = &["stdio", "stdin", "args", "env", "dirs", "network", "http", "host-functions"];
const WASI_EXAMPLE: &str = "[wasi]\nstdio = \"capture\"";
const DIR_KEYS: &[&str] = &["host", "mode", "max-bytes", "max-entries"];
const DIRS_EXAMPLE: &str = "[wasi.dirs]\n\"/data\" = { host = \"data\", mode = \"ro\" }";
const NETWORK_KEYS: &[&str] = &["tcp-connect", "tcp-bind", "udp", "ip-name-lookup"];
const NETWORK_EXAMPLE: &str = "[wasi.network]\ntcp-connect = [\"127.0.0.1:8080\"]";
const HTTP_KEYS: &[&str] = &["allowed-hosts", "on-client-gone"];
const HTTP_EXAMPLE: &str = "[wasi.http]\nallowed-hosts = [\"http://127.0.0.1:8080\"]";

/// The example shown when the whole `[resources]` table is missing.
const RESOURCES_EXAMPLE: &str = "[resources]\nmemory = \"1MiB\"\nfuel = 50_000_000\ntimeout = \"100ms\"";
const COMPONENT_EXAMPLE: &str = "[component]\nname = \"my-component\"\nversion = \"0.1.0\"";

impl ComponentManifest {
    /// Parses and validates `text` against `policy`. `name` labels the text in
    /// diagnostics (usually the file path).
    pub fn parse(name: &str, text: &str, policy: &HostPolicy) -> Result<Self, Error> {
        check_size(name, text.len())?;
        let mut checker = Checker::new(policy, text);
        let manifest = match DeTable::parse(text) {
            Ok(root) => checker.document(root.get_ref()),
            Err(error) => {
                let span = error.span().map_or(SourceSpan::from(0..0), SourceSpan::from);
                checker.problems.push(ManifestProblem::Syntax { message: error.message().to_owned(), span });
                None
            }
        };
        match manifest {
            Some(manifest) if checker.problems.is_empty() => Ok(manifest),
            _ => Err(InvalidManifest::new(name, text.to_owned(), checker.problems).into()),
        }
    }

    /// Parses and validates raw bytes, which need not be UTF-8.
    pub fn parse_bytes(name: &str, bytes: &[u8], policy: &HostPolicy) -> Result<Self, Error> {
        check_size(name, bytes.len())?;
        match std::str::from_utf8(bytes) {
            Ok(text) => Self::parse(name, text, policy),
            Err(error) => {
                let offset = error.valid_up_to();
                // The lossy text keeps every byte before `offset` as it was, so the span still fits.
                let text = String::from_utf8_lossy(bytes).into_owned();
                let problem = ManifestProblem::NotUtf8 { span: (offset, 1).into() };
                Err(InvalidManifest::new(name, text, vec![problem]).into())
            }
        }
    }

    /// Reads, parses and validates the manifest at `path` against the default
    /// [`HostPolicy`].
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, Error> {
        Self::from_path_with_policy(path, &HostPolicy::default())
    }

    /// Reads, parses and validates the manifest at `path` against `policy`.
    pub fn from_path_with_policy(path: impl AsRef<Path>, policy: &HostPolicy) -> Result<Self, Error> {
        let path = path.as_ref();
        let bytes = read_capped(path)?;
        Self::parse_bytes(&path.display().to_string(), &bytes, policy)
    }
}

/// Reads at most [`MAX_MANIFEST_BYTES`] of the file at `path`: one byte past
/// the cap is read so an oversized (or endless) file is caught without
/// reading it whole, and the error gives the file's real size where the
/// filesystem knows it.
pub(crate) fn read_capped(path: &Path) -> Result<Vec<u8>, Error> {
    let read_error = |source| Error::Read { path: path.to_owned(), source };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let known_size = file.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
    let mut bytes = Vec::new();
    (&file).take(MAX_MANIFEST_BYTES as u64 + 1).read_to_end(&mut bytes).map_err(read_error)?;
    if bytes.len() > MAX_MANIFEST_BYTES {
        let size = known_size.unwrap_or(bytes.len() as u64).max(bytes.len() as u64);
        return Err(Error::TooLarge { name: path.display().to_string(), size, limit: MAX_MANIFEST_BYTES as u64 });
    }
    Ok(bytes)
}

impl FromStr for ComponentManifest {
    type Err = Error;

    /// Parses and validates against the default [`HostPolicy`].
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse("Component.toml", text, &HostPolicy::default())
    }
}

fn check_size(name: &str, size: usize) -> Result<(), Error> {
    if size > MAX_MANIFEST_BYTES {
        return Err(Error::TooLarge { name: name.to_owned(), size: size as u64, limit: MAX_MANIFEST_BYTES as u64 });
    }
    Ok(())
}

pub(crate) fn span_of<T>(spanned: &Spanned<T>) -> SourceSpan {
    spanned.span().into()
}

fn type_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// The closest of `known` to `key`, if it is close enough to be a typo.
pub(crate) fn closest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    let normalized = key.to_ascii_lowercase().replace('_', "-");
    known
        .iter()
        .map(|candidate| (strsim::jaro_winkler(&normalized, candidate), *candidate))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

/// A table of the document with the span of its header (or inline value).
#[derive(Clone, Copy)]
struct TableRef<'t> {
    table: &'t DeTable<'t>,
    span: SourceSpan,
}

/// Walks the parsed document, collecting every problem.
pub(crate) struct Checker<'p> {
    policy: &'p HostPolicy,
    pub(crate) problems: Vec<ManifestProblem>,
    /// A zero-length span after the last non-blank character: where a missing
    /// table would be added.
    end: SourceSpan,
}

impl<'p> Checker<'p> {
    pub(crate) fn new(policy: &'p HostPolicy, text: &str) -> Self {
        Self { policy, problems: Vec::new(), end: (text.trim_end().len(), 0).into() }
    }

    fn document(&mut self, root: &DeTable<'_>) -> Option<ComponentManifest> {
        self.unknown_keys(root, ROOT_KEYS, "the top level");
        let component = self.table(root, "component", COMPONENT_KEYS, COMPONENT_EXAMPLE);
        let resources = self.table(root, "resources", RESOURCE_KEYS, RESOURCES_EXAMPLE);
        let component = component.and_then(|t| self.component(t));
        let resources = resources.and_then(|t| self.resources(t));
        // `[wasi]` is optional: without it, the component gets no WASI authority
        // beyond clocks and random, and its output is discarded.
        let wasi = match root.get("wasi") {
            None => Some(WasiConfig::default()),
            Some(_) => self.table(root, "wasi", WASI_KEYS, WASI_EXAMPLE).and_then(|t| self.wasi(t)),
        };
        Some(ComponentManifest { component: component?, resources: resources?, wasi: wasi? })
    }

    /// The table `key` of the root, reporting it when it is missing or not a table.
    fn table<'t>(
        &mut self,
        root: &'t DeTable<'t>,
        key: &'static str,
        known: &[&str],
        example: &str,
    ) -> Option<TableRef<'t>> {
        let Some(value) = root.get(key) else {
            let help = format!("add this table:\n{example}");
            let problem = ManifestProblem::MissingTable { table: key, span: self.end, help };
            self.problems.push(problem);
            return None;
        };
        match value.get_ref() {
            DeValue::Table(table) => {
                self.unknown_keys(table, known, key);
                Some(TableRef { table, span: span_of(value) })
            }
            other => {
                self.problems.push(ManifestProblem::WrongType {
                    key: key.to_owned(),
                    expected: "a table",
                    found: type_name(other),
                    span: span_of(value),
                    help: format!("write it as a table:\n{example}"),
                });
                None
            }
        }
    }

    pub(crate) fn unknown_keys(&mut self, table: &DeTable<'_>, known: &[&str], table_name: &str) {
        for (key, _) in table.iter() {
            let name = key.get_ref().as_ref();
            if known.contains(&name) {
                continue;
            }
            let help = if let Some(suggestion) = closest(name, known) {
                format!("did you mean `{suggestion}`?")
            } else if table_name == "wasi" {
                format!("WASI is deny-by-default; [wasi] grants only these: {}", known.join(", "))
            } else if let Some(home) = home_table(name).filter(|home| *home != table_name) {
                format!("`{name}` belongs in the [{home}] table")
            } else {
                format!("known keys here: {}", known.join(", "))
            };
            let table = if table_name == "the top level" { table_name.to_owned() } else { format!("[{table_name}]") };
            self.problems.push(ManifestProblem::UnknownKey { key: name.to_owned(), table, span: span_of(key), help });
        }
    }

    fn component(&mut self, table: TableRef<'_>) -> Option<ComponentInfo> {
        let name = self.required_string(table, "name", "component.name", "name = \"my-component\"").and_then(
            |(value, span)| {
                let name = ComponentName::from_str(value);
                self.report(name.map_err(|reason| ManifestProblem::InvalidName {
                    value: value.to_owned(),
                    reason,
                    span,
                }))
            },
        );
        let version = self.required_string(table, "version", "component.version", "version = \"0.1.0\"").and_then(
            |(value, span)| {
                let version = semver::Version::parse(value);
                self.report(version.map_err(|error| ManifestProblem::InvalidVersion {
                    value: value.to_owned(),
                    reason: error.to_string(),
                    span,
                }))
            },
        );
        let wasm = match table.table.get("wasm") {
            None => Some(None),
            Some(value) => self.string(value, "component.wasm", "wasm = \"hello.wasm\"").and_then(|(path, span)| {
                let wasm = WasmPath::from_str(path).map(Some);
                self.report(wasm.map_err(|reason| ManifestProblem::InvalidWasmPath {
                    value: path.to_owned(),
                    reason,
                    span,
                }))
            }),
        };
        Some(ComponentInfo { name: name?, version: version?, wasm: wasm? })
    }

    fn wasi(&mut self, table: TableRef<'_>) -> Option<WasiConfig> {
        let t = table.table;
        let problems_before = self.problems.len();
        let mut wasi = WasiConfig::default();
        if let Some(value) = t.get("stdio") {
            let help = "use \"discard\" (the default), \"capture\" (returned with the call) or \"inherit\" (the host's own stdout and stderr)";
            wasi.stdio = self.named(value, "wasi.stdio", Stdio::NAMES, "not a stdio mode", help).unwrap_or_default();
        }
        if let Some(value) = t.get("stdin") {
            let help = "use \"none\" (the default: reads see end of file) or \"inherit\" (the host's stdin)";
            wasi.stdin =
                self.named(value, "wasi.stdin", &["none", "inherit"], "not a stdin mode", help).unwrap_or_default();
        }
        if let Some(value) = t.get("args") {
            let args = self.string_array(value, "wasi.args", "args = [\"--verbose\", \"input.txt\"]");
            wasi.args = args.unwrap_or_default().into_iter().map(|(arg, _)| arg.to_owned()).collect();
        }
        if let Some(value) = t.get("env") {
            wasi.env = self.env(value).unwrap_or_default();
        }
        let mut dirs_span = None;
        if let Some(value) = t.get("dirs") {
            dirs_span = Some(span_of(value));
            wasi.dirs = self.dirs(value).unwrap_or_default();
        }
        let mut network_span = None;
        if let Some(value) = t.get("network") {
            network_span = Some(span_of(value));
            wasi.network = self.network(value).unwrap_or_default();
        }
        let mut http_span = None;
        if let Some(value) = t.get("http") {
            http_span = Some(span_of(value));
            wasi.http = self.http(value).unwrap_or_default();
        }
        if let Some(value) = t.get("host-functions") {
            wasi.host_functions = self.host_functions(value).unwrap_or_default();
        }
        for (key, policy_key) in self.policy.grant_refusals(&wasi) {
            let span = match key {
                "wasi.dirs" => dirs_span,
                "wasi.network" => network_span,
                _ => http_span,
            };
            if policy_key == "network-ranges" {
                let ranges: Vec<String> = self.policy.network_ranges().iter().map(ToString::to_string).collect();
                self.problems.push(ManifestProblem::InvalidValue {
                    key: key.into(),
                    value: "an address".into(),
                    reason: "outside the host policy's `[grants] network-ranges`".into(),
                    span: span.unwrap_or(table.span),
                    help: format!("the host's policy lets network grants name only {}", ranges.join(", ")),
                });
                continue;
            }
            let help = if policy_key == "absolute-dirs" {
                "give host directories relative to the manifest's directory and inside it, or ask the host to set `[grants] absolute-dirs = true` in its policy".to_owned()
            } else {
                format!(
                    "remove the grant, or ask the host to set `[grants] {policy_key} = true` in its policy (--policy FILE)"
                )
            };
            let span = span.unwrap_or(table.span);
            self.problems.push(ManifestProblem::GrantRefused { key: key.to_owned(), policy_key, span, help });
        }
        (self.problems.len() == problems_before).then_some(wasi)
    }

    /// A string naming one of `names`, parsed as `T`.
    fn named<T: FromStr>(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        key: &str,
        names: &[&str],
        reason: &str,
        help: &str,
    ) -> Option<T> {
        let (text, span) =
            self.string(value, key, &format!("{} = \"{}\"", key.rsplit('.').next().unwrap_or(key), names[0]))?;
        let parsed = T::from_str(text).map_err(|_| {
            let suggestion = closest(text, names).map_or(String::new(), |s| format!("did you mean `{s}`? "));
            ManifestProblem::InvalidValue {
                key: key.into(),
                value: format!("\"{text}\""),
                reason: reason.into(),
                span,
                help: format!("{suggestion}{help}"),
            }
        });
        self.report(parsed)
    }

    pub(crate) fn invalid(&mut self, key: &str, value: &str, reason: &str, span: SourceSpan, help: &str) {
        self.problems.push(ManifestProblem::InvalidValue {
            key: key.into(),
            value: format!("\"{value}\""),
            reason: reason.into(),
            span,
            help: help.into(),
        });
    }

    pub(crate) fn string_array<'t>(
        &mut self,
        value: &'t Spanned<DeValue<'t>>,
        key: &str,
        example: &str,
    ) -> Option<Vec<(&'t str, SourceSpan)>> {
        let DeValue::Array(items) = value.get_ref() else {
            self.wrong_type(key, "an array of strings", value.get_ref(), span_of(value), example);
            return None;
        };
        let strings: Vec<_> = items.iter().filter_map(|item| self.string(item, key, example)).collect();
        (strings.len() == items.len()).then_some(strings)
    }

    /// A sub-table of `[wasi]`, with its unknown keys reported.
    fn sub_table<'t>(
        &mut self,
        value: &'t Spanned<DeValue<'t>>,
        key: &str,
        known: &[&str],
        example: &str,
    ) -> Option<&'t DeTable<'t>> {
        let DeValue::Table(table) = value.get_ref() else {
            self.wrong_type(key, "a table", value.get_ref(), span_of(value), example);
            return None;
        };
        self.unknown_keys(table, known, key);
        Some(table)
    }

    /// `[wasi] host-functions`: names of the runtime's reference interfaces.
    fn host_functions(&mut self, value: &Spanned<DeValue<'_>>) -> Option<BTreeSet<HostInterface>> {
        let key = "wasi.host-functions";
        let names = self.string_array(value, key, "host-functions = [\"log\", \"time\", \"kv\"]")?;
        let mut granted = BTreeSet::new();
        for (name, span) in names {
            match HostInterface::from_str(name) {
                Ok(interface) => {
                    granted.insert(interface);
                }
                Err(()) => {
                    let suggestion =
                        closest(name, HostInterface::NAMES).map_or(String::new(), |s| format!("did you mean `{s}`? "));
                    let help =
                        format!("{suggestion}the runtime's host interfaces are {}", HostInterface::NAMES.join(", "));
                    self.invalid(key, name, "not a host interface", span, &help);
                }
            }
        }
        Some(granted)
    }

    fn env(&mut self, value: &Spanned<DeValue<'_>>) -> Option<BTreeMap<String, String>> {
        let DeValue::Table(table) = value.get_ref() else {
            self.wrong_type("wasi.env", "a table", value.get_ref(), span_of(value), "env = { RUST_LOG = \"info\" }");
            return None;
        };
        let mut env = BTreeMap::new();
        let mut ok = true;
        for (name, value) in table.iter() {
            let name_text = name.get_ref().as_ref();
            let path = format!("wasi.env.{name_text}");
            let Some((text, span)) = self.string(value, &path, &format!("{name_text} = \"value\"")) else {
                ok = false;
                continue;
            };
            if let Err(reason) = check_env_var(name_text, text) {
                self.invalid(
                    &path,
                    text,
                    reason,
                    span,
                    "environment variables are NAME = \"value\" without NUL or `=` in the name",
                );
                ok = false;
                continue;
            }
            env.insert(name_text.to_owned(), text.to_owned());
        }
        ok.then_some(env)
    }

    fn dirs(&mut self, value: &Spanned<DeValue<'_>>) -> Option<BTreeMap<String, DirGrant>> {
        // Its keys are the guest's paths, so none is unknown.
        let DeValue::Table(table) = value.get_ref() else {
            self.wrong_type("wasi.dirs", "a table", value.get_ref(), span_of(value), DIRS_EXAMPLE);
            return None;
        };
        let mut dirs = BTreeMap::new();
        let mut ok = true;
        for (guest, grant) in table.iter() {
            let guest_path = guest.get_ref().as_ref();
            let key = format!("wasi.dirs.\"{guest_path}\"");
            if let Err(reason) = check_guest_dir(guest_path) {
                self.invalid(
                    &key,
                    guest_path,
                    reason,
                    span_of(guest),
                    "name the directory as the guest sees it, e.g. \"/data\"",
                );
                ok = false;
                continue;
            }
            match self.dir(grant, &key) {
                Some(dir) => {
                    dirs.insert(guest_path.to_owned(), dir);
                }
                None => ok = false,
            }
        }
        ok.then_some(dirs)
    }

    fn dir(&mut self, value: &Spanned<DeValue<'_>>, key: &str) -> Option<DirGrant> {
        let table = self.sub_table(value, key, DIR_KEYS, DIRS_EXAMPLE)?;
        let host = match table.get("host") {
            Some(host) => self.string(host, &format!("{key}.host"), "host = \"data\""),
            None => {
                self.missing_key(key, "host", span_of(value));
                None
            }
        };
        let mode = match table.get("mode") {
            Some(mode) => self.named::<DirMode>(
                mode,
                &format!("{key}.mode"),
                &["ro", "rw"],
                "not a directory mode",
                "use \"ro\" (read-only) or \"rw\" (read-write)",
            ),
            None => {
                self.missing_key(key, "mode", span_of(value));
                None
            }
        };
        let max_bytes = match table.get("max-bytes") {
            Some(value) => {
                let key = format!("{key}.max-bytes");
                let max = self.policy.grants().max_dir_bytes;
                let bytes = self.size(value, &key)?;
                self.within_grant_policy(&key, bytes, max.as_bytes(), value, "[grants] max-dir-bytes")?;
                Some(ByteSize::bytes(bytes))
            }
            None => None,
        };
        let max_entries = match table.get("max-entries") {
            Some(value) => {
                let key = format!("{key}.max-entries");
                let max = self.policy.grants().max_dir_entries;
                let entries = self.count(value, &key)?;
                self.within_grant_policy(&key, entries, u64::from(max), value, "[grants] max-dir-entries")?;
                u32::try_from(entries).ok()
            }
            None => None,
        };
        let (host, span) = host?;
        match DirGrant::new(host, mode?) {
            Ok(dir) => Some(dir.with_quota(max_bytes, max_entries)),
            Err(reason) => {
                self.invalid(
                    &format!("{key}.host"),
                    host,
                    reason,
                    span,
                    "give the host directory, e.g. host = \"data\"",
                );
                None
            }
        }
    }

    /// `value` (already read as `number`) is at most the policy's `max`, named by `policy_key`.
    fn within_grant_policy(
        &mut self,
        key: &str,
        number: u64,
        max: u64,
        value: &Spanned<DeValue<'_>>,
        policy_key: &str,
    ) -> Option<()> {
        if number <= max {
            return Some(());
        }
        self.problems.push(ManifestProblem::QuotaAbovePolicy {
            key: key.to_owned(),
            value: number.to_string(),
            max: max.to_string(),
            span: span_of(value),
            help: format!("ask for at most {max}, or ask the host to raise `{policy_key}` in its policy"),
        });
        None
    }

    fn missing_key(&mut self, table: &str, key: &'static str, span: SourceSpan) {
        self.problems.push(ManifestProblem::MissingKey {
            key: format!("{table}.{key}"),
            span,
            help: format!("every directory states `host` and `mode` (\"ro\" or \"rw\"), for example:\n{DIRS_EXAMPLE}"),
        });
    }

    fn network(&mut self, value: &Spanned<DeValue<'_>>) -> Option<NetworkGrant> {
        let table = self.sub_table(value, "wasi.network", NETWORK_KEYS, NETWORK_EXAMPLE)?;
        let mut network = NetworkGrant::default();
        let mut ok = true;
        for (key, list) in
            [("tcp-connect", &mut network.tcp_connect), ("tcp-bind", &mut network.tcp_bind), ("udp", &mut network.udp)]
        {
            let Some(value) = table.get(key) else { continue };
            let path = format!("wasi.network.{key}");
            let Some(addresses) = self.string_array(value, &path, NETWORK_EXAMPLE) else {
                ok = false;
                continue;
            };
            for (text, span) in addresses {
                match AddressPattern::from_str(text) {
                    Ok(address) => list.push(address),
                    Err(reason) => {
                        self.invalid(
                            &path,
                            text,
                            reason,
                            span,
                            "write IP:PORT, e.g. \"127.0.0.1:8080\" or \"[::1]:8080\"; a port may be `*` (any) and the IP a CIDR range (\"127.0.0.0/8:*\"); host names are not accepted",
                        );
                        ok = false;
                    }
                }
            }
        }
        if let Some(value) = table.get("ip-name-lookup") {
            match value.get_ref() {
                DeValue::Boolean(allowed) => network.ip_name_lookup = *allowed,
                other => {
                    self.wrong_type(
                        "wasi.network.ip-name-lookup",
                        "a boolean",
                        other,
                        span_of(value),
                        "ip-name-lookup = true",
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(network)
    }

    fn http(&mut self, value: &Spanned<DeValue<'_>>) -> Option<HttpGrant> {
        let table = self.sub_table(value, "wasi.http", HTTP_KEYS, HTTP_EXAMPLE)?;
        let mut http = HttpGrant::default();
        if let Some(value) = table.get("on-client-gone") {
            let help = "write on-client-gone = \"cancel\" (the default) or \"finish\"";
            http.on_client_gone =
                self.named(value, "wasi.http.on-client-gone", OnClientGone::NAMES, "not a choice", help)?;
        }
        let Some(value) = table.get("allowed-hosts") else { return Some(http) };
        let origins = self.string_array(value, "wasi.http.allowed-hosts", HTTP_EXAMPLE)?;
        let mut ok = true;
        for (text, span) in origins {
            match HttpOrigin::from_str(text) {
                Ok(origin) => http.allowed_hosts.push(origin),
                Err(reason) => {
                    self.invalid(
                        "wasi.http.allowed-hosts",
                        text,
                        reason,
                        span,
                        "write an origin, e.g. \"http://127.0.0.1:8080\"",
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(http)
    }

    /// The value, or `None` with its problem recorded.
    fn report<T>(&mut self, result: Result<T, ManifestProblem>) -> Option<T> {
        result.map_err(|problem| self.problems.push(problem)).ok()
    }

    fn required_string<'t>(
        &mut self,
        table: TableRef<'t>,
        key: &'static str,
        path: &'static str,
        example: &str,
    ) -> Option<(&'t str, SourceSpan)> {
        let Some(value) = table.table.get(key) else {
            self.problems.push(ManifestProblem::MissingKey {
                key: path.to_owned(),
                span: table.span,
                help: format!("add `{example}` to [component]"),
            });
            return None;
        };
        self.string(value, path, example)
    }

    fn string<'t>(
        &mut self,
        value: &'t Spanned<DeValue<'t>>,
        key: &str,
        example: &str,
    ) -> Option<(&'t str, SourceSpan)> {
        match value.get_ref() {
            DeValue::String(text) => Some((text.as_ref(), span_of(value))),
            other => {
                self.wrong_type(key, "a string", other, span_of(value), example);
                None
            }
        }
    }

    pub(crate) fn wrong_type(
        &mut self,
        key: &str,
        expected: &'static str,
        found: &DeValue<'_>,
        span: SourceSpan,
        example: &str,
    ) {
        self.problems.push(ManifestProblem::WrongType {
            key: key.to_owned(),
            expected,
            found: type_name(found),
            span,
            help: format!("for example: {example}"),
        });
    }

    fn resources(&mut self, table: TableRef<'_>) -> Option<Resources> {
        let memory = self.required_limit(table, LimitKey::Memory, Self::byte_size);
        let fuel = self.required_limit(table, LimitKey::Fuel, Self::fuel);
        let timeout = self.required_limit(table, LimitKey::Timeout, Self::timeout);
        let table_elements = self.optional_count(table, LimitKey::TableElements);
        let instances = self.optional_count(table, LimitKey::Instances);
        Some(Resources {
            memory: memory?,
            fuel: fuel?,
            timeout: timeout?,
            table_elements: table_elements?,
            instances: instances?,
        })
    }

    /// `value` if the policy accepts it for `key`; reported otherwise.
    fn within<T: PartialOrd + Copy + std::fmt::Display>(
        &mut self,
        key: LimitKey,
        value: T,
        bounds: Bounds<T>,
        span: SourceSpan,
    ) -> Option<T> {
        match PolicyViolation::check(key, value, bounds) {
            None => Some(value),
            Some(violation) => {
                self.problems.push(out_of_range(violation, span));
                None
            }
        }
    }

    /// A required limit, read by `read` or reported as missing.
    fn required_limit<T>(
        &mut self,
        table: TableRef<'_>,
        key: LimitKey,
        read: impl FnOnce(&mut Self, &Spanned<DeValue<'_>>) -> Option<T>,
    ) -> Option<T> {
        let Some(value) = table.table.get(key.as_str()) else {
            self.problems.push(ManifestProblem::MissingLimit {
                key: key.as_str(),
                span: table.span,
                help: format!(
                    "add `{}` to [resources]; limits have no defaults, so every manifest states its own",
                    example(key)
                ),
            });
            return None;
        };
        read(self, value)
    }

    fn byte_size(&mut self, value: &Spanned<DeValue<'_>>) -> Option<ByteSize> {
        let key = LimitKey::Memory;
        let span = span_of(value);
        let size = match value.get_ref() {
            DeValue::Integer(integer) => ByteSize::bytes(self.unsigned(integer, key, span)?),
            DeValue::String(text) => {
                ByteSize::from_str(text).map_err(|error| self.quantity_problem(error, key, text, span)).ok()?
            }
            other => {
                self.wrong_type(&path(key), "a size", other, span, "memory = \"1MiB\" (or a number of bytes)");
                return None;
            }
        };
        self.nonzero(size.as_bytes(), key, span)?;
        self.within(key, size, self.policy.memory(), span)
    }

    fn timeout(&mut self, value: &Spanned<DeValue<'_>>) -> Option<Timeout> {
        let key = LimitKey::Timeout;
        let span = span_of(value);
        let timeout = match value.get_ref() {
            DeValue::String(text) => {
                Timeout::from_str(text).map_err(|error| self.quantity_problem(error, key, text, span)).ok()?
            }
            // A bare number could be seconds or milliseconds: ask which.
            DeValue::Integer(integer) => {
                let number = integer.to_string();
                self.quantity_problem(QuantityError::MissingUnit { number: number.clone() }, key, &number, span);
                return None;
            }
            other => {
                self.wrong_type(&path(key), "a duration", other, span, example(key));
                return None;
            }
        };
        self.nonzero(timeout.as_millis(), key, span)?;
        self.within(key, timeout, self.policy.timeout(), span)
    }

    fn fuel(&mut self, value: &Spanned<DeValue<'_>>) -> Option<Fuel> {
        let key = LimitKey::Fuel;
        let units = self.positive_integer(value, key)?;
        let Some(fuel) = Fuel::new(units) else {
            self.overflow(key, span_of(value));
            return None;
        };
        self.within(key, fuel, self.policy.fuel(), span_of(value))
    }

    /// An optional positive count such as `instances`: `Some(None)` when absent,
    /// `None` when present but invalid.
    fn optional_count(&mut self, table: TableRef<'_>, key: LimitKey) -> Option<Option<u32>> {
        let Some(value) = table.table.get(key.as_str()) else {
            return Some(None);
        };
        let count = self.positive_integer(value, key)?;
        let bounds = match key {
            LimitKey::TableElements => self.policy.table_elements(),
            _ => self.policy.instances(),
        };
        let bounds = Bounds { min: u64::from(bounds.min), max: u64::from(bounds.max) };
        let count = self.within(key, count, bounds, span_of(value))?;
        // Within a u32 policy bound, so the conversion cannot fail.
        u32::try_from(count).ok().map(Some)
    }

    fn positive_integer(&mut self, value: &Spanned<DeValue<'_>>, key: LimitKey) -> Option<u64> {
        let span = span_of(value);
        let DeValue::Integer(integer) = value.get_ref() else {
            let example = format!("{} (an integer, no quotes)", example(key));
            self.wrong_type(&path(key), "an integer", value.get_ref(), span, &example);
            return None;
        };
        let number = self.unsigned(integer, key, span)?;
        self.nonzero(number, key, span)
    }

    /// A TOML integer as `u64`, reporting negatives and values past 64 bits.
    fn unsigned(&mut self, integer: &DeInteger<'_>, key: LimitKey, span: SourceSpan) -> Option<u64> {
        // Digits beyond i128 can only be an overflow, or a negative that also overflows.
        let value = i128::from_str_radix(integer.as_str(), integer.radix())
            .unwrap_or(if integer.as_str().starts_with('-') { i128::MIN } else { i128::MAX });
        if value < 0 {
            self.problems.push(ManifestProblem::NegativeValue { key: path(key), span });
            return None;
        }
        u64::try_from(value).map_err(|_| self.overflow(key, span)).ok()
    }

    fn nonzero(&mut self, value: u64, key: LimitKey, span: SourceSpan) -> Option<u64> {
        if value == 0 {
            self.problems.push(ManifestProblem::ZeroValue { key: path(key), span });
            return None;
        }
        Some(value)
    }

    fn overflow(&mut self, key: LimitKey, span: SourceSpan) {
        let (_, max) = self.policy.bounds_text(key);
        self.problems.push(ManifestProblem::Overflow {
            key: path(key),
            span,
            help: format!("the host accepts at most {max} for `{key}`"),
        });
    }

    fn quantity_problem(&mut self, error: QuantityError, key: LimitKey, text: &str, span: SourceSpan) {
        let units = if key == LimitKey::Memory { "B, KiB, MiB, GiB" } else { "ms, s" };
        let problem = match error {
            QuantityError::MissingUnit { number } => ManifestProblem::MissingUnit {
                help: if key == LimitKey::Memory {
                    format!("add a unit ({units}), e.g. \"{number}KiB\", or write the bytes as a bare integer")
                } else {
                    format!("add a unit ({units}): \"{number}ms\" or \"{number}s\"")
                },
                key: path(key),
                value: number,
                span,
            },
            QuantityError::UnknownUnit { unit, suggestion } => ManifestProblem::UnknownUnit {
                help: match suggestion {
                    Some(suggestion) => {
                        format!("did you mean `{suggestion}`? accepted units: {units}")
                    }
                    None => format!("accepted units: {units}"),
                },
                key: path(key),
                unit,
                span,
            },
            QuantityError::Negative => ManifestProblem::NegativeValue { key: path(key), span },
            QuantityError::Overflow => return self.overflow(key, span),
            error => ManifestProblem::InvalidValue {
                key: path(key),
                value: format!("\"{text}\""),
                reason: error.to_string(),
                span,
                help: format!(
                    "write a whole number and a unit, e.g. {}; use a smaller unit for fractions",
                    example(key)
                ),
            },
        };
        self.problems.push(problem);
    }
}

/// The dotted path of a limit, as used in messages.
fn path(key: LimitKey) -> String {
    format!("resources.{key}")
}

/// A line that sets `key` to a typical value.
fn example(key: LimitKey) -> &'static str {
    match key {
        LimitKey::Memory => "memory = \"1MiB\"",
        LimitKey::Fuel => "fuel = 50_000_000",
        LimitKey::Timeout => "timeout = \"100ms\"",
        LimitKey::TableElements => "table-elements = 10_000",
        LimitKey::Instances => "instances = 10",
    }
}

/// The table a known key belongs in, for "belongs in [resources]" hints.
fn home_table(key: &str) -> Option<&'static str> {
    if WASI_KEYS.contains(&key) {
        Some("wasi")
    } else if RESOURCE_KEYS.contains(&key) {
        Some("resources")
    } else if COMPONENT_KEYS.contains(&key) {
        Some("component")
    } else {
        None
    }
}

fn out_of_range(violation: PolicyViolation, span: SourceSpan) -> ManifestProblem {
    let PolicyViolation { key, value, min, max } = violation;
    ManifestProblem::OutOfRange {
        help: {
            let short = key.as_str().trim_start_matches("resources.");
            format!(
                "ask for a value from {min} to {max}, the host policy's range; or run it under a policy that admits {value}: `--policy FILE` whose [resources] says `{short} = {{ max = ... }}` (or `min`), e.g. examples/policy/wide.toml"
            )
        },
        key: key.as_str(),
        value,
        min,
        max,
        span,
    }
}
