//! `--invoke 'NAME(ARGS)'`: the export to call and its arguments, parsed
//! against the export's signature, with errors that point at the input.
//!
//! `NAME` is a top-level function (`greet`) or a function inside an exported
//! interface (`docs:adder/add@0.1.0#add`). Each argument is a WAVE value, or
//! `$N`: the first result of the N-th earlier `--invoke` of the same run
//! (how a resource handle one call returned reaches a later call).

use runtime::{ExportSignature, LoadedComponent, Val};

/// One parsed `--invoke`, not yet typed.
pub(crate) struct Invocation<'a> {
    pub(crate) text: &'a str,
    pub(crate) export: &'a str,
    /// Each argument's text and its byte offset in `text`.
    args: Vec<(usize, &'a str)>,
}

impl<'a> Invocation<'a> {
    /// Splits `text` into the export's name and its arguments.
    pub(crate) fn parse(text: &'a str) -> Result<Self, String> {
        let Some(open) = text.find('(') else {
            return Err(caret(
                text,
                text.len()..text.len(),
                "expected `(`: write the call as NAME(ARGS), e.g. 'run()'",
            ));
        };
        let export = text[..open].trim();
        if export.is_empty() {
            return Err(caret(text, 0..open.max(1), "the call names no function"));
        }
        let close = text.trim_end().len();
        if !text[..close].ends_with(')') || close <= open {
            return Err(caret(text, close..close, "expected `)` at the end of the call"));
        }
        let inner = &text[open + 1..close - 1];
        let args = split_top_level(inner).into_iter().map(|(start, arg)| (open + 1 + start, arg)).collect();
        Ok(Self { text, export, args })
    }

    /// The arguments as values of `signature`'s parameter types; `$N` takes
    /// the first result of the N-th earlier call from `earlier`.
    pub(crate) fn values(&self, signature: &ExportSignature, earlier: &[Vec<Val>]) -> Result<Vec<Val>, String> {
        let wit = wit_signature(self.export, signature);
        if self.args.len() != signature.params.len() {
            let span = self.args.first().map_or(self.text.len() - 1, |(at, _)| *at)..self.text.trim_end().len() - 1;
            let message = format!(
                "`{}` takes {} argument(s), the call passes {}\n  signature: {wit}",
                self.export,
                signature.params.len(),
                self.args.len()
            );
            return Err(caret(self.text, span, &message));
        }
        let mut values = Vec::with_capacity(self.args.len());
        for ((at, arg), (name, ty)) in self.args.iter().zip(&signature.params) {
            let trimmed = arg.trim();
            let lead = arg.len() - arg.trim_start().len();
            let span = at + lead..at + lead + trimmed.len();
            if let Some(index) = trimmed.strip_prefix('$') {
                let value = index
                    .parse::<usize>()
                    .ok()
                    .and_then(|n| earlier.get(n.checked_sub(1)?))
                    .and_then(|results| results.first())
                    .ok_or_else(|| {
                        let message = format!(
                            "`{trimmed}` names no earlier result: `$N` is the first result of the N-th --invoke before this one ({} so far)",
                            earlier.len()
                        );
                        caret(self.text, span.clone(), &message)
                    })?;
                values.push(value.clone());
                continue;
            }
            let value = wasm_wave::from_str::<Val>(ty, trimmed).map_err(|error| {
                let inner = error.span();
                let span = if inner.start < inner.end && inner.end <= trimmed.len() {
                    span.start + inner.start..span.start + inner.end
                } else {
                    span.clone()
                };
                let message =
                    format!("argument `{name}` expects {}: {error}\n  signature: {wit}", crate::print::type_text(ty));
                caret(self.text, span, &message)
            })?;
            values.push(value);
        }
        Ok(values)
    }
}

/// Help for an export name that does not exist: kebab-case and the closest
/// exported function.
pub(crate) fn name_hint(export: &str, component: &LoadedComponent) -> String {
    let names = component.export_names();
    let kebab = to_kebab(export);
    let mut hints = Vec::new();
    if kebab != export {
        hints.push(format!("component-model names are kebab-case: did you mean `{kebab}`?"));
    }
    let wanted = kebab.rsplit('#').next().unwrap_or(&kebab).to_owned();
    if let Some(close) = names.iter().find(|name| name.rsplit('#').next() == Some(wanted.as_str()))
        && close != export
        && close != &kebab
    {
        hints.push(format!("did you mean `{close}`?"));
    }
    hints.join("; ")
}

fn to_kebab(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.char_indices() {
        if c.is_ascii_uppercase() {
            let previous = name[..i].chars().last();
            if previous.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit()) {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else if c == '_' {
            out.push('-');
        } else {
            out.push(c);
        }
    }
    out
}

/// The export's signature in WIT, as `inspect` prints it.
pub(crate) fn wit_signature(export: &str, signature: &ExportSignature) -> String {
    let params: Vec<String> =
        signature.params.iter().map(|(name, ty)| format!("{name}: {}", crate::print::type_text(ty))).collect();
    let results = match signature.results.as_slice() {
        [] => String::new(),
        [one] => format!(" -> {}", crate::print::type_text(one)),
        many => format!(" -> ({})", many.iter().map(crate::print::type_text).collect::<Vec<_>>().join(", ")),
    };
    format!("{export}: func({}){results}", params.join(", "))
}

/// `input` echoed with a caret line under `span`, then `message`.
pub(crate) fn caret(input: &str, span: std::ops::Range<usize>, message: &str) -> String {
    let start = span.start.min(input.len());
    let width = span.end.saturating_sub(start).max(1);
    let pad: String = input[..start].chars().map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
    format!("--invoke: {message}\n  {input}\n  {pad}{}", "^".repeat(width))
}

/// Splits an argument list at its top-level commas, keeping each piece's
/// offset; commas inside strings, chars, lists, records and tuples stay.
fn split_top_level(inner: &str) -> Vec<(usize, &str)> {
    if inner.trim().is_empty() {
        return Vec::new();
    }
    let mut pieces = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in inner.char_indices() {
        if let Some(q) = quote {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                _ if c == q => quote = None,
                _ => {}
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                pieces.push((start, &inner[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    let last = &inner[start..];
    // A trailing comma leaves an empty last piece, which is not an argument.
    if !last.trim().is_empty() {
        pieces.push((start, last));
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_split_into_name_and_top_level_arguments() {
        let call = Invocation::parse("docs:adder/add@0.1.0#add(1, [2, 3], \"a,b\", {x: 1, y: 2})")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(call.export, "docs:adder/add@0.1.0#add");
        let args: Vec<&str> = call.args.iter().map(|(_, a)| a.trim()).collect();
        assert_eq!(args, ["1", "[2, 3]", "\"a,b\"", "{x: 1, y: 2}"]);
        assert_eq!(&call.text[call.args[1].0..].trim_start()[..6], "[2, 3]");
        assert!(Invocation::parse("run()").is_ok_and(|c| c.args.is_empty()));
        assert!(Invocation::parse("run").is_err());
        assert!(Invocation::parse("(1)").is_err());
        assert!(Invocation::parse("run(1").is_err());
    }

    #[test]
    fn names_get_a_kebab_case_hint() {
        assert_eq!(to_kebab("Hello"), "hello");
        assert_eq!(to_kebab("getValue"), "get-value");
        assert_eq!(to_kebab("get_value"), "get-value");
        assert_eq!(to_kebab("already-kebab"), "already-kebab");
    }

    #[test]
    fn the_caret_points_at_the_span() {
        let text = caret("greet(1)", 6..7, "expects string");
        assert!(text.ends_with("  greet(1)\n        ^"), "{text}");
    }
}
