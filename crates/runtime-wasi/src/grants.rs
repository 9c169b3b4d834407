//! [`WasiGrants`]: a manifest's `[wasi]` grants made concrete for one host:
//! directories resolved and checked on disk, the program's name for argv\[0\].

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use runtime_manifest::{DirMode, GrantPolicy, HostInterface, WasiConfig};

use crate::grant_dir::{AccountError, GrantAccount, open_pinned};
use runtime_core::{Capabilities, LoadError};

/// The `[wasi]` grants every store of a component gets, with each preopened
/// directory resolved to a canonical host path.
#[derive(Debug, Clone)]
pub struct WasiGrants {
    pub(crate) config: WasiConfig,
    pub(crate) dirs: Vec<Preopen>,
    pub(crate) program_name: String,
    /// Open files, directories and sockets one instance may hold at once.
    pub(crate) max_descriptors: u32,
    /// Outgoing HTTP requests one instance may start in all.
    pub(crate) max_outgoing_requests: u32,
    /// Clocks and random numbers from this seed, for replay.
    pub(crate) replay_seed: Option<u64>,
}

/// One preopened directory, resolved and opened.
#[derive(Debug, Clone)]
pub(crate) struct Preopen {
    /// The directory, opened once at load; each instance gets a duplicate.
    pub(crate) dir: Arc<File>,
    /// A read-write grant's disk account, shared by every instance.
    pub(crate) account: Option<Arc<GrantAccount>>,
    pub(crate) guest: String,
    pub(crate) mode: DirMode,
    /// Bytes the directory may hold in files (read-write grants).
    pub(crate) max_bytes: u64,
    /// Files, directories and links it may hold (read-write grants).
    pub(crate) max_entries: u64,
}

impl Default for WasiGrants {
    fn default() -> Self {
        Self {
            config: WasiConfig::default(),
            dirs: Vec::new(),
            program_name: String::from("component"),
            max_descriptors: runtime_manifest::DEFAULT_MAX_DESCRIPTORS,
            max_outgoing_requests: runtime_manifest::DEFAULT_MAX_OUTGOING_REQUESTS,
            replay_seed: None,
        }
    }
}

impl WasiGrants {
    /// Resolves `config`'s directories under `policy`: a relative host path
    /// is joined onto `base` (the manifest's directory) and must lie inside
    /// it; an absolute one (which only a host, or a policy allowing
    /// `absolute-dirs`, can grant) is taken as it is. Every directory must
    /// exist, and no part of its path may be a symlink unless the policy
    /// allows `symlinked-dirs`: a guest with a read-write grant can plant a
    /// relative link that climbs out, and a later grant of a path through it
    /// would reach what no host named.
    pub fn resolve(config: &WasiConfig, base: &Path, policy: &GrantPolicy) -> Result<Self, LoadError> {
        let mut dirs = Vec::with_capacity(config.dirs.len());
        for (guest, grant) in &config.dirs {
            let refuse = |host: &Path, reason: String| LoadError::DirGrant {
                guest: guest.clone(),
                host: host.display().to_string(),
                reason,
            };
            let written = Path::new(&grant.host);
            let joined = if written.is_absolute() { written.to_owned() } else { base.join(written) };
            if !policy.symlinked_dirs
                && let Some(link) = first_symlink(&joined)
            {
                let reason = format!(
                    "{} is a symlink; a granted path may not cross one unless the host policy sets `[grants] symlinked-dirs = true`",
                    link.display()
                );
                return Err(refuse(&joined, reason));
            }
            let host = joined.canonicalize().map_err(|error| refuse(&joined, error.to_string()))?;
            if !host.is_dir() {
                return Err(refuse(&host, "not a directory".into()));
            }
            if !grant.leaves_base() {
                let base = base.canonicalize().map_err(|error| refuse(base, error.to_string()))?;
                if !host.starts_with(&base) {
                    let reason = format!("it leaves {} through a symlink", base.display());
                    return Err(refuse(&host, reason));
                }
            }
            let dir = open_pinned(&host).map_err(|error| refuse(&host, format!("cannot open it: {error}")))?;
            let max_entries = u64::from(grant.effective_max_entries(policy));
            let account = match grant.mode {
                DirMode::ReadWrite => Some(GrantAccount::acquire(&dir, max_entries).map_err(|error| match error {
                    AccountError::Busy { holder } => {
                        LoadError::GrantBusy { guest: guest.clone(), host: host.display().to_string(), holder }
                    }
                    AccountError::Io(error) => refuse(&host, format!("cannot measure it: {error}")),
                })?),
                _ => None,
            };
            dirs.push(Preopen {
                dir: Arc::new(dir),
                account,
                guest: guest.clone(),
                mode: grant.mode,
                max_bytes: grant.effective_max_bytes(policy).as_bytes(),
                max_entries,
            });
        }
        Ok(Self {
            config: config.clone(),
            dirs,
            max_descriptors: policy.max_descriptors,
            max_outgoing_requests: policy.max_outgoing_requests,
            ..Self::default()
        })
    }

