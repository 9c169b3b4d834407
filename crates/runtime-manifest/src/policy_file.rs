//! The host policy file (`--policy FILE`): [`HostPolicy`] as TOML, validated
//! with the same diagnostics as a manifest.
//!
//! ```toml
//! [resources]
//! memory = { min = "512KiB", max = "64MiB" }
//! fuel = { max = 100_000_000_000 }
//! timeout = { max = "60s" }
//! [compile]
//! max-functions = 50_000
//! [grants]
//! network = true
//! [engine]
//! component-model-async = true
//! ```
//!
//! Every key is optional; an omitted key keeps the default policy's value.

use std::path::Path;
use std::str::FromStr;

use miette::SourceSpan;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::{Error, InvalidManifest};
use crate::parse::{Checker, closest, span_of};
use crate::policy::{HostPolicy, HostPolicyBuilder};
use crate::problem::ManifestProblem;
use crate::units::{ByteSize, Fuel, Timeout};
use crate::{CompileBudget, GrantPolicy, MAX_MANIFEST_BYTES};

const ROOT_KEYS: &[&str] = &["resources", "compile", "grants", "engine"];
const ENGINE_KEYS: &[&str] = &["component-model-async"];
const RESOURCE_KEYS: &[&str] = &[
    "memory",
    "fuel",
    "timeout",
    "table-elements",
    "instances",
    "concurrent-instances",
    "max-handles",
    "copy-limit-factor",
    "host-memory-factor",
];
const RANGE_KEYS: &[&str] = &["min", "max"];
const COMPILE_KEYS: &[&str] = &[
    "max-functions",
    "max-function-size",
    "max-code",
    "max-control-depth",
    "max-instantiations",
    "max-definitions",
    "max-wat-size",
    "max-compile-time",
    "max-compile-memory",
];
const GRANT_KEYS: &[&str] = &[
    "dirs",
    "absolute-dirs",
    "symlinked-dirs",
    "network",
    "http",
    "max-dir-bytes",
    "max-dir-entries",
    "max-descriptors",
    "max-outgoing-requests",
    "network-ranges",
];

impl HostPolicy {
    /// Parses and validates a policy file's `text`; `name` labels it in diagnostics.
    pub fn parse(name: &str, text: &str) -> Result<Self, Error> {
        if text.len() > MAX_MANIFEST_BYTES {
            return Err(Error::PolicyTooLarge {
                name: name.to_owned(),
                size: text.len() as u64,
                limit: MAX_MANIFEST_BYTES as u64,
            });
        }
        let default = HostPolicy::default();
        let mut checker = Checker::new(&default, text);
        let policy = match DeTable::parse(text) {
            Ok(root) => checker.policy_document(root.get_ref()),
            Err(error) => {
                let span = error.span().map_or(SourceSpan::from(0..0), SourceSpan::from);
                checker.problems.push(ManifestProblem::Syntax { message: error.message().to_owned(), span });
                None
            }
        };
        match policy {
            Some(policy) if checker.problems.is_empty() => Ok(policy),
            _ => Err(InvalidManifest::of_policy(name, text.to_owned(), checker.problems).into()),
        }
    }

