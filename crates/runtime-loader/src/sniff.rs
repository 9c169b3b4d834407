//! Recognising what a loader was given: a component, a core module, WAT text,
//! garbage or a truncated binary, before wasmtime sees it.

use std::borrow::Cow;

use runtime_limits::ResourceLimits;
use runtime_manifest::{CompileBudget, HostPolicy};
use wasmparser::{
    Chunk, ComponentAlias, ComponentExternalKind, ComponentInstance, ComponentOuterAliasKind, MemoryType, Operator,
    Parser, Payload,
};

use crate::LoadError;
use crate::error::BudgetOver;

const MAGIC: &[u8; 4] = b"\0asm";
const CORE_LAYER: u16 = 0;
const COMPONENT_LAYER: u16 = 1;
const COMPONENT_VERSION: u16 = 0x0d;

/// The component binary in `bytes`: a binary as is, WAT text compiled;
/// refused as the loader would refuse it under `policy` (core module,
/// garbage, truncated, wrong version, past the compile budget, a memory or
/// table the policy cannot hold).
pub fn component_binary<'b>(bytes: &'b [u8], policy: &HostPolicy) -> Result<Cow<'b, [u8]>, LoadError> {
    let binary = decode(bytes, policy.compile_budget())?;
    scan(&binary, policy, None)?;
    Ok(binary)
}

/// Like [`component_binary`] without the walk over the whole binary (checks
/// for truncation and the compile budget): enough to find the binary in a
/// compile cache, whose entries were all walked before they were compiled.
pub(crate) fn decode<'b>(bytes: &'b [u8], budget: &CompileBudget) -> Result<Cow<'b, [u8]>, LoadError> {
    if bytes.starts_with(MAGIC) {
        check_header(bytes)?;
        return Ok(Cow::Borrowed(bytes));
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Err(LoadError::Malformed { reason: "neither a WebAssembly binary nor WAT text".into() });
    };
    // The text parser is quadratic in inline aliases: its input is capped
    // before it runs, not after.
    let (found, limit) = (text.len() as u64, budget.max_wat_bytes as u64);
    if found > limit {
        let over = BudgetOver { what: "bytes of WAT text", found, limit, key: "max-wat-size", size: true };
        return Err(LoadError::ExceedsCompileBudget { overs: vec![over] });
    }
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
        (COMPONENT_LAYER, COMPONENT_VERSION) => Ok(()),
        _ => Err(LoadError::UnsupportedVersion { version, layer }),
    }
}

fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    let pair = bytes.get(at..at + 2)?;
    Some(u16::from_le_bytes([pair[0], pair[1]]))
}

/// What a component declares before it runs, counted over every nested
/// module: the figures `wasm-runtime inspect` sets beside the policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeclaredFigures {
    /// Function bodies.
    pub functions: u64,
    /// Bytes of function bodies.
    pub code_bytes: u64,
    /// The initial size of every memory the component defines, summed
    /// (a module instantiated twice counts once).
    pub initial_memory_bytes: u64,
}

