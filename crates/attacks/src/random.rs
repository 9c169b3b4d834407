//! Random components: `wasm-smith` generates core modules (seeded, so a
//! failure replays with `--seed`), each wrapped as a component that lifts its
//! exported functions, then called under tight limits. The property: the host
//! never panics, no call outlives its deadline by more than the slack, and
//! every outcome is a result or a known kind.

use std::time::{Duration, Instant};

use arbitrary::Unstructured;
use runtime::{Runtime, RuntimeError, Val};
use wasmparser::{Parser, Payload, TypeRef, ValType};

use super::{Case, Outcome, Verdict};

const TIMEOUT: Duration = Duration::from_millis(50);
/// How far past its deadline a call may end before it counts as a hang.
const SLACK: Duration = Duration::from_secs(1);

pub(crate) fn cases(quick: bool, seed: u64) -> Vec<Case> {
    let count = if quick { 50 } else { 500 };
    vec![Case::new("random", format!("{count} wasm-smith components (seed {seed})"), "ok or a known kind", move || {
        run(count, seed).unwrap_or_else(|error| Outcome {
            observed: error,
            verdict: Verdict::HostFailure,
            figures: None,
        })
    })]
}

fn run(count: u64, seed: u64) -> Result<Outcome, String> {
    let runtime = Runtime::builder().build().map_err(|e| e.to_string())?;
    let manifest = crate::limits_manifest("1MiB", "1_000_000", "50ms")?;
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    for index in 0..count {
        let case_seed = seed.wrapping_add(index);
        let Some((wat, exports)) = generate(case_seed)? else {
            *kinds.entry("skipped (no liftable export)".into()).or_default() += 1;
            continue;
        };
        let outcomes: Vec<Result<(), RuntimeError>> = match runtime.load_bytes(wat.as_bytes(), &manifest) {
            Err(error) => {
                if std::env::var_os("RANDOM_DEBUG").is_some() {
                    eprintln!("seed {case_seed}: {error}");
                }
                vec![Err(error)]
            }
            Ok(component) => exports
                .iter()
                .map(|(name, params)| {
                    let started = Instant::now();
                    let result = component.call(name, params).map(drop);
                    if started.elapsed() > TIMEOUT + SLACK {
                        return Err(RuntimeError::Internal { message: format!("hang: {:?}", started.elapsed()) });
                    }
                    result
                })
                .collect(),
        };
        for outcome in outcomes {
            let kind = match &outcome {
                Ok(()) => "ok",
                Err(error) => error.kind(),
            };
            if matches!(kind, "unknown" | "internal") {
                let detail = outcome.err().map(|e| e.to_string()).unwrap_or_default();
                return Ok(Outcome {
                    observed: format!("seed {case_seed}: {kind}: {detail}"),
                    verdict: Verdict::Misclassified,
                    figures: None,
                });
            }
            *kinds.entry(kind.to_owned()).or_default() += 1;
        }
    }
    let observed = kinds.iter().map(|(kind, n)| format!("{n} {kind}")).collect::<Vec<_>>().join(", ");
    Ok(Outcome { observed, verdict: Verdict::Pass, figures: None })
}

/// A component wrapping a random core module, and the lifted exports with
/// zero-valued arguments; `None` when no export can be lifted.
/// A call to make: the export and its arguments.
type Call = (String, Vec<Val>);

