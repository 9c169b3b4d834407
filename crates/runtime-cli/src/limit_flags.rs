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

impl<'a> LimitFlags<'a> {
    /// A manifest for an unnamed component (`cli` 0.0.0) with these limits,
    /// validated like a file: the flags are written into a manifest text,
    /// which diagnostics then show with the flag's value underlined.
    pub(crate) fn manifest(self, policy: &HostPolicy) -> Result<ComponentManifest, ManifestError> {
        let text = format!(
            "{HEADER}memory = {}\nfuel = {}\ntimeout = {}\n",
            toml_value(self.memory),
            toml_value(self.fuel),
            toml_value(self.timeout),
        );
        ComponentManifest::parse("command-line flags", &text, policy)
    }

    /// `error` (from [`manifest`](Self::manifest)) said of the flags it
    /// concerns, one line each with its help: `--memory 4MB: ... (did you
    /// mean MiB?)`, never a line of the manifest text they were written into.
    pub(crate) fn explain(self, error: &ManifestError) -> Option<String> {
        use miette::Diagnostic as _;
        let text = self.manifest_text_lines();
        let lines: Vec<String> = error
            .problems()
            .iter()
            .map(|problem| {
                let offset = problem.span().offset();
                // The flag whose line of the generated text holds the problem.
                let (flag, value) = text
                    .iter()
                    .rev()
                    .find(|(start, _, _)| offset >= *start)
                    .map_or(("--memory", self.memory), |(_, flag, value)| (*flag, *value));
                let help = problem.help().map(|help| format!("\n  help: {help}")).unwrap_or_default();
                format!("{flag} {value}: {problem}{help}")
            })
            .collect();
        (!lines.is_empty()).then(|| lines.join("\n"))
    }

    /// Where each flag's line starts in the text [`manifest`](Self::manifest)
    /// writes, with the flag and its value.
    fn manifest_text_lines(self) -> [(usize, &'static str, &'a str); 3] {
        let header = HEADER.len();
        let line = |name: &str, value: &str| name.len() + 3 + toml_value(value).len() + 1;
        let fuel = header + line("memory", self.memory);
        let timeout = fuel + line("fuel", self.fuel);
        [(header, "--memory", self.memory), (fuel, "--fuel", self.fuel), (timeout, "--timeout", self.timeout)]
    }
}

/// What the generated manifest says before the flags' lines.
const HEADER: &str = "# from the command line\n[component]\nname = \"cli\"\nversion = \"0.0.0\"\n\n[resources]\n";

/// A flag's value as the generated manifest writes it: numbers stay TOML
/// integers, as in a file; anything else is quoted with TOML's own escaping
/// so no flag can inject a key.
fn toml_value(flag: &str) -> String {
    if !flag.is_empty() && flag.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
        flag.to_owned()
    } else {
        toml::Value::String(flag.to_owned()).to_string()
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
        // Said of the flag, never of a line of the text it was written into.
        let flags = LimitFlags { memory: "4MB", fuel: "lots", timeout: "100" };
        let error = flags.manifest(&policy).err().ok_or("rejected")?;
        let said = flags.explain(&error).ok_or("explained")?;
        let lines: Vec<&str> = said.lines().filter(|line| !line.starts_with("  help")).collect();
        assert_eq!(lines.len(), 3, "{said}");
        assert!(lines[0].starts_with("--memory 4MB: ") && said.contains("did you mean `MiB`"), "{said}");
        assert!(lines[1].starts_with("--fuel lots: ") && lines[2].starts_with("--timeout 100: "), "{said}");
        assert!(!said.contains("command-line flags:"), "{said}");
        let wide = LimitFlags { memory: "64MiB", fuel: "1", timeout: "1s" };
        let said = wide.explain(&wide.manifest(&policy).err().ok_or("rejected")?).ok_or("explained")?;
        assert!(said.starts_with("--memory 64MiB: ") && said.contains("--policy FILE"), "{said}");
        Ok(())
    }
}