    /// The same grants with `name` as argv\[0\] (by default `component`).
    pub fn with_program_name(mut self, name: impl Into<String>) -> Self {
        self.program_name = name.into();
        self
    }

    /// The same grants with deterministic clocks and random numbers from
    /// `seed`: the wall clock starts at 2000-01-01 and each clock moves 1 ms
    /// at every read, and both random generators are seeded, so a replayed
    /// instance reads the same values in the same order.
    pub fn with_replay_seed(mut self, seed: u64) -> Self {
        self.replay_seed = Some(seed);
        self
    }

    /// argv\[0\] of the component's guests.
    pub fn program_name(&self) -> &str {
        &self.program_name
    }

    /// The grants as the manifest wrote them.
    pub fn config(&self) -> &WasiConfig {
        &self.config
    }

    /// The capabilities to load a component with: these grants as the
    /// WASI layer's state, and the manifest's reference host interfaces.
    pub fn into_capabilities(self) -> Capabilities {
        let host_interfaces = self.config.host_functions.clone();
        Capabilities::new(host_interfaces, Some(Arc::new(self)))
    }

    /// The grants a component was loaded with, if it was given some.
    pub fn of(capabilities: &Capabilities) -> Option<&Self> {
        capabilities.layer::<Self>()
    }

    /// Whether the manifest grants `capability`, so that the interfaces
    /// needing it give the guest anything.
    /// Whether the manifest grants `interface`, one of the runtime's
    /// reference host interfaces (`[wasi] host-functions`).
    pub fn allows_host_interface(&self, interface: HostInterface) -> bool {
        self.config.host_functions.contains(&interface)
    }

    pub(crate) fn allows(&self, capability: Capability) -> bool {
        match capability {
            Capability::Network => !self.config.network.is_empty(),
            Capability::Http | Capability::HttpTypes => !self.config.http.is_empty(),
        }
    }
}

/// The first part of `path`, walking from its start, that is a symlink.
/// Parts above the current directory (`..` of a relative path) are the
/// host's own layout and are not checked.
fn first_symlink(path: &Path) -> Option<PathBuf> {
    let mut walked = PathBuf::new();
    for part in path.components() {
        walked.push(part);
        if matches!(part, std::path::Component::Normal(_))
            && std::fs::symlink_metadata(&walked).is_ok_and(|meta| meta.file_type().is_symlink())
        {
            return Some(walked);
        }
    }
    None
}

/// A grant that whole WASI interfaces need: without it, every call into
/// them fails `capability-denied`. `wasi:filesystem` needs no gate of its
/// own: without a directory grant its preopen list is empty, so no
/// descriptor, and nothing a descriptor leads to, can exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Capability {
    /// `wasi:sockets/*`: a `[wasi.network]` address.
    Network,
    /// `wasi:http/outgoing-handler`: a `[wasi.http]` origin.
    Http,
    /// `wasi:http/types`: a `[wasi.http]` origin, or a request the host
    /// serves to the store (its request, body and response live there).
    HttpTypes,
}

impl Capability {
    /// The grant that allows it, as the manifest and the CLI write it.
    pub(crate) const fn grant(self) -> &'static str {
        match self {
            Self::Network => "a `[wasi.network]` address (CLI: --allow-tcp ADDR)",
            Self::Http | Self::HttpTypes => "a `[wasi.http] allowed-hosts` origin (CLI: --allow-http ORIGIN)",
        }
    }
}
