//! The wider catalogue of attacks: more ways to burn CPU, to reach for
//! memory and tables, to feed the loader bombs and lies, and to misuse the
//! host's functions. Each names the outcome that counts as stopping it.

use runtime::host::TIME_INTERFACE;

use super::components::{Attack, FUEL_RICH, TIGHT, component};

fn unit(core: &str) -> String {
    component(core, &[("run", "")])
}

fn attack(group: &'static str, name: &'static str, wat: String, expected: &'static str) -> Attack {
    Attack { group, name, wat, limits: TIGHT, export: "run", args: vec![], expected }
}

fn with_limits(mut attack: Attack, limits: (&'static str, &'static str, &'static str)) -> Attack {
    attack.limits = limits;
    attack
}

/// A guest that imports the host's `sleep` and calls `run` with the given body.
fn sleeper(body: &str) -> String {
    format!(
        r#"(component
  (import "{TIME_INTERFACE}" (instance $time (export "sleep" (func (param "ms" u32)))))
  (core func $sleep (canon lower (func $time "sleep")))
  (core module $m (import "host" "sleep" (func $sleep (param i32))) (func (export "run") {body}))
  (core instance $i (instantiate $m (with "host" (instance (export "sleep" (func $sleep))))))
  (func (export "run") (canon lift (core func $i "run"))))"#
    )
}

