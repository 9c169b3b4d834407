//! Results as WAVE text, bounded, and the CLI's own output, which never
//! panics on a closed pipe.

use std::io::Write as _;

use runtime::{Type, Val};

/// The most bytes of result text the CLI builds; past it the text ends with
/// [`TRUNCATED`]. A result is already bounded by the copy limit, but as text
/// (escapes, list syntax) it could be several times larger.
pub(crate) const MAX_RESULT_TEXT_BYTES: usize = 1 << 20;

/// The visible end of a truncated result.
pub(crate) const TRUNCATED: &str = "… (truncated: the result's text is longer than 1 MiB)";

/// `values` as WAVE, comma-separated, at most [`MAX_RESULT_TEXT_BYTES`]
/// plus the truncation marker. Resource handles print as `own<resource>` or
/// `borrow<resource>` (WAVE has no syntax for them); async values by kind.
pub(crate) fn results_text(values: &[Val]) -> String {
    let mut out = Bounded { text: String::new(), full: false };
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push(", ");
        }
        wave(value, &mut out);
    }
    if out.full {
        out.text.push_str(TRUNCATED);
    }
    out.text
}

/// A string that stops growing at the cap.
struct Bounded {
    text: String,
    full: bool,
}

impl Bounded {
    fn push(&mut self, piece: &str) {
        if self.full {
            return;
        }
        let room = MAX_RESULT_TEXT_BYTES.saturating_sub(self.text.len());
        if piece.len() <= room {
            self.text.push_str(piece);
        } else {
            let mut end = room;
            while !piece.is_char_boundary(end) {
                end -= 1;
            }
            self.text.push_str(&piece[..end]);
            self.full = true;
        }
    }
}

fn wave(value: &Val, out: &mut Bounded) {
    if out.full {
        return;
    }
    match value {
        Val::String(text) => {
            // Escape at most what can still be shown.
            let mut end = text.len().min(MAX_RESULT_TEXT_BYTES.saturating_sub(out.text.len()));
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            out.push(&leaf(&Val::String(text[..end].to_owned())));
            if end < text.len() {
                out.full = true;
            }
        }
        Val::List(items) | Val::FixedLengthList(items) => sequence("[", items.iter(), "]", out),
        Val::Tuple(items) => sequence("(", items.iter(), ")", out),
        Val::Record(fields) => {
            out.push("{");
            for (i, (name, value)) in fields.iter().enumerate() {
                out.push(if i > 0 { ", " } else { "" });
                out.push(name);
                out.push(": ");
                wave(value, out);
            }
            out.push("}");
        }
        Val::Map(entries) => {
            out.push("{");
            for (i, (key, value)) in entries.iter().enumerate() {
                out.push(if i > 0 { ", " } else { "" });
                wave(key, out);
                out.push(": ");
                wave(value, out);
            }
            out.push("}");
        }
        Val::Variant(case, payload) => labelled(case, payload.as_deref(), out),
        Val::Enum(case) => out.push(case),
        Val::Option(None) => out.push("none"),
        Val::Option(Some(value)) => labelled("some", Some(value), out),
        Val::Result(Ok(value)) => labelled("ok", value.as_deref(), out),
        Val::Result(Err(value)) => labelled("err", value.as_deref(), out),
        Val::Flags(flags) => {
            out.push("{");
            out.push(&flags.join(", "));
            out.push("}");
        }
        Val::Resource(resource) => out.push(if resource.owned() { "own<resource>" } else { "borrow<resource>" }),
        Val::Future(_) => out.push("<future>"),
        Val::Stream(_) => out.push("<stream>"),
        Val::ErrorContext(_) => out.push("<error-context>"),
        scalar => out.push(&leaf(scalar)),
    }
}

fn sequence<'v>(open: &str, items: impl Iterator<Item = &'v Val>, close: &str, out: &mut Bounded) {
    out.push(open);
    for (i, item) in items.enumerate() {
        if out.full {
            return;
        }
        out.push(if i > 0 { ", " } else { "" });
        wave(item, out);
    }
    out.push(close);
}

fn labelled(label: &str, payload: Option<&Val>, out: &mut Bounded) {
    out.push(label);
    if let Some(value) = payload {
        out.push("(");
        wave(value, out);
        out.push(")");
    }
}

/// A scalar or string in WAVE; wasm-wave handles escapes and float syntax.
fn leaf(value: &Val) -> String {
    wasm_wave::to_string(value).unwrap_or_else(|e| format!("<unprintable: {e}>"))
}

/// Writes `text` and a newline to stdout. A closed pipe (`| head`) is not an
/// error of the command: the reader has what it wanted; nothing panics.
/// A call's results as plain JSON, beside their WAVE text: one value as
/// itself, several as an array, none as `null`.
pub(crate) fn results_json(values: &[Val]) -> serde_json::Value {
    match values {
        [] => serde_json::Value::Null,
        [one] => value_json(one),
        many => serde_json::Value::Array(many.iter().map(value_json).collect()),
    }
}

