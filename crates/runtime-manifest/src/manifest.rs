//! The validated manifest and its parts.

use std::fmt;
use std::path::{Component as PathPart, Path, PathBuf};
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::grants::WasiConfig;
use crate::policy::{DEFAULT_TABLE_ELEMENTS, HostPolicy, PolicyViolation};
use crate::units::{ByteSize, Fuel, Timeout};

/// A validated `Component.toml`.
///
/// Values of this type come from parsing ([`ComponentManifest::parse`]),
/// which validates them against a [`HostPolicy`], or from values
/// ([`ComponentManifest::from_resources`]); the runtime checks the limits of
/// either against its policy again when it loads a component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ComponentManifest {
    /// The `[component]` table.
    pub component: ComponentInfo,
    /// The `[resources]` table.
    pub resources: Resources,
    /// The optional `[wasi]` table: what WASI authority the component gets.
    #[serde(skip_serializing_if = "WasiConfig::is_default")]
    pub wasi: WasiConfig,
}

impl ComponentManifest {
    /// A manifest made of values: the component `name` (version 0.0.0, no
    /// `wasm` path) with `resources` and no WASI authority. Like a parsed
    /// manifest, it is checked against the runtime's policy when a component
    /// is loaded with it.
    pub fn from_resources(name: ComponentName, resources: Resources) -> Self {
        Self {
            component: ComponentInfo { name, version: semver::Version::new(0, 0, 0), wasm: None },
            resources,
            wasi: WasiConfig::default(),
        }
    }

    /// The same manifest with the `[wasi]` grants `wasi`.
    pub fn with_wasi(mut self, wasi: WasiConfig) -> Self {
        self.wasi = wasi;
        self
    }

    /// The manifest as TOML text that parses back to an equal manifest.
    pub fn to_toml(&self) -> String {
        // Serializing plain strings and integers into a table cannot fail; the
        // fallback keeps library code free of panics all the same.
        toml::to_string(self).unwrap_or_default()
    }
}

/// The `[component]` table: what the component is and where its code lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ComponentInfo {
    /// The component's name.
    pub name: ComponentName,
    /// The component's semantic version.
    #[serde(serialize_with = "serialize_display")]
    pub version: semver::Version,
    /// The component binary, relative to the manifest's directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wasm: Option<WasmPath>,
}

/// The `[resources]` table: the limits every call runs under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub struct Resources {
    /// Budget for the sum of all linear memories of an instance.
    pub memory: ByteSize,
    /// Fuel per call.
    pub fuel: Fuel,
    /// Wall-clock deadline per call, instantiation included.
    pub timeout: Timeout,
    /// Table elements summed over all tables, if the manifest sets them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table_elements: Option<u32>,
    /// Concurrent instances of the component, if the manifest sets them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instances: Option<u32>,
}

impl Resources {
    /// Limits as values, without a manifest text: a `memory` budget for all
    /// linear memories of an instance, `fuel` and a `timeout` per call. They
    /// are checked against the runtime's policy when a component is loaded
    /// with them (or with [`check`](Self::check)).
    pub fn new(memory: ByteSize, fuel: Fuel, timeout: Timeout) -> Self {
        Self { memory, fuel, timeout, table_elements: None, instances: None }
    }

    /// The same limits with `elements` table elements, summed over all tables.
    pub fn with_table_elements(mut self, elements: u32) -> Self {
        self.table_elements = Some(elements);
        self
    }

    /// The same limits with at most `instances` concurrent instances.
    pub fn with_instances(mut self, instances: u32) -> Self {
        self.instances = Some(instances);
        self
    }

    /// Table elements in force: the manifest's value or [`DEFAULT_TABLE_ELEMENTS`],
    /// never above the policy.
    pub fn effective_table_elements(&self, policy: &HostPolicy) -> u32 {
        self.table_elements.unwrap_or(DEFAULT_TABLE_ELEMENTS).min(policy.table_elements().max)
    }

    /// Concurrent instances in force: the manifest's value, or the policy's
    /// most for one component (`[resources] instances`, 100 by default) when it
    /// does not say; never above the policy.
    pub fn effective_instances(&self, policy: &HostPolicy) -> u32 {
        self.instances.unwrap_or(policy.instances().max).min(policy.instances().max)
    }

    /// Checks these limits against `policy` again (see [`HostPolicy::violations`]).
    pub fn check(&self, policy: &HostPolicy) -> Result<(), Vec<PolicyViolation>> {
        let violations = policy.violations(self);
        if violations.is_empty() { Ok(()) } else { Err(violations) }
    }
}

fn serialize_display<T: fmt::Display, S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// A component name: 1 to 64 characters of `a-z`, `0-9` and `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ComponentName(String);

impl ComponentName {
    /// The longest accepted name.
    pub const MAX_LEN: usize = 64;

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ComponentName {
    type Err = &'static str;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        if name.is_empty() {
            return Err("the name is empty");
        }
        if name.len() > Self::MAX_LEN {
            return Err("the name is longer than 64 characters");
        }
        if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err("a name may only contain lowercase letters a-z, digits 0-9 and `-`");
        }
        Ok(Self(name.to_owned()))
    }
}

impl fmt::Display for ComponentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A path to the component binary that stays inside the manifest's directory:
/// relative, without `..` that climbs out, without a drive or root.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct WasmPath(String);

impl WasmPath {
    /// The path as written in the manifest.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path joined onto the directory that holds the manifest.
    pub fn resolve(&self, manifest_dir: &Path) -> PathBuf {
        manifest_dir.join(&self.0)
    }
}

impl FromStr for WasmPath {
    type Err = &'static str;

    fn from_str(path: &str) -> Result<Self, Self::Err> {
        if path.is_empty() {
            return Err("the path is empty");
        }
        if path.contains('\0') {
            return Err("the path contains a NUL character");
        }
        // Backslashes and drive letters are rejected on every platform so that
        // a manifest means the same thing wherever it is checked.
        if path.contains('\\') {
            return Err("use `/` to separate path components");
        }
        if path.starts_with('/') || path.as_bytes().get(1) == Some(&b':') {
            return Err("the path is absolute; it must be relative to the manifest's directory");
        }
        let mut depth: usize = 0;
        for part in Path::new(path).components() {
            match part {
                PathPart::Normal(_) => depth += 1,
                PathPart::CurDir => {}
                PathPart::ParentDir => {
                    depth = depth.checked_sub(1).ok_or("the path leaves the manifest's directory through `..`")?;
                }
                PathPart::RootDir | PathPart::Prefix(_) => {
                    return Err("the path is absolute; it must be relative to the manifest's directory");
                }
            }
        }
        if depth == 0 {
            return Err("the path names the manifest's directory itself, not a file");
        }
        Ok(Self(path.to_owned()))
    }
}

impl fmt::Display for WasmPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasm_paths_stay_inside_the_manifest_directory() {
        for ok in ["hello.wasm", "./build/hello.wasm", "a/../hello.wasm"] {
            assert!(ok.parse::<WasmPath>().is_ok(), "{ok}");
        }
        for bad in ["", "/etc/passwd", "../hello.wasm", "a/../../x.wasm", "C:/x.wasm", "a\\b.wasm", ".", "a/.."] {
            assert!(bad.parse::<WasmPath>().is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_lowercase_kebab() {
        assert!("hello-2".parse::<ComponentName>().is_ok());
        for bad in ["", "Hello", "hello_world", "héllo", &"a".repeat(65)] {
            assert!(bad.parse::<ComponentName>().is_err(), "{bad}");
        }
    }
}