pub(crate) fn attacks() -> Vec<Attack> {
    vec![
        // CPU
        attack(
            "cpu",
            "countdown from 2^31",
            unit(
                r#"(module (func (export "run") (local $n i32) (local.set $n (i32.const 0x7fffffff))
            (loop $l (local.set $n (i32.sub (local.get $n) (i32.const 1))) (br_if $l (local.get $n)))))"#,
            ),
            "out-of-fuel",
        ),
        attack(
            "cpu",
            "three nested infinite loops",
            unit(r#"(module (func (export "run") (loop $a (loop $b (loop $c (br $c))))))"#),
            "out-of-fuel",
        ),
        attack(
            "cpu",
            "memory.fill in a loop (charged per byte)",
            unit(
                r#"(module (memory 1) (func (export "run")
            (loop $l (memory.fill (i32.const 0) (i32.const 7) (i32.const 65536)) (br $l))))"#,
            ),
            "out-of-fuel",
        ),
        attack(
            "cpu",
            "memory.copy in a loop",
            unit(
                r#"(module (memory 1) (func (export "run")
            (loop $l (memory.copy (i32.const 0) (i32.const 32768) (i32.const 32768)) (br $l))))"#,
            ),
            "out-of-fuel",
        ),
        attack(
            "cpu",
            "recursion with large frames",
            unit(
                r#"(module (func $r (param i64 i64 i64 i64 i64 i64 i64 i64)
            (local i64 i64 i64 i64 i64 i64 i64 i64) (call $r (local.get 0) (local.get 1) (local.get 2) (local.get 3)
            (local.get 4) (local.get 5) (local.get 6) (local.get 7)))
            (func (export "run") (call $r (i64.const 0) (i64.const 0) (i64.const 0) (i64.const 0) (i64.const 0) (i64.const 0) (i64.const 0) (i64.const 0))))"#,
            ),
            "stack-overflow",
        ),
        attack(
            "cpu",
            "mutual recursion",
            unit(r#"(module (func $a (call $b)) (func $b (call $a)) (func (export "run") (call $a)))"#),
            "stack-overflow",
        ),
        attack(
            "cpu",
            "recursion through call_indirect",
            unit(
                r#"(module (type $t (func)) (table 1 funcref) (elem (i32.const 0) $r)
            (func $r (call_indirect (type $t) (i32.const 0))) (func (export "run") (call $r)))"#,
            ),
            "stack-overflow",
        ),
        with_limits(
            attack(
                "cpu",
                "deep call chain that spins",
                unit(
                    r#"(module (func $spin (loop $l (br $l)))
            (func $a (call $spin)) (func $b (call $a)) (func (export "run") (call $b)))"#,
                ),
                "deadline-exceeded",
            ),
            FUEL_RICH,
        ),
        attack(
            "cpu",
            "start function that recurses forever",
            unit(r#"(module (func $r (call $r)) (start $r) (func (export "run")))"#),
            "stack-overflow",
        ),
        attack(
            "cpu",
            "start function that burns all fuel",
            unit(r#"(module (func $s (loop $l (br $l))) (start $s) (func (export "run")))"#),
            "out-of-fuel",
        ),
        attack(
            "cpu",
            "division by a counter that reaches zero",
            unit(
                r#"(module (func (export "run") (local $n i32) (local.set $n (i32.const 100))
            (loop $l (drop (i32.div_u (i32.const 1000) (local.get $n))) (local.set $n (i32.sub (local.get $n) (i32.const 1))) (br $l))))"#,
            ),
            "integer-division-by-zero",
        ),
        attack(
            "cpu",
            "float conversion of NaN",
            unit(r#"(module (func (export "run") (drop (i64.trunc_f64_s (f64.div (f64.const 0) (f64.const 0))))))"#),
            "bad-conversion-to-integer",
        ),
        // Each host call is slower than fuel accounting: the deadline ends it.
        with_limits(
            attack(
                "cpu",
                "host sleep(0) called in a loop",
                sleeper("(loop $l (call $sleep (i32.const 0)) (br $l))"),
                "deadline-exceeded",
            ),
            FUEL_RICH,
        ),
        // Memory
        // memory.grow is a host call, slower than fuel accounting: the deadline ends it.
        with_limits(
            attack(
                "memory",
                "memory.grow 0 forever (no growth)",
                unit(
                    r#"(module (memory 1) (func (export "run") (loop $l (drop (memory.grow (i32.const 0))) (br $l))))"#,
                ),
                "deadline-exceeded",
            ),
            FUEL_RICH,
        ),
        attack(
            "memory",
            "grow to exactly the budget, write the last byte",
            unit(
                r#"(module (memory 1) (func (export "run")
            (if (i32.eq (memory.grow (i32.const 15)) (i32.const -1)) (then unreachable)) (i32.store8 (i32.const 1048575) (i32.const 1))))"#,
            ),
            "ok",
        ),
        attack(
            "memory",
            "write one byte past the budget",
            unit(
                r#"(module (memory 1) (func (export "run")
            (drop (memory.grow (i32.const 15))) (i32.store8 (i32.const 1048576) (i32.const 1))))"#,
            ),
            "memory-out-of-bounds",
        ),
        attack(
            "memory",
            "memory.fill one byte past the end",
            unit(
                r#"(module (memory 1) (func (export "run") (memory.fill (i32.const 0) (i32.const 0) (i32.const 65537))))"#,
            ),
            "memory-out-of-bounds",
        ),
        attack(
            "memory",
            "memory.copy from past the end",
            unit(
                r#"(module (memory 1) (func (export "run") (memory.copy (i32.const 0) (i32.const 65000) (i32.const 1000))))"#,
            ),
            "memory-out-of-bounds",
        ),
        attack(
            "memory",
            "three memories summed past the budget",
            unit(r#"(module (memory 6) (memory 6) (memory 6) (func (export "run")))"#),
            "memory-limit-exceeded",
        ),
        attack(
            "memory",
            "memory.grow by 0xffffffff pages",
            unit(
                r#"(module (memory 1) (func (export "run") (if (i32.eq (memory.grow (i32.const -1)) (i32.const -1)) (then unreachable))))"#,
            ),
            "memory-limit-exceeded",
        ),
        attack(
            "memory",
            "i64 load at the last address",
            unit(r#"(module (memory 1) (func (export "run") (drop (i64.load (i32.const -1)))))"#),
            "memory-out-of-bounds",
        ),
        attack(
            "memory",
            "unaligned plain loads are fine",
            unit(
                r#"(module (memory 1) (func (export "run") (drop (i64.load (i32.const 3))) (drop (i32.load (i32.const 65529)))))"#,
            ),
            "ok",
        ),
        attack(
            "memory",
            "initial table above table-elements",
            unit(r#"(module (table 20000 funcref) (func (export "run")))"#),
            "table-limit-exceeded",
        ),
        // The grow's fill is charged per element, so fuel ends it before any growth.
        attack(
            "memory",
            "table.grow by 0xffffffff",
            unit(
                r#"(module (table $t 1 funcref) (func (export "run")
            (if (i32.eq (table.grow $t (ref.null func) (i32.const -1)) (i32.const -1)) (then unreachable))))"#,
            ),
            "out-of-fuel",
        ),
        attack(
            "memory",
            "table.fill past the end",
            unit(
                r#"(module (table $t 10 funcref) (func (export "run") (table.fill $t (i32.const 5) (ref.null func) (i32.const 10))))"#,
            ),
            "table-out-of-bounds",
        ),
        attack(
            "memory",
            "data segment past a 16-page memory",
            unit(r#"(module (memory 16) (data (i32.const 1048576) "x") (func (export "run")))"#),
            "memory-out-of-bounds",
        ),
        // Host boundary
        attack("host", "sleep(u32::MAX)", sleeper("(call $sleep (i32.const -1))"), "deadline-exceeded"),
    ]
}