    /// Reads, parses and validates the policy file at `path`.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let bytes = crate::parse::read_capped(path).map_err(|error| match error {
            Error::Read { path, source } => Error::ReadPolicy { path, source },
            Error::TooLarge { name, size, limit } => Error::PolicyTooLarge { name, size, limit },
            other => other,
        })?;
        let name = path.display().to_string();
        match String::from_utf8(bytes) {
            Ok(text) => Self::parse(&name, &text),
            Err(error) => {
                let offset = error.utf8_error().valid_up_to();
                let text = String::from_utf8_lossy(error.as_bytes()).into_owned();
                let problem = ManifestProblem::NotUtf8 { span: (offset, 1).into() };
                Err(InvalidManifest::of_policy(&name, text, vec![problem]).into())
            }
        }
    }

    /// The policy as a policy file: every key with its value in force.
    pub fn to_toml(&self) -> String {
        let budget = self.compile_budget();
        let mut text = String::from("[resources]\n");
        let range = |min: &dyn std::fmt::Display, max: &dyn std::fmt::Display, quote: bool| {
            if quote {
                format!("{{ min = \"{min}\", max = \"{max}\" }}")
            } else {
                format!("{{ min = {min}, max = {max} }}")
            }
        };
        text += &format!("memory = {}\n", range(&self.memory().min, &self.memory().max, true));
        text += &format!("fuel = {}\n", range(&self.fuel().min, &self.fuel().max, false));
        text += &format!("timeout = {}\n", range(&self.timeout().min, &self.timeout().max, true));
        text += &format!("table-elements = {{ max = {} }}\n", self.table_elements().max);
        text += &format!("instances = {{ max = {} }}\n", self.instances().max);
        text += &format!("concurrent-instances = {}\n", self.max_concurrent_instances());
        text += &format!("max-handles = {}\n", self.max_handles());
        text += &format!("copy-limit-factor = {}\n", self.copy_limit_factor());
        text += &format!("host-memory-factor = {}\n", self.host_memory_factor());
        text += "\n[compile]\n";
        text += &format!("max-functions = {}\n", budget.max_functions);
        text += &format!("max-function-size = \"{}\"\n", ByteSize::bytes(budget.max_function_body_bytes as u64));
        text += &format!("max-code = \"{}\"\n", ByteSize::bytes(budget.max_code_bytes as u64));
        text += &format!("max-control-depth = {}\n", budget.max_control_depth);
        text += &format!("max-instantiations = {}\n", budget.max_instantiations);
        text += &format!("max-definitions = {}\n", budget.max_definitions);
        text += &format!("max-wat-size = \"{}\"\n", ByteSize::bytes(budget.max_wat_bytes as u64));
        text += &format!("max-compile-time = \"{}\"\n", budget.max_compile_time);
        text += &format!("max-compile-memory = \"{}\"\n", budget.max_compile_memory);
        text += "\n[grants]\n";
        for (key, allowed) in self.grants().entries() {
            text += &format!("{key} = {allowed}\n");
        }
        text += &format!("max-dir-bytes = \"{}\"\n", self.grants().max_dir_bytes);
        text += &format!("max-dir-entries = {}\n", self.grants().max_dir_entries);
        text += &format!("max-descriptors = {}\n", self.grants().max_descriptors);
        text += &format!("max-outgoing-requests = {}\n", self.grants().max_outgoing_requests);
        if !self.network_ranges().is_empty() {
            let ranges: Vec<String> = self.network_ranges().iter().map(|range| format!("\"{range}\"")).collect();
            text += &format!("network-ranges = [{}]\n", ranges.join(", "));
        }
        text += "\n[engine]\n";
        text += &format!("component-model-async = {}\n", self.component_model_async());
        text
    }
}

