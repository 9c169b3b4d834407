//! Hostile components: CPU, memory and load attacks, each run through the
//! facade under tight limits and judged on the kind it is stopped with.

use runtime::{ComponentManifest, Runtime, RuntimeError, Val};

use super::{Case, Figures, Outcome, Verdict};

/// A guest attack: a component, the limits it runs under, the call, the expected kind.
pub(crate) struct Attack {
    pub(crate) group: &'static str,
    pub(crate) name: &'static str,
    pub(crate) wat: String,
    pub(crate) limits: (&'static str, &'static str, &'static str),
    pub(crate) export: &'static str,
    pub(crate) args: Vec<Val>,
    pub(crate) expected: &'static str,
}

/// A component lifting `exports` of the core module `core`.
pub(crate) fn component(core: &str, exports: &[(&str, &str)]) -> String {
    let fields = core.trim().strip_prefix("(module").unwrap_or(core);
    let lifts: String = exports
        .iter()
        .map(|(name, signature)| {
            format!("(func (export \"{name}\") {signature} (canon lift (core func $i \"{name}\")))\n")
        })
        .collect();
    format!("(component\n(core module $m {fields}\n(core instance $i (instantiate $m))\n{lifts})")
}

pub(crate) const TIGHT: (&str, &str, &str) = ("1MiB", "10_000_000", "200ms");
pub(crate) const FUEL_RICH: (&str, &str, &str) = ("1MiB", "10_000_000_000", "50ms");

fn attacks() -> Vec<Attack> {
    let unit = |core: &str| component(core, &[("run", "")]);
    let pages = |core: &str| component(core, &[("run", r#"(param "pages" u32) (result u32)"#)]);
    vec![
        Attack {
            group: "cpu",
            name: "infinite loop, fuel stops it",
            wat: unit(r#"(module (func (export "run") (loop $l (br $l))))"#),
            limits: TIGHT,
            export: "run",
            args: vec![],
            expected: "out-of-fuel",
        },
        Attack {
            group: "cpu",
            name: "infinite loop, deadline stops it",
            wat: unit(r#"(module (func (export "run") (loop $l (br $l))))"#),
            limits: FUEL_RICH,
            export: "run",
            args: vec![],
            expected: "deadline-exceeded",
        },
        Attack {
            group: "cpu",
            name: "loop in the start function",
            wat: unit(r#"(module (func $s (loop $l (br $l))) (start $s) (func (export "run")))"#),
            limits: FUEL_RICH,
            export: "run",
            args: vec![],
            expected: "deadline-exceeded",
        },
        Attack {
            group: "cpu",
            name: "loop through call_indirect",
            wat: unit(
                r#"(module (type $t (func)) (table 1 funcref) (elem (i32.const 0) $f)
            (func $f (call_indirect (type $t) (i32.const 0))) (func (export "run") (loop $l (call $g) (br $l))) (func $g))"#,
            ),
            limits: TIGHT,
            export: "run",
            args: vec![],
            expected: "out-of-fuel",
        },
        Attack {
            group: "cpu",
            name: "loop through br_table",
            wat: unit(r#"(module (func (export "run") (loop $l (block $b (br_table $l $b (i32.const 0))))))"#),
            limits: TIGHT,
            export: "run",
            args: vec![],
            expected: "out-of-fuel",
        },
        Attack {
            group: "cpu",
            name: "unbounded recursion",
            wat: unit(r#"(module (func $r (call $r)) (func (export "run") (call $r)))"#),
            limits: TIGHT,
            export: "run",
            args: vec![],
            expected: "stack-overflow",
        },
        Attack {
            group: "memory",
            name: "grow until denied, then trap",
            wat: pages(
                r#"(module (memory 1) (func (export "run") (param i32) (result i32)
            (loop $l (br_if $l (i32.ne (memory.grow (local.get 0)) (i32.const -1)))) unreachable))"#,
            ),
            limits: TIGHT,
            export: "run",
            args: vec![Val::U32(1)],
            expected: "memory-limit-exceeded",
        },
        Attack {
            group: "memory",
            name: "grow loop that handles denial",
            wat: pages(
                r#"(module (memory 1) (func (export "run") (param i32) (result i32)
            (local $n i32) (loop $l (if (i32.ne (memory.grow (local.get 0)) (i32.const -1)) (then (local.set $n (i32.add (local.get $n) (i32.const 1))) (br $l)))) (local.get $n)))"#,
            ),
            limits: TIGHT,
            export: "run",
            args: vec![Val::U32(1)],
            expected: "ok",
        },
        Attack {
            group: "memory",
            name: "one huge grow (4 GiB)",
            wat: pages(
                r#"(module (memory 1) (func (export "run") (param i32) (result i32)
            (if (i32.eq (memory.grow (local.get 0)) (i32.const -1)) (then unreachable)) (i32.const 0)))"#,
            ),
            limits: TIGHT,
            export: "run",
            args: vec![Val::U32(65_535)],
            expected: "memory-limit-exceeded",
        },
        Attack {
            group: "memory",
            name: "two memories summed past the budget",
            wat: pages(
                r#"(module (memory $a 8) (memory $b 1) (func (export "run") (param i32) (result i32)
            (if (i32.eq (memory.grow $b (local.get 0)) (i32.const -1)) (then unreachable)) (i32.const 0)))"#,
            ),
            limits: TIGHT,
            export: "run",
            args: vec![Val::U32(8)],
            expected: "memory-limit-exceeded",
        },
        Attack {
            group: "memory",
            name: "initial memory above the budget",
            wat: unit(r#"(module (memory 17) (func (export "run")))"#),
            limits: TIGHT,
            export: "run",
            args: vec![],
            expected: "memory-limit-exceeded",
        },
        Attack {
            group: "memory",
            name: "4 GiB initial memory, refused at load",
            wat: unit(r#"(module (memory 65536) (func (export "run")))"#),
            limits: TIGHT,
            export: "run",
            args: vec![],
            // The loader names the memory and the policy's limit before compiling.
            expected: "memory-limit-exceeded",
        },
        Attack {
            group: "memory",
            name: "data segment at the budget's edge",
            wat: unit(r#"(module (memory 16) (data (i32.const 1048572) "edge") (func (export "run")))"#),
            limits: TIGHT,
            export: "run",
            args: vec![],
            expected: "ok",
        },
        Attack {
            group: "memory",
            name: "data segment past the memory's end",
            wat: unit(r#"(module (memory 16) (data (i32.const 1048574) "edge") (func (export "run")))"#),
            limits: TIGHT,
            export: "run",
            args: vec![],
            expected: "memory-out-of-bounds",
        },
        Attack {
            group: "memory",
            name: "table grow bomb",
            wat: pages(
                r#"(module (table $t 1 funcref) (func (export "run") (param i32) (result i32)
            (loop $l (br_if $l (i32.ne (table.grow $t (ref.null func) (local.get 0)) (i32.const -1)))) unreachable))"#,
            ),
            limits: TIGHT,
            export: "run",
            args: vec![Val::U32(1000)],
            expected: "table-limit-exceeded",
        },
        Attack {
            group: "memory",
            name: "out-of-bounds read past the budget",
            wat: unit(r#"(module (memory 1) (func (export "run") (drop (i32.load (i32.const 0x7fff0000)))))"#),
            limits: TIGHT,
            export: "run",
            args: vec![],
            expected: "memory-out-of-bounds",
        },
    ]
}

/// The CPU and memory attacks, plus the load attacks.
pub(crate) fn cases() -> Result<Vec<Case>, String> {
    let runtime = std::sync::Arc::new(Runtime::builder().build().map_err(|e| e.to_string())?);
    let mut cases: Vec<Case> = attacks()
        .into_iter()
        .chain(super::catalog::attacks())
        .map(|attack| {
            let runtime = runtime.clone();
            Case::new(attack.group, attack.name, attack.expected, move || run_attack(&runtime, attack))
        })
        .collect();
    cases.extend(load_cases(&runtime));
    Ok(cases)
}

fn manifest((memory, fuel, timeout): (&str, &str, &str)) -> Result<ComponentManifest, RuntimeError> {
    crate::limits_manifest(memory, fuel, timeout).map_err(|message| RuntimeError::Internal { message })
}

fn run_attack(runtime: &Runtime, attack: Attack) -> Outcome {
    // Calls go through the async executor, as an embedder's would: guests
    // that import host functions need it.
    let tokio = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(tokio) => tokio,
        Err(error) => return Outcome { observed: error.to_string(), verdict: Verdict::HostFailure, figures: None },
    };
    let result = manifest(attack.limits)
        .and_then(|manifest| runtime.load_bytes(attack.wat.as_bytes(), &manifest))
        .and_then(|component| tokio.block_on(component.call_async(attack.export, &attack.args)));
    let (observed, figures) = match &result {
        Ok(outcome) => ("ok".to_owned(), Some(Figures::from(&outcome.report))),
        Err(error) => (error.kind().to_owned(), error.crash().map(|crash| Figures::from(&crash.report))),
    };
    let verdict = match (observed == attack.expected, &result) {
        (true, _) => Verdict::Pass,
        (false, Ok(_)) => Verdict::Escaped,
        (false, Err(_)) => Verdict::Misclassified,
    };
    Outcome { observed, verdict, figures }
}

fn load_cases(runtime: &std::sync::Arc<Runtime>) -> Vec<Case> {
    let valid = component(r#"(module (func (export "run")))"#, &[("run", "")]);
    let binary = wat::parse_str(&valid).unwrap_or_default();
    let truncated = binary[..binary.len() / 2].to_vec();
    let inputs: Vec<(&'static str, Vec<u8>, &'static str)> = vec![
        ("garbage bytes", vec![0xde, 0xad, 0xbe, 0xef, 0xff, 0x00], "malformed"),
        ("invalid WAT text", b"(component (this is not wat".to_vec(), "malformed"),
        (
            "core module binary",
            wat::parse_str("(module (func (export \"run\")))").unwrap_or_default(),
            "not-a-component",
        ),
        ("core module WAT", b"(module)".to_vec(), "not-a-component"),
        ("truncated component", truncated, "malformed"),
        ("wrong version", b"\0asm\x0c\x00\x01\x00".to_vec(), "malformed"),
        ("wrong layer", b"\0asm\x0d\x00\x07\x00".to_vec(), "malformed"),
        ("oversized input (65 MiB)", vec![0u8; (65 << 20) as usize], "too-large"),
        (
            "invalid function body",
            component(r#"(module (func (export "run") (result i32)))"#, &[("run", "(result u32)")]).into_bytes(),
            "compile-failed",
        ),
        (
            "import the host lacks",
            br#"(component (import "evil:host/spawn" (func (param "cmd" string))))"#.to_vec(),
            "link-failed",
        ),
    ];
    inputs
        .into_iter()
        .chain(super::catalog::load_inputs())
        .map(|(name, bytes, expected)| {
            let runtime = runtime.clone();
            Case::new("load", name, expected, move || {
                let result = manifest(TIGHT).and_then(|manifest| runtime.load_bytes(&bytes, &manifest));
                let observed = match result {
                    Ok(_) => "ok-load".to_owned(),
                    Err(error) => error.kind().to_owned(),
                };
                let verdict = if observed == expected {
                    Verdict::Pass
                } else if observed == "ok-load" {
                    Verdict::Escaped
                } else {
                    Verdict::Misclassified
                };
                Outcome { observed, verdict, figures: None }
            })
        })
        .collect()
}
