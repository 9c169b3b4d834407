//! Recognising what a loader was given: a component, a core module, WAT text,
//! garbage or a truncated binary, before wasmtime sees it.

use std::borrow::Cow;

use wasmparser::{Chunk, Parser, Payload};

use crate::LoadError;

const MAGIC: &[u8; 4] = b"\0asm";
const CORE_LAYER: u16 = 0;
const COMPONENT_LAYER: u16 = 1;
const COMPONENT_VERSION: u16 = 0x0d;

/// The component binary in `bytes`: a binary as is, WAT text compiled.
pub(crate) fn component_binary(bytes: &[u8]) -> Result<Cow<'_, [u8]>, LoadError> {
    if bytes.starts_with(MAGIC) {
        check_header(bytes)?;
        return Ok(Cow::Borrowed(bytes));
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err(LoadError::Malformed { reason: "neither a WebAssembly binary nor WAT text".into() });
    };
    // `wat` reports the line and column of a syntax error in its message.
    let binary = wat::parse_str(text).map_err(|e| LoadError::Malformed { reason: format!("invalid WAT: {e}") })?;
    check_header(&binary)?;
    Ok(Cow::Owned(binary))
}

fn check_header(bytes: &[u8]) -> Result<(), LoadError> {
    let (Some(version), Some(layer)) = (read_u16(bytes, 4), read_u16(bytes, 6)) else {
        return Err(LoadError::Truncated { size: bytes.len() });
    };
    match (layer, version) {
        (CORE_LAYER, 1) => Err(LoadError::NotAComponent),
        (COMPONENT_LAYER, COMPONENT_VERSION) if is_truncated(bytes) => Err(LoadError::Truncated { size: bytes.len() }),
        (COMPONENT_LAYER, COMPONENT_VERSION) => Ok(()),
        _ => Err(LoadError::UnsupportedVersion { version, layer }),
    }
}

fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    let pair = bytes.get(at..at + 2)?;
    Some(u16::from_le_bytes([pair[0], pair[1]]))
}

/// Whether the binary ends inside a section: the parser, told more data may
/// come, asks for it in the middle of a section or a nested module. Nested
/// modules and components are walked with their own parsers, as wasmparser
/// documents. Other structural errors are left for validation to report.
fn is_truncated(bytes: &[u8]) -> bool {
    let mut parser = Parser::new(0);
    let mut parents = Vec::new();
    let mut offset = 0;
    loop {
        match parser.parse(&bytes[offset..], false) {
            // Asking for more at the very end of the outermost component is
            // how a complete binary ends; anywhere else a section is cut short.
            Ok(Chunk::NeedMoreData(_)) => return offset < bytes.len() || !parents.is_empty(),
            Ok(Chunk::Parsed { consumed, payload }) => {
                offset += consumed;
                match payload {
                    Payload::ModuleSection { parser: nested, .. }
                    | Payload::ComponentSection { parser: nested, .. } => {
                        parents.push(std::mem::replace(&mut parser, nested));
                    }
                    Payload::End(_) => match parents.pop() {
                        Some(parent) => parser = parent,
                        None => return false,
                    },
                    _ => {}
                }
            }
            Err(_) => return false,
        }
    }
}