/// Counts the [`DeclaredFigures`] of a component binary (see
/// [`component_binary`]); a malformed section ends the count with what was
/// read so far, since validation reports it.
pub fn declared_figures(binary: &[u8]) -> DeclaredFigures {
    let mut figures = DeclaredFigures::default();
    for payload in Parser::new(0).parse_all(binary) {
        match payload {
            Ok(Payload::CodeSectionEntry(body)) => {
                figures.functions += 1;
                figures.code_bytes += body.range().len() as u64;
            }
            Ok(Payload::MemorySection(reader)) => {
                for memory in reader.into_iter().flatten() {
                    figures.initial_memory_bytes = figures.initial_memory_bytes.saturating_add(initial_bytes(&memory));
                }
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    figures
}

/// Whether `binary` fails to validate only for want of component-model
/// async (WASI 0.3's async functions, streams, futures, tasks): valid with
/// those features, invalid without them. Asked only after a compile failed,
/// so its two validations cost nothing on the way to a working component.
pub(crate) fn needs_component_model_async(binary: &[u8]) -> bool {
    use wasmparser::{Validator, WasmFeatures};
    let async_features = WasmFeatures::CM_ASYNC
        | WasmFeatures::CM_MORE_ASYNC_BUILTINS
        | WasmFeatures::CM_ASYNC_STACKFUL
        | WasmFeatures::CM_ERROR_CONTEXT;
    let with = WasmFeatures::default() | async_features;
    let without = with.difference(async_features);
    let valid = |features| Validator::new_with_features(features).validate_all(binary).is_ok();
    valid(with) && !valid(without)
}

/// Walks the binary once, before compilation: a binary that ends inside a
/// section is truncated (the parser, told more data may come, asks for it in
/// the middle of a section or a nested module), one past the compile budget
/// is refused, and so is a memory or table whose declared minimum the policy
/// can never grant. Nested modules and components are walked with their own
/// parsers, as wasmparser documents. Other structural errors are left for
/// validation to report.
/// With `limits`, the memories' and the tables' declared minimums, each
/// summed, must fit its budgets too (checked last, after the compile budget).
pub(crate) fn scan(bytes: &[u8], policy: &HostPolicy, limits: Option<&ResourceLimits>) -> Result<(), LoadError> {
    let budget = policy.compile_budget();
    let mut parser = Parser::new(0);
    let mut parents = Vec::new();
    let mut levels = vec![Level::component()];
    let mut totals = Totals::default();
    let mut offset = 0;
    loop {
        let chunk = match parser.parse(&bytes[offset..], false) {
            // A nested module or component that ends where the binary ends
            // asks for more until told nothing follows: then it ends, or it
            // was cut short.
            Ok(Chunk::NeedMoreData(_)) if offset == bytes.len() && !parents.is_empty() => {
                match parser.parse(&bytes[offset..], true) {
                    Ok(chunk @ Chunk::Parsed { .. }) => Ok(chunk),
                    _ => return Err(LoadError::Truncated { size: bytes.len() }),
                }
            }
            other => other,
        };
        match chunk {
            // Asking for more at the very end of the outermost component is
            // how a complete binary ends; anywhere else a section is cut short.
            Ok(Chunk::NeedMoreData(_)) if offset < bytes.len() || !parents.is_empty() => {
                return Err(LoadError::Truncated { size: bytes.len() });
            }
            Ok(Chunk::NeedMoreData(_)) | Err(_) => return totals.finish(budget, limits),
            Ok(Chunk::Parsed { consumed, payload }) => {
                offset += consumed;
                let aliases = match &payload {
                    Payload::ComponentAliasSection(reader) => {
                        Some(alias_costs(&levels, reader.clone(), totals.heaviest))
                    }
                    _ => None,
                };
                let level = levels.last_mut().ok_or(LoadError::Truncated { size: bytes.len() })?;
                match payload {
                    // A nested range past the binary's end is cut short.
                    Payload::ModuleSection { unchecked_range, .. }
                    | Payload::ComponentSection { unchecked_range, .. }
                        if unchecked_range.end > bytes.len() =>
                    {
                        return Err(LoadError::Truncated { size: bytes.len() });
                    }
                    Payload::ModuleSection { parser: nested, .. } => {
                        totals.modules += 1;
                        parents.push(std::mem::replace(&mut parser, nested));
                        levels.push(Level::module());
                    }
                    Payload::ComponentSection { parser: nested, .. } => {
                        parents.push(std::mem::replace(&mut parser, nested));
                        levels.push(Level::component());
                    }
                    // Counted to the end (the walk is linear), so a refusal
                    // names every limit the component exceeds, each with its
                    // real figure.
                    Payload::CodeSectionEntry(body) => {
                        let size = body.range().len() as u64;
                        totals.functions += 1;
                        totals.code_bytes += size;
                        totals.largest_body = totals.largest_body.max(size);
                        totals.deepest = totals.deepest.max(control_depth(&body) as u64);
                    }
                    Payload::MemorySection(reader) => {
                        for (index, memory) in reader.into_iter().enumerate() {
                            let Ok(memory) = memory else { break };
                            check_memory(&totals, index, &memory, policy)?;
                            totals.memory_minimum = totals.memory_minimum.saturating_add(initial_bytes(&memory));
                        }
                    }
                    Payload::TableSection(reader) => {
                        for (index, table) in reader.into_iter().enumerate() {
                            let Ok(table) = table else { break };
                            check_table(&totals, index, table.ty.initial, policy)?;
                            totals.table_minimum = totals.table_minimum.saturating_add(table.ty.initial);
                        }
                    }
                    Payload::InstanceSection(reader) => {
                        for instance in reader.into_iter().flatten() {
                            match instance {
                                wasmparser::Instance::Instantiate { .. } => level.cost.add(Cost::ONE_INSTANTIATION),
                                wasmparser::Instance::FromExports(_) => level.cost.add(Cost::ONE_DEFINITION),
                            }
                        }
                    }
                    Payload::ComponentInstanceSection(reader) => {
                        for instance in reader.into_iter().flatten() {
                            let cost = match instance {
                                ComponentInstance::Instantiate { component_index, .. } => {
                                    level.instantiated(component_index, totals.heaviest)
                                }
                                ComponentInstance::FromExports(_) => Cost::ONE_DEFINITION,
                            };
                            level.cost.add(cost);
                        }
                    }
                    Payload::ComponentAliasSection(_) => {
                        let (count, components) = aliases.unwrap_or_default();
                        level.cost.add(Cost::definitions(count));
                        level.components.extend(components);
                    }
                    Payload::ComponentImportSection(reader) => {
                        for import in reader.into_iter().flatten() {
                            level.cost.add(Cost::ONE_DEFINITION);
                            if matches!(import.ty, wasmparser::ComponentTypeRef::Component(_)) {
                                level.components.push(Cost::ONE_DEFINITION);
                            }
                        }
                    }
                    Payload::ComponentExportSection(reader) => {
                        for export in reader.into_iter().flatten() {
                            level.cost.add(Cost::ONE_DEFINITION);
                            // Exporting a component gives it a new index too.
                            if export.kind == ComponentExternalKind::Component {
                                let cost = level.components.get(export.index as usize).copied();
                                level.components.push(cost.unwrap_or(totals.heaviest));
                            }
                        }
                    }
                    Payload::ComponentCanonicalSection(reader) => {
                        level.cost.add(Cost::definitions(u64::from(reader.count())));
                    }
                    Payload::ComponentTypeSection(reader) => {
                        level.cost.add(Cost::definitions(u64::from(reader.count())));
                    }
                    Payload::CoreTypeSection(reader) => {
                        level.cost.add(Cost::definitions(u64::from(reader.count())));
                    }
                    Payload::End(_) => {
                        let finished = levels.pop().ok_or(LoadError::Truncated { size: bytes.len() })?;
                        match levels.last_mut() {
                            // A nested component's cost is paid each time it is instantiated.
                            Some(parent) if finished.is_component => {
                                totals.heaviest = totals.heaviest.max_with(finished.cost);
                                parent.components.push(finished.cost);
                            }
                            Some(_) => {}
                            None => totals.check(finished.cost, budget)?,
                        }
                        match parents.pop() {
                            Some(parent) => parser = parent,
                            None => return totals.finish(budget, limits),
                        }
                    }
                    _ => {}
                }
                if let Some(level) = levels.last() {
                    totals.check(level.cost, budget)?;
                }
            }
        }
    }
}

/// How many aliases a section defines, and the cost of each component it
/// adds to the index space: an outer alias costs what the outer component
/// costs; a component exported by an instance is not known here, so it is
/// assumed to be the heaviest seen so far.
fn alias_costs(
    levels: &[Level],
    reader: wasmparser::ComponentAliasSectionReader<'_>,
    heaviest: Cost,
) -> (u64, Vec<Cost>) {
    let mut count = 0;
    let mut components = Vec::new();
    for alias in reader.into_iter().flatten() {
        count += 1;
        match alias {
            ComponentAlias::Outer { kind: ComponentOuterAliasKind::Component, count, index } => {
                let outer = levels.len().checked_sub(1 + count as usize).and_then(|at| levels.get(at));
                components.push(outer.and_then(|l| l.components.get(index as usize).copied()).unwrap_or(heaviest));
            }
            ComponentAlias::InstanceExport { kind: ComponentExternalKind::Component, .. } => components.push(heaviest),
            _ => {}
        }
    }
    (count, components)
}

/// What instantiating a component costs once flattened: its instantiations
/// and its definitions, those of the components it instantiates included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Cost {
    instantiations: u64,
    definitions: u64,
}

impl Cost {
    const ONE_INSTANTIATION: Self = Self { instantiations: 1, definitions: 1 };
    const ONE_DEFINITION: Self = Self { instantiations: 0, definitions: 1 };

    fn definitions(count: u64) -> Self {
        Self { instantiations: 0, definitions: count }
    }

    fn max_with(self, other: Self) -> Self {
        Self {
            instantiations: self.instantiations.max(other.instantiations),
            definitions: self.definitions.max(other.definitions),
        }
    }

    fn add(&mut self, other: Self) {
        self.instantiations = self.instantiations.saturating_add(other.instantiations);
        self.definitions = self.definitions.saturating_add(other.definitions);
    }
}

/// One component or core module being walked.
struct Level {
    is_component: bool,
    /// The flattened cost of each component in this component's index space.
    components: Vec<Cost>,
    /// What this component costs so far.
    cost: Cost,
}

impl Level {
    fn component() -> Self {
        Self { is_component: true, components: Vec::new(), cost: Cost::default() }
    }

    fn module() -> Self {
        Self { is_component: false, components: Vec::new(), cost: Cost::default() }
    }

    /// The cost of instantiating component `index`; one not known (an
    /// invalid index, left for validation) costs as much as the heaviest.
    fn instantiated(&self, index: u32, heaviest: Cost) -> Cost {
        let mut cost = self.components.get(index as usize).copied().unwrap_or(heaviest);
        cost.add(Cost::ONE_INSTANTIATION);
        cost
    }
}

/// Counts over the whole binary.
#[derive(Default)]
struct Totals {
    functions: u64,
    code_bytes: u64,
    largest_body: u64,
    /// The deepest nesting of control blocks in any function.
    deepest: u64,
    /// The memories' declared minimums, summed, in bytes.
    memory_minimum: u64,
    /// The tables' declared minimums, summed, in elements.
    table_minimum: u64,
    modules: u64,
    /// The costliest component definition seen, for references the walk cannot resolve.
    heaviest: Cost,
}

impl Totals {
    /// The flattened costs, checked as they grow: they can grow
    /// exponentially with nesting, so the walk stops at the first excess.
    fn check(&self, cost: Cost, budget: &CompileBudget) -> Result<(), LoadError> {
        let over =
            |what, found, limit, key| (found > limit).then_some(BudgetOver { what, found, limit, key, size: false });
        let overs: Vec<BudgetOver> = [
            over(
                "instantiations (nested components flattened)",
                cost.instantiations,
                budget.max_instantiations,
                "max-instantiations",
            ),
            over(
                "component-level definitions (flattened)",
                cost.definitions,
                budget.max_definitions,
                "max-definitions",
            ),
        ]
        .into_iter()
        .flatten()
        .collect();
        if overs.is_empty() { Ok(()) } else { Err(LoadError::ExceedsCompileBudget { overs }) }
    }

    /// The checks made once the whole binary is walked: the code budget,
    /// then the memories' and tables' minimums against `limits`.
    fn finish(&self, budget: &CompileBudget, limits: Option<&ResourceLimits>) -> Result<(), LoadError> {
        self.within_code_budget(budget)?;
        let Some(limits) = limits else { return Ok(()) };
        if self.memory_minimum > limits.memory_bytes() {
            return Err(LoadError::MemoryMinimumOverBudget {
                minimum: self.memory_minimum,
                budget: limits.memory_bytes(),
            });
        }
        if self.table_minimum > u64::from(limits.table_elements()) {
            return Err(LoadError::TableMinimumOverBudget {
                minimum: self.table_minimum,
                budget: limits.table_elements().into(),
            });
        }
        Ok(())
    }

    /// Every code limit the whole binary exceeds.
    fn within_code_budget(&self, budget: &CompileBudget) -> Result<(), LoadError> {
        let count = |what, found, limit: usize, key| BudgetOver { what, found, limit: limit as u64, key, size: false };
        let size = |what, found, limit: usize, key| BudgetOver { what, found, limit: limit as u64, key, size: true };
        let overs: Vec<BudgetOver> = [
            count("functions", self.functions, budget.max_functions, "max-functions"),
            size("bytes of code", self.code_bytes, budget.max_code_bytes, "max-code"),
            size(
                "bytes in its largest function body",
                self.largest_body,
                budget.max_function_body_bytes,
                "max-function-size",
            ),
            count("levels of nested blocks", self.deepest, budget.max_control_depth, "max-control-depth"),
        ]
        .into_iter()
        .filter(|over| over.found > over.limit)
        .collect();
        if overs.is_empty() { Ok(()) } else { Err(LoadError::ExceedsCompileBudget { overs }) }
    }
}

/// A memory's declared minimum, in bytes (pages past 64 KiB count as 64 KiB).
fn initial_bytes(memory: &MemoryType) -> u64 {
    memory.initial.saturating_mul(1 << memory.page_size_log2.unwrap_or(16).min(16))
}

/// Refuses a memory whose declared minimum exceeds the largest budget the
/// policy grants: no manifest could ever instantiate it.
fn check_memory(totals: &Totals, index: usize, memory: &MemoryType, policy: &HostPolicy) -> Result<(), LoadError> {
    let page = 1u64.checked_shl(memory.page_size_log2.unwrap_or(16)).unwrap_or(u64::MAX);
    let minimum = memory.initial.saturating_mul(page);
    let limit = policy.memory().max.as_bytes();
    if minimum > limit {
        return Err(LoadError::MemoryMinimumTooLarge {
            memory: format!("memory {index} of core module {}", totals.modules.saturating_sub(1)),
            minimum,
            limit,
        });
    }
    Ok(())
}

/// Like [`check_memory`], for a table's declared minimum.
fn check_table(totals: &Totals, index: usize, initial: u64, policy: &HostPolicy) -> Result<(), LoadError> {
    let limit = u64::from(policy.table_elements().max);
    if initial > limit {
        return Err(LoadError::TableMinimumTooLarge {
            table: format!("table {index} of core module {}", totals.modules.saturating_sub(1)),
            minimum: initial,
            limit,
        });
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