impl Checker<'_> {
    fn policy_document(&mut self, root: &DeTable<'_>) -> Option<HostPolicy> {
        self.unknown_keys(root, ROOT_KEYS, "the top level");
        let before = self.problems.len();
        let mut builder = HostPolicy::builder();
        let mut whole_span = SourceSpan::from(0..0);
        if let Some(table) = self.policy_table(root, "resources", RESOURCE_KEYS) {
            whole_span = table.1;
            builder = self.policy_resources(table.0, builder);
        }
        if let Some((table, _)) = self.policy_table(root, "compile", COMPILE_KEYS) {
            builder = builder.compile_budget(self.policy_compile(table));
        }
        if let Some((table, _)) = self.policy_table(root, "grants", GRANT_KEYS) {
            builder = builder.grants(self.policy_grants(table));
            if let Some(value) = table.get("network-ranges") {
                builder = builder.network_ranges(self.network_ranges(value));
            }
        }
        if let Some((table, _)) = self.policy_table(root, "engine", ENGINE_KEYS) {
            builder = self.policy_engine(table, builder);
        }
        if self.problems.len() != before {
            return None;
        }
        match builder.build() {
            Ok(policy) => Some(policy),
            Err(error) => {
                self.problems.push(ManifestProblem::InvalidValue {
                    key: "resources".into(),
                    value: "the policy".into(),
                    reason: error.to_string(),
                    span: whole_span,
                    help: "every range needs min <= max, both above zero".into(),
                });
                None
            }
        }
    }

    fn policy_table<'t>(
        &mut self,
        root: &'t DeTable<'t>,
        key: &str,
        known: &[&str],
    ) -> Option<(&'t DeTable<'t>, SourceSpan)> {
        let value = root.get(key)?;
        match value.get_ref() {
            DeValue::Table(table) => {
                self.unknown_keys(table, known, key);
                Some((table, span_of(value)))
            }
            other => {
                self.wrong_type(key, "a table", other, span_of(value), &format!("[{key}]"));
                None
            }
        }
    }

    fn policy_resources(&mut self, table: &DeTable<'_>, mut builder: HostPolicyBuilder) -> HostPolicyBuilder {
        let default = HostPolicy::default();
        if let Some((min, max)) = self.range(table, "memory", default.memory().min, default.memory().max, |c, v, k| {
            c.size(v, k).map(ByteSize::bytes)
        }) {
            builder = builder.memory(min, max);
        }
        if let Some((min, max)) = self.range(table, "fuel", default.fuel().min, default.fuel().max, |c, v, k| {
            let units = c.count(v, k)?;
            let fuel = Fuel::new(units);
            if fuel.is_none() {
                let help = format!("use at most {} (wasmtime keeps fuel as a signed 64-bit count)", Fuel::MAX.get());
                c.problems.push(ManifestProblem::Overflow { key: k.to_owned(), span: span_of(v), help });
            }
            fuel
        }) {
            builder = builder.fuel(min, max);
        }
        if let Some((min, max)) =
            self.range(table, "timeout", default.timeout().min, default.timeout().max, |c, v, k| c.duration(v, k))
        {
            builder = builder.timeout(min, max);
        }
        let count32 = |c: &mut Self, v: &Spanned<DeValue<'_>>, k: &str| c.count(v, k).and_then(|n| c.fits_u32(n, k, v));
        if let Some((_, max)) = self.range(table, "table-elements", 1, default.table_elements().max, count32) {
            builder = builder.max_table_elements(max);
        }
        if let Some((_, max)) = self.range(table, "instances", 1, default.instances().max, count32) {
            builder = builder.max_instances(max);
        }
        for key in ["concurrent-instances", "max-handles", "copy-limit-factor", "host-memory-factor"] {
            let Some(value) = table.get(key).and_then(|v| count32(self, v, &format!("resources.{key}"))) else {
                continue;
            };
            builder = match key {
                "concurrent-instances" => builder.max_concurrent_instances(value),
                "max-handles" => builder.max_handles(value),
                "host-memory-factor" => builder.host_memory_factor(value),
                _ => builder.copy_limit_factor(value),
            };
        }
        builder
    }

    /// `key = { min = ..., max = ... }`, each bound defaulting to the default policy's.
    fn range<T: Copy>(
        &mut self,
        table: &DeTable<'_>,
        key: &str,
        default_min: T,
        default_max: T,
        read: impl Fn(&mut Self, &Spanned<DeValue<'_>>, &str) -> Option<T>,
    ) -> Option<(T, T)> {
        let value = table.get(key)?;
        let path = format!("resources.{key}");
        let DeValue::Table(range) = value.get_ref() else {
            self.wrong_type(
                &path,
                "a table with `min` and/or `max`",
                value.get_ref(),
                span_of(value),
                &format!("{key} = {{ max = ... }}"),
            );
            return None;
        };
        self.unknown_keys(range, RANGE_KEYS, &path);
        let min = match range.get("min") {
            Some(v) => read(self, v, &format!("{path}.min"))?,
            None => default_min,
        };
        let max = match range.get("max") {
            Some(v) => read(self, v, &format!("{path}.max"))?,
            None => default_max,
        };
        Some((min, max))
    }

    fn policy_compile(&mut self, table: &DeTable<'_>) -> CompileBudget {
        let mut budget = CompileBudget::default();
        for (key, value) in table.iter() {
            let key = key.get_ref().as_ref();
            let path = format!("compile.{key}");
            let size = |c: &mut Self| c.size(value, &path).and_then(|n| usize::try_from(n).ok());
            let count = |c: &mut Self| c.count(value, &path);
            match key {
                "max-functions" => budget.max_functions = count(self).map_or(budget.max_functions, |n| n as usize),
                "max-function-size" => {
                    budget.max_function_body_bytes = size(self).unwrap_or(budget.max_function_body_bytes)
                }
                "max-code" => budget.max_code_bytes = size(self).unwrap_or(budget.max_code_bytes),
                "max-control-depth" => {
                    budget.max_control_depth = count(self).map_or(budget.max_control_depth, |n| n as usize)
                }
                "max-instantiations" => budget.max_instantiations = count(self).unwrap_or(budget.max_instantiations),
                "max-definitions" => budget.max_definitions = count(self).unwrap_or(budget.max_definitions),
                "max-wat-size" => budget.max_wat_bytes = size(self).unwrap_or(budget.max_wat_bytes),
                "max-compile-time" => {
                    budget.max_compile_time = self.duration(value, &path).unwrap_or(budget.max_compile_time)
                }
                "max-compile-memory" => {
                    budget.max_compile_memory =
                        self.size(value, &path).map_or(budget.max_compile_memory, ByteSize::bytes)
                }
                _ => {}
            }
        }
        budget
    }

    fn policy_engine(&mut self, table: &DeTable<'_>, mut builder: HostPolicyBuilder) -> HostPolicyBuilder {
        if let Some(value) = table.get("component-model-async") {
            match value.get_ref() {
                DeValue::Boolean(enabled) => builder = builder.component_model_async(*enabled),
                other => self.wrong_type(
                    "engine.component-model-async",
                    "a boolean",
                    other,
                    span_of(value),
                    "component-model-async = true",
                ),
            }
        }
        builder
    }

    /// `network-ranges = ["127.0.0.0/8:*", ...]`: address patterns.
    fn network_ranges(&mut self, value: &Spanned<DeValue<'_>>) -> Vec<crate::AddressPattern> {
        let example = "[grants]\nnetwork-ranges = [\"127.0.0.0/8:*\"]";
        let Some(texts) = self.string_array(value, "grants.network-ranges", example) else { return Vec::new() };
        let mut ranges = Vec::with_capacity(texts.len());
        for (text, span) in texts {
            match text.parse::<crate::AddressPattern>() {
                Ok(range) => ranges.push(range),
                Err(reason) => self.invalid(
                    "grants.network-ranges",
                    text,
                    reason,
                    span,
                    "write IP:PORT or IP/PREFIX:PORT, a port number or `*`, e.g. \"127.0.0.0/8:*\"",
                ),
            }
        }
        ranges
    }

    fn policy_grants(&mut self, table: &DeTable<'_>) -> GrantPolicy {
        let mut grants = GrantPolicy::default();
        for (key, value) in table.iter() {
            let key = key.get_ref().as_ref();
            let path = format!("grants.{key}");
            match key {
                "max-dir-bytes" => {
                    if let Some(bytes) = self.size(value, &path) {
                        grants.max_dir_bytes = ByteSize::bytes(bytes);
                    }
                    continue;
                }
                "max-dir-entries" | "max-descriptors" | "max-outgoing-requests" => {
                    let count = self.count(value, &path).and_then(|n| self.fits_u32(n, &path, value));
                    match (key, count) {
                        ("max-dir-entries", Some(count)) => grants.max_dir_entries = count,
                        ("max-descriptors", Some(count)) => grants.max_descriptors = count,
                        (_, Some(count)) => grants.max_outgoing_requests = count,
                        (_, None) => {}
                    }
                    continue;
                }
                _ => {}
            }
            let DeValue::Boolean(allowed) = value.get_ref() else {
                // Read apart: a list of addresses, not a switch.
                if GRANT_KEYS.contains(&key) && key != "network-ranges" {
                    self.wrong_type(&path, "a boolean", value.get_ref(), span_of(value), &format!("{key} = true"));
                }
                continue;
            };
            match key {
                "dirs" => grants.dirs = *allowed,
                "absolute-dirs" => grants.absolute_dirs = *allowed,
                "symlinked-dirs" => grants.symlinked_dirs = *allowed,
                "network" => grants.network = *allowed,
                "http" => grants.http = *allowed,
                _ => {}
            }
        }
        grants
    }

    /// `number` as a `u32`, or a diagnostic naming the largest value `key` takes.
    pub(crate) fn fits_u32(&mut self, number: u64, key: &str, value: &Spanned<DeValue<'_>>) -> Option<u32> {
        let fits = u32::try_from(number).ok();
        if fits.is_none() {
            let help = format!("use at most {} (it is a 32-bit count)", u32::MAX);
            self.problems.push(ManifestProblem::Overflow { key: key.to_owned(), span: span_of(value), help });
        }
        fits
    }

    /// A positive integer (`1_000`), reported otherwise.
    pub(crate) fn count(&mut self, value: &Spanned<DeValue<'_>>, key: &str) -> Option<u64> {
        let span = span_of(value);
        let DeValue::Integer(integer) = value.get_ref() else {
            self.wrong_type(key, "an integer", value.get_ref(), span, "1_000 (an integer, no quotes)");
            return None;
        };
        match u64::from_str_radix(integer.as_str(), integer.radix()) {
            Ok(0) => {
                self.problems.push(ManifestProblem::ZeroValue { key: key.to_owned(), span });
                None
            }
            Ok(number) => Some(number),
            Err(_) if integer.as_str().starts_with('-') => {
                self.problems.push(ManifestProblem::NegativeValue { key: key.to_owned(), span });
                None
            }
            Err(_) => {
                let help = "use a value that fits in 64 bits".to_owned();
                self.problems.push(ManifestProblem::Overflow { key: key.to_owned(), span, help });
                None
            }
        }
    }

    /// A size: `"64MiB"` or a number of bytes.
    pub(crate) fn size(&mut self, value: &Spanned<DeValue<'_>>, key: &str) -> Option<u64> {
        match value.get_ref() {
            DeValue::Integer(_) => self.count(value, key),
            DeValue::String(text) => match ByteSize::from_str(text) {
                Ok(size) if size.as_bytes() > 0 => Some(size.as_bytes()),
                Ok(_) => {
                    self.problems.push(ManifestProblem::ZeroValue { key: key.to_owned(), span: span_of(value) });
                    None
                }
                Err(error) => {
                    self.policy_value_problem(
                        key,
                        text,
                        &error.to_string(),
                        span_of(value),
                        "\"64MiB\" (B, KiB, MiB, GiB)",
                    );
                    None
                }
            },
            other => {
                self.wrong_type(key, "a size", other, span_of(value), "\"64MiB\" (or a number of bytes)");
                None
            }
        }
    }

    /// A duration: `"60s"` or `"100ms"`.
    fn duration(&mut self, value: &Spanned<DeValue<'_>>, key: &str) -> Option<Timeout> {
        let DeValue::String(text) = value.get_ref() else {
            self.wrong_type(key, "a duration", value.get_ref(), span_of(value), "\"60s\" (ms or s)");
            return None;
        };
        match Timeout::from_str(text) {
            Ok(timeout) if timeout.as_millis() > 0 => Some(timeout),
            Ok(_) => {
                self.problems.push(ManifestProblem::ZeroValue { key: key.to_owned(), span: span_of(value) });
                None
            }
            Err(error) => {
                self.policy_value_problem(key, text, &error.to_string(), span_of(value), "\"60s\" or \"500ms\"");
                None
            }
        }
    }

    fn policy_value_problem(&mut self, key: &str, text: &str, reason: &str, span: SourceSpan, example: &str) {
        let units = ["B", "KiB", "MiB", "GiB", "ms", "s"];
        let unit = text.trim_start_matches(|c: char| c.is_ascii_digit() || c == '_');
        let hint = closest(unit, &units)
            .filter(|_| !unit.is_empty())
            .map_or(String::new(), |u| format!("did you mean `{u}`? "));
        self.problems.push(ManifestProblem::InvalidValue {
            key: key.to_owned(),
            value: format!("\"{text}\""),
            reason: reason.to_owned(),
            span,
            help: format!("{hint}for example: {example}"),
        });
    }
}
