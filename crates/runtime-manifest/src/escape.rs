//! Text from a manifest or policy file, made safe to show on a terminal.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with every character that would hide or reorder what a reader
/// sees written as `\u{XXXX}`: control characters other than newline and
/// tab (an escape sequence can rewrite the terminal), bidirectional
/// overrides and isolates (they reorder the line, "Trojan Source"), and
/// zero-width characters. Diagnostics quote the file they describe, and
/// the file is the untrusted party.
pub fn escape_for_terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(hides_text) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if hides_text(c) {
            let _ = write!(escaped, "\\u{{{:04x}}}", u32::from(c));
        } else {
            escaped.push(c);
        }
    }
    Cow::Owned(escaped)
}

fn hides_text(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_overrides_are_shown_escaped() {
        assert_eq!(escape_for_terminal("plain\n\ttext"), "plain\n\ttext");
        assert_eq!(escape_for_terminal("a\u{1b}[2Jb"), "a\\u{001b}[2Jb");
        assert_eq!(escape_for_terminal("x\u{202e}yz\u{2066}"), "x\\u{202e}yz\\u{2066}");
        assert_eq!(escape_for_terminal("\r\u{7f}\u{200b}"), "\\u{000d}\\u{007f}\\u{200b}");
    }
}