fn generate(seed: u64) -> Result<Option<(String, Vec<Call>)>, String> {
    let data = super::manifests::pseudo_random_bytes(8 * 1024, seed);
    let config = wasm_smith::Config {
        max_imports: 0,
        min_funcs: 1,
        max_funcs: 10,
        export_everything: true,
        max_memories: 2,
        max_memory32_bytes: 2 << 20,
        max_table_elements: 1_000,
        memory64_enabled: false,
        gc_enabled: false,
        exceptions_enabled: false,
        threads_enabled: false,
        shared_everything_threads_enabled: false,
        custom_page_sizes_enabled: false,
        relaxed_simd_enabled: false,
        // Typed function references need wasmtime's GC support, which this runtime leaves out.
        reference_types_enabled: false,
        tail_call_enabled: false,
        ..wasm_smith::Config::default()
    };
    let module = wasm_smith::Module::new(config, &mut Unstructured::new(&data)).map_err(|e| e.to_string())?;
    let bytes = module.to_bytes();
    let exports = liftable_exports(&bytes)?;
    if exports.is_empty() {
        return Ok(None);
    }
    let text = wasmprinter::print_bytes(&bytes).map_err(|e| e.to_string())?;
    let fields = text.trim().strip_prefix("(module").unwrap_or(&text);
    let mut wat = format!("(component\n(core module $m {fields}\n(core instance $i (instantiate $m))\n");
    let mut calls = Vec::new();
    for (index, (core_name, params, result)) in exports.into_iter().enumerate() {
        let name = format!("f{index}");
        let param_list: String =
            params.iter().enumerate().map(|(i, ty)| format!(" (param \"p{i}\" {})", component_type(*ty))).collect();
        let result = result.map(|ty| format!(" (result {})", component_type(ty))).unwrap_or_default();
        let escaped = wat_string(&core_name);
        wat.push_str(&format!(
            "(func (export \"{name}\"){param_list}{result} (canon lift (core func $i \"{escaped}\")))\n"
        ));
        calls.push((name, params.iter().map(|ty| zero(*ty)).collect()));
    }
    wat.push(')');
    Ok(Some((wat, calls)))
}

type Signature = (String, Vec<ValType>, Option<ValType>);

/// Exported functions whose parameters and (at most one) result are numbers.
fn liftable_exports(bytes: &[u8]) -> Result<Vec<Signature>, String> {
    let mut types = Vec::new();
    let mut functions = Vec::new();
    let mut exports = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| e.to_string())? {
            Payload::TypeSection(section) => {
                for group in section {
                    for sub in group.map_err(|e| e.to_string())?.into_types() {
                        types.push(match &sub.composite_type.inner {
                            wasmparser::CompositeInnerType::Func(func) => Some(func.clone()),
                            _ => None,
                        });
                    }
                }
            }
            Payload::ImportSection(section) => {
                for import in section.into_imports() {
                    if let TypeRef::Func(index) = import.map_err(|e| e.to_string())?.ty {
                        functions.push(index);
                    }
                }
            }
            Payload::FunctionSection(section) => {
                for index in section {
                    functions.push(index.map_err(|e| e.to_string())?);
                }
            }
            Payload::ExportSection(section) => {
                for export in section {
                    let export = export.map_err(|e| e.to_string())?;
                    if export.kind == wasmparser::ExternalKind::Func {
                        exports.push((export.name.to_owned(), export.index));
                    }
                }
            }
            _ => {}
        }
    }
    let numeric = |ty: &ValType| matches!(ty, ValType::I32 | ValType::I64 | ValType::F32 | ValType::F64);
    Ok(exports
        .into_iter()
        .filter_map(|(name, func)| {
            let ty = types.get(*functions.get(func as usize)? as usize)?.as_ref()?;
            let (params, results) = (ty.params(), ty.results());
            (params.iter().all(numeric) && results.len() <= 1 && results.iter().all(numeric))
                .then(|| (name, params.to_vec(), results.first().copied()))
        })
        .take(8)
        .collect())
}

fn component_type(ty: ValType) -> &'static str {
    match ty {
        ValType::I64 => "s64",
        ValType::F32 => "f32",
        ValType::F64 => "f64",
        _ => "s32",
    }
}

fn zero(ty: ValType) -> Val {
    match ty {
        ValType::I64 => Val::S64(0),
        ValType::F32 => Val::Float32(0.0),
        ValType::F64 => Val::Float64(0.0),
        _ => Val::S32(0),
    }
}

/// `text` as the inside of a WAT string literal: printable ASCII as is,
/// everything else as `\hh` byte escapes.
fn wat_string(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'"' | b'\\' => format!("\\{b:02x}"),
            0x20..=0x7e => char::from(b).to_string(),
            _ => format!("\\{b:02x}"),
        })
        .collect()
}