/// One value as plain JSON where its type allows: numbers, text, lists,
/// records (objects), tuples (arrays); `option` as the value or `null`;
/// `result` as `{"ok": ...}` or `{"err": ...}`; a variant as `{"case",
/// "payload"}`; flags as the array of those set; a resource as `null` (its
/// WAVE text names it).
fn value_json(value: &Val) -> serde_json::Value {
    use serde_json::{Value, json};
    let list = |items: &[Val]| Value::Array(items.iter().map(value_json).collect());
    match value {
        Val::Bool(b) => json!(b),
        Val::S8(n) => json!(n),
        Val::U8(n) => json!(n),
        Val::S16(n) => json!(n),
        Val::U16(n) => json!(n),
        Val::S32(n) => json!(n),
        Val::U32(n) => json!(n),
        Val::S64(n) => json!(n),
        Val::U64(n) => json!(n),
        // Not-a-number and the infinities have no JSON form.
        Val::Float32(n) => serde_json::Number::from_f64(f64::from(*n)).map_or(Value::Null, Value::Number),
        Val::Float64(n) => serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number),
        Val::Char(c) => json!(c.to_string()),
        Val::String(s) => json!(s),
        Val::List(items) | Val::Tuple(items) => list(items),
        Val::Record(fields) => {
            Value::Object(fields.iter().map(|(name, value)| (name.clone(), value_json(value))).collect())
        }
        Val::Variant(case, payload) => json!({ "case": case, "payload": payload.as_deref().map(value_json) }),
        Val::Enum(case) => json!(case),
        Val::Option(inner) => inner.as_deref().map_or(Value::Null, value_json),
        Val::Result(Ok(inner)) => json!({ "ok": inner.as_deref().map(value_json) }),
        Val::Result(Err(inner)) => json!({ "err": inner.as_deref().map(value_json) }),
        Val::Flags(set) => json!(set),
        _ => Value::Null,
    }
}

pub(crate) fn stdout_line(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}").and_then(|()| stdout.flush());
}

/// How long the CLI waits for its own message to reach a stderr that is
/// not read (a full pipe) before it goes on, and exits, without it.
const STDERR_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Writes `text` to stderr; like [`stdout_line`], a closed stderr is
/// ignored, and a stalled one delays the command by [`STDERR_WAIT`] at most:
/// the write happens on a thread of its own.
pub(crate) fn stderr_text(text: &str) {
    let text = text.to_owned();
    let (written, wait) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new().name("wasm-runtime-stderr".into()).spawn(move || {
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(text.as_bytes()).and_then(|()| stderr.flush());
        let _ = written.send(());
    });
    if spawned.is_ok() {
        let _ = wait.recv_timeout(STDERR_WAIT);
    }
}

/// A component type written as in WIT; records, variants, enums and flags
/// are anonymous at run time, so their fields or cases are spelled out.
pub(crate) fn type_text(ty: &Type) -> String {
    let list = |items: Vec<String>| items.join(", ");
    match ty {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::List(inner) => format!("list<{}>", type_text(&inner.ty())),
        Type::Record(record) => {
            format!(
                "record {{ {} }}",
                list(record.fields().map(|f| format!("{}: {}", f.name, type_text(&f.ty))).collect())
            )
        }
        Type::Tuple(tuple) => format!("tuple<{}>", list(tuple.types().map(|t| type_text(&t)).collect())),
        Type::Variant(variant) => format!(
            "variant {{ {} }}",
            list(
                variant
                    .cases()
                    .map(|c| match c.ty {
                        Some(payload) => format!("{}({})", c.name, type_text(&payload)),
                        None => c.name.to_owned(),
                    })
                    .collect()
            )
        ),
        Type::Enum(cases) => format!("enum {{ {} }}", list(cases.names().map(str::to_owned).collect())),
        Type::Flags(flags) => format!("flags {{ {} }}", list(flags.names().map(str::to_owned).collect())),
        Type::Option(option) => format!("option<{}>", type_text(&option.ty())),
        Type::Result(result) => {
            let side = |t: Option<Type>| t.map_or_else(|| "_".to_owned(), |t| type_text(&t));
            match (result.ok(), result.err()) {
                (None, None) => "result".into(),
                (ok, err) => format!("result<{}, {}>", side(ok), side(err)),
            }
        }
        Type::Own(_) => "own<resource>".into(),
        Type::Borrow(_) => "borrow<resource>".into(),
        _ => "(a type the CLI cannot write)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_print_as_wave_and_stop_at_the_cap() {
        let record = Val::Record(vec![
            ("name".into(), Val::String("a \"b\"".into())),
            ("tags".into(), Val::List(vec![Val::Enum("x".into()), Val::Option(None)])),
            ("r".into(), Val::Result(Err(Some(Box::new(Val::U32(7)))))),
        ]);
        assert_eq!(results_text(&[record, Val::Bool(true)]), r#"{name: "a \"b\"", tags: [x, none], r: err(7)}, true"#);

        let huge = Val::List(vec![Val::String("x".repeat(1000)); 5_000]);
        let text = results_text(&[huge]);
        assert!(text.ends_with(TRUNCATED), "{}", &text[text.len() - 80..]);
        assert!(text.len() <= MAX_RESULT_TEXT_BYTES + TRUNCATED.len());
        let one_string = results_text(&[Val::String("é".repeat(MAX_RESULT_TEXT_BYTES))]);
        assert!(one_string.ends_with(TRUNCATED) && one_string.len() <= MAX_RESULT_TEXT_BYTES + TRUNCATED.len());
    }
}