/// Inputs for the loader: bombs, lies and near-misses, with the expected load
/// outcome (`ok-load` when the input is legitimate and must load).
pub(crate) fn load_inputs() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let nested = |depth: usize| {
        unit(&format!(r#"(module (func (export "run") {}{}))"#, "(block ".repeat(depth), ")".repeat(depth)))
            .into_bytes()
    };
    let functions = |count: usize| {
        let body: String =
            (0..count).map(|i| format!("(func (export \"f{i}\") (result i32) (i32.const {i}))")).collect();
        component(&format!("(module {body})"), &[("f0", "(result s32)")]).into_bytes()
    };
    let valid = wat::parse_str(unit(r#"(module (func (export "run")))"#)).unwrap_or_default();
    let mut trailing = valid.clone();
    trailing.extend_from_slice(b"\xff\xff\xff\xff garbage");
    vec![
        ("empty input", Vec::new(), "malformed"),
        ("the magic number alone", b"\0asm".to_vec(), "malformed"),
        ("valid component with trailing garbage", trailing, "compile-failed"),
        ("100,000 nested blocks (compile bomb)", nested(100_000), "too-large"),
        ("1,000 nested blocks (at the budget)", nested(1_000), "ok-load"),
        ("20,000 functions (compile bomb)", functions(20_000), "too-large"),
        ("2,000 functions (within the budget)", functions(2_000), "ok-load"),
        (
            "a function with 100,000 locals",
            unit(r#"(module (func (export "run") (local i32) (local i32)))"#).replace("(local i32) (local i32)", &"(local i32) ".repeat(100_000)).into_bytes(),
            // 1.2 MB of WAT: past the text cap before the parser runs.
            "too-large",
        ),
        ("a memory whose maximum is below its minimum", unit(r#"(module (memory 2 1) (func (export "run")))"#).into_bytes(), "compile-failed"),
        (
            "host interface at an unknown version",
            sleeper("(call $sleep (i32.const 0))").replace("@0.1.0", "@9.9.9").into_bytes(),
            "link-failed",
        ),
        (
            "host function imported with the wrong signature",
            br#"(component (import "wasm-runtime:host/time@0.1.0" (instance (export "sleep" (func (param "ms" string))))))"#.to_vec(),
            "link-failed",
        ),
        ("WAT nested 100,000 parentheses deep", format!("{}{}", "(".repeat(100_000), ")".repeat(100_000)).into_bytes(), "malformed"),
        ("a component of 64 MiB of custom section", oversized_custom_section(), "too-large"),
    ]
}

/// A well-formed component header followed by one custom section just past
/// the loader's size cap.
fn oversized_custom_section() -> Vec<u8> {
    let payload = (64 << 20) as usize;
    let mut bytes = b"\0asm\x0d\x00\x01\x00\x00".to_vec();
    let mut size = payload + 2;
    loop {
        let byte = (size & 0x7f) as u8;
        size >>= 7;
        if size == 0 {
            bytes.push(byte);
            break;
        }
        bytes.push(byte | 0x80);
    }
    bytes.extend_from_slice(b"\x01x");
    bytes.resize(bytes.len() + payload, 0);
    bytes
}
