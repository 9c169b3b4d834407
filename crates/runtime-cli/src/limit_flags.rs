//! `--memory`, `--fuel` and `--timeout`: limits given on the command line,
//! validated exactly like a manifest file.

use runtime::{ComponentManifest, HostPolicy, manifest::Error as ManifestError};

/// Limits given on a command line (`--memory 1MiB --fuel 1000 --timeout 100ms`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LimitFlags<'a> {
    /// The `--memory` value: a size with a unit, or a number of bytes.
    pub(crate) memory: &'a str,
    /// The `--fuel` value.
    pub(crate) fuel: &'a str,
    /// The `--timeout` value: a duration with a unit.
    pub(crate) timeout: &'a str,
}

impl LimitFlags<'_> {
    /// A manifest for an unnamed component (`cli` 0.0.0) with these limits,
    /// validated like a file: the flags are written into a manifest text,
    /// which diagnostics then show with the flag's value underlined.
    pub(crate) fn manifest(self, policy: &HostPolicy) -> Result<ComponentManifest, ManifestError> {
        // Numbers stay TOML integers, as in a file; anything else is quoted
        // with TOML's own escaping so no flag can inject a key.
        let value = |flag: &str| {
            if !flag.is_empty() && flag.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
                flag.to_owned()
            } else {
                toml::Value::String(flag.to_owned()).to_string()
            }
        };
        let text = format!(
            "# from the command line\n[component]\nname = \"cli\"\nversion = \"0.0.0\"\n\n[resources]\nmemory = {}\nfuel = {}\ntimeout = {}\n",
            value(self.memory),
            value(self.fuel),
            value(self.timeout),
        );
        ComponentManifest::parse("command-line flags", &text, policy)
    }
}

#[cfg(test)]
mod tests {
    use runtime::{ByteSize, HostPolicy};

    use super::LimitFlags;

    #[test]
    fn limit_flags_are_validated_like_a_file() -> Result<(), Box<dyn std::error::Error>> {
        let policy = HostPolicy::default();
        let ok = LimitFlags { memory: "1MiB", fuel: "1_000_000", timeout: "100ms" }.manifest(&policy)?;
        assert_eq!(ok.resources.memory, ByteSize::mib(1));
        assert_eq!(ok.resources.fuel.get(), 1_000_000);
        let bytes = LimitFlags { memory: "1048576", fuel: "1", timeout: "1s" }.manifest(&policy)?;
        assert_eq!(bytes.resources.memory, ByteSize::mib(1));

        let cases = [
            (LimitFlags { memory: "8MiB", fuel: "1", timeout: "1s" }, "runtime::manifest::out_of_range"),
            (LimitFlags { memory: "1MiB", fuel: "lots", timeout: "1s" }, "runtime::manifest::wrong_type"),
            (LimitFlags { memory: "1MiB", fuel: "1", timeout: "100" }, "runtime::manifest::ambiguous_unit"),
            // A quote cannot smuggle a key into the generated manifest.
            (
                LimitFlags { memory: "1MiB\"\ninstances = 0\nx = \"", fuel: "1", timeout: "1s" },
                "runtime::manifest::unknown_unit",
            ),
        ];
        for (flags, code) in cases {
            let error = flags.manifest(&policy).err().ok_or("rejected")?;
            assert_eq!(error.code_str(), code, "{flags:?}");
            assert_eq!(error.problems().len(), 1, "{flags:?}: {error:?}");
        }
        Ok(())
    }
}
