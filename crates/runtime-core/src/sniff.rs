//! Recognising what a loader was given: a component, a core module, WAT text,
//! garbage or a truncated binary, before wasmtime sees it.

use std::borrow::Cow;

use wasmparser::{Chunk, Operator, Parser, Payload};

use crate::LoadError;

const MAGIC: &[u8; 4] = b"\0asm";
const CORE_LAYER: u16 = 0;
const COMPONENT_LAYER: u16 = 1;
const COMPONENT_VERSION: u16 = 0x0d;

/// The component binary in `bytes`: a binary as is, WAT text compiled;
/// refused as the loader would refuse it (core module, garbage, truncated,
/// wrong version, past the compile budget).
pub fn component_binary(bytes: &[u8]) -> Result<Cow<'_, [u8]>, LoadError> {
    let binary = decode(bytes)?;
    scan(&binary)?;
    Ok(binary)
}

/// Like [`component_binary`] without the walk over the whole binary (checks
/// for truncation and the compile budget): enough to find the binary in a
/// compile cache, whose entries were all walked before they were compiled.
pub(crate) fn decode(bytes: &[u8]) -> Result<Cow<'_, [u8]>, LoadError> {
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

/// Structural limits that bound the time and memory compilation can take:
/// the size cap alone does not, since a few hundred kilobytes of nested
/// blocks or tiny functions take Cranelift tens of seconds.
pub(crate) mod budget {
    /// Most functions across all core modules of a component.
    pub const MAX_FUNCTIONS: usize = 10_000;
    /// Largest single function body, in bytes.
    pub const MAX_FUNCTION_BODY_BYTES: usize = 1 << 20;
    /// Deepest nesting of blocks, loops and ifs in a function.
    pub const MAX_CONTROL_DEPTH: usize = 1_000;
}

fn check_header(bytes: &[u8]) -> Result<(), LoadError> {
    let (Some(version), Some(layer)) = (read_u16(bytes, 4), read_u16(bytes, 6)) else {
        return Err(LoadError::Truncated { size: bytes.len() });
    };
    match (layer, version) {
        (CORE_LAYER, 1) => Err(LoadError::NotAComponent),
        (COMPONENT_LAYER, COMPONENT_VERSION) => Ok(()),
        _ => Err(LoadError::UnsupportedVersion { version, layer }),
    }
}

fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    let pair = bytes.get(at..at + 2)?;
    Some(u16::from_le_bytes([pair[0], pair[1]]))
}

/// Walks the binary once, before compilation: a binary that ends inside a
/// section is truncated (the parser, told more data may come, asks for it in
/// the middle of a section or a nested module), and one past the compile
/// budget is refused. Nested modules and components are walked with their own
/// parsers, as wasmparser documents. Other structural errors are left for
/// validation to report.
pub(crate) fn scan(bytes: &[u8]) -> Result<(), LoadError> {
    let mut parser = Parser::new(0);
    let mut parents = Vec::new();
    let mut offset = 0;
    let mut functions = 0usize;
    loop {
        match parser.parse(&bytes[offset..], false) {
            // Asking for more at the very end of the outermost component is
            // how a complete binary ends; anywhere else a section is cut short.
            Ok(Chunk::NeedMoreData(_)) if offset < bytes.len() || !parents.is_empty() => {
                return Err(LoadError::Truncated { size: bytes.len() });
            }
            Ok(Chunk::NeedMoreData(_)) | Err(_) => return Ok(()),
            Ok(Chunk::Parsed { consumed, payload }) => {
                offset += consumed;
                match payload {
                    Payload::ModuleSection { parser: nested, .. }
                    | Payload::ComponentSection { parser: nested, .. } => {
                        parents.push(std::mem::replace(&mut parser, nested));
                    }
                    Payload::CodeSectionEntry(body) => {
                        functions += 1;
                        over_budget("functions", functions, budget::MAX_FUNCTIONS)?;
                        over_budget("bytes in one function body", body.range().len(), budget::MAX_FUNCTION_BODY_BYTES)?;
                        over_budget("levels of nested blocks", control_depth(&body), budget::MAX_CONTROL_DEPTH)?;
                    }
                    Payload::End(_) => match parents.pop() {
                        Some(parent) => parser = parent,
                        None => return Ok(()),
                    },
                    _ => {}
                }
            }
        }
    }
}

fn over_budget(what: &'static str, found: usize, limit: usize) -> Result<(), LoadError> {
    if found > limit {
        return Err(LoadError::ExceedsCompileBudget { what, found, limit });
    }
    Ok(())
}

/// The deepest nesting of control blocks in `body` (a malformed body counts
/// as far as it reads; validation reports the rest).
fn control_depth(body: &wasmparser::FunctionBody<'_>) -> usize {
    let Ok(mut reader) = body.get_operators_reader() else {
        return 0;
    };
    let (mut depth, mut deepest) = (0usize, 0usize);
    while !reader.eof() {
        let Ok(operator) = reader.read() else {
            break;
        };
        match operator {
            Operator::Block { .. } | Operator::Loop { .. } | Operator::If { .. } | Operator::TryTable { .. } => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            Operator::End => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}
