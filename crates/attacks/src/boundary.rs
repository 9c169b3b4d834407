//! Attacks through the component boundary rather than in guest code: results
//! and arguments that make the host copy more than the guest holds, WASI
//! calls that wait past the deadline or ask for too much, loader inputs that
//! cost more to compile than their size says, and every canonical-ABI and
//! handle violation a guest can commit on purpose. Each is judged on its
//! kind, the host's peak RSS and the wall time.

use std::time::Duration;

use runtime::{AsyncHostRegistry, Val, host::HostFuture};

use super::Case;
use super::guests::{
    aliased_list, plain, returning_area, with_clock, with_exit, with_random, with_resources, with_stdout,
};
use super::probe::{HostBound, Probe, manifest};

/// Limits of most boundary attacks: a 1 MiB guest, fuel for a long loop, 100 ms.
fn tight(extra: &str) -> String {
    manifest("1MiB", "10_000_000", "100ms", extra)
}

/// Fuel enough that the deadline, not fuel, ends the call.
fn fuel_rich(extra: &str) -> String {
    manifest("1MiB", "10_000_000_000", "100ms", extra)
}

/// Loading must be refused fast: no compile work for a bomb.
const FAST_REFUSAL: HostBound = HostBound { rss_mib: 48, wall: Duration::from_millis(100) };
/// What an admitted input may cost to load (SECURITY.md's promise), with the
/// shared machine's noise on top.
const ADMITTED_LOAD: HostBound = HostBound { rss_mib: 300, wall: Duration::from_millis(2_500) };

fn case(group: &'static str, name: &'static str, probe: Probe) -> Case {
    let expected =
        format!("{} (host <{} MiB, <{} ms)", probe.expected, probe.bound.rss_mib, probe.bound.wall.as_millis());
    Case::new(group, name, expected, move || probe.run())
}

pub(crate) fn cases() -> Vec<Case> {
    let mut cases = lifting();
    cases.extend(wasi());
    cases.extend(violations());
    cases.extend(loader());
    cases
}

const SINK: &str = "xtask:attack/sink";

/// A host function taking `list<string>`: its arguments are a host copy.
fn sink_registry() -> AsyncHostRegistry {
    AsyncHostRegistry::with_reference_functions().func_async(
        SINK,
        "take",
        |_store, (strings,): (Vec<String>,)| -> HostFuture<'_, (u32,)> {
            Box::new(async move { Ok((u32::try_from(strings.len()).unwrap_or(u32::MAX),)) })
        },
    )
}

fn lifting() -> Vec<Case> {
    let copy = "copy-limit-exceeded";
    let strings = |entries| aliased_list(entries, 512 * 1024, "string", "", 0);
    let sink_guest = super::guests::Guest {
        imports: &format!(
            r#"(import "{SINK}" (instance $sink (export "take" (func (param "s" (list string)) (result u32)))))"#
        ),
        lowered: r#"(core func $take (canon lower (func $sink "take") (memory (core memory $libc "memory"))))"#,
        host: &["take"],
        core_imports: r#"(import "host" "take" (func $take (param i32 i32) (result i32)))"#,
        body: r#"(func (export "run") (result i32) (local $i i32)
          (drop (memory.grow (i32.const 9)))
          (loop $l
            (i32.store (i32.add (i32.const 600000) (i32.shl (local.get $i) (i32.const 3))) (i32.const 0))
            (i32.store (i32.add (i32.const 600004) (i32.shl (local.get $i) (i32.const 3))) (i32.const 524288))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if $l (i32.lt_u (local.get $i) (i32.const 250))))
          (call $take (i32.const 600000) (i32.const 250)))"#,
        lifted: "(result u32)",
        lift_options: "",
        realloc: None,
    }
    .wat();
    vec![
        case("lifting", "list<string>: 250 entries alias 512 KiB", Probe::new(strings(250), tight(""), "run", copy)),
        case(
            "lifting",
            "the same through latin1+utf16 transcoding",
            Probe::new(
                aliased_list(250, 256 * 1024, "string", "string-encoding=latin1+utf16", 1 << 31),
                tight(""),
                "run",
                copy,
            ),
        ),
        case(
            "lifting",
            "list<list<u8>>: 250 entries alias 512 KiB",
            Probe::new(aliased_list(250, 512 * 1024, "(list u8)", "", 0), tight(""), "run", copy),
        ),
        case(
            "lifting",
            "host call: list<string> argument aliased 250x",
            Probe::new(sink_guest, tight(""), "run", copy).registry(sink_registry),
        ),
        case("lifting", "under the limit: 4 aliased strings return", Probe::new(strings(4), tight(""), "run", "ok")),
    ]
}

fn wasi() -> Vec<Case> {
    let block_forever = r#"(func (export "run") (call $block (call $subscribe (i64.const -1))))"#;
    let block_in_start =
        r#"(func $start (call $block (call $subscribe (i64.const -1)))) (start $start) (func (export "run"))"#;
    let pollables = r#"(func (export "run") (local $i i32)
        (loop $l (drop (call $subscribe (i64.const 0))) (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (i32.const 20000)))))"#;
    let clock_spin = r#"(func (export "run") (loop $l (drop (call $now)) (br $l)))"#;
    let empty_poll = r#"(func (export "run") (call $poll-list (i32.const 0) (i32.const 0) (i32.const 64)))"#;
    let random = |len: u64| format!(r#"(func (export "run") (call $random (i64.const {len}) (i32.const 64)))"#);
    let write = |len: u32| {
        format!(
            r#"(func (export "run") (drop (memory.grow (i32.const 2))) (call $write (call $get-stdout) (i32.const 0) (i32.const {len}) (i32.const 64)))"#
        )
    };
    let capture = "[wasi]\nstdio = \"capture\"\n";
    vec![
        case(
            "wasi",
            "block on subscribe-duration(u64::MAX)",
            Probe::new(with_clock(block_forever), fuel_rich(""), "run", "deadline-exceeded/host-call"),
        ),
        case(
            "wasi",
            "the same in a core start function",
            Probe::new(with_clock(block_in_start), fuel_rich(""), "run", "deadline-exceeded/host-call"),
        ),
        case(
            "wasi",
            "monotonic-clock.now in a loop",
            Probe::new(with_clock(clock_spin), fuel_rich(""), "run", "deadline-exceeded/guest"),
        ),
        case(
            "wasi",
            "20,000 pollables held",
            Probe::new(with_clock(pollables), fuel_rich(""), "run", "handle-limit-exceeded"),
        ),
        case(
            "wasi",
            "poll an empty list",
            Probe::new(with_clock(empty_poll), tight(""), "run", "component-model-violation"),
        ),
        case(
            "wasi",
            "get-random-bytes(64 MiB)",
            Probe::new(with_random(&random(64 << 20), None), tight(""), "run", "component-model-violation"),
        ),
        case(
            "wasi",
            "under the limit: get-random-bytes(256 KiB)",
            Probe::new(with_random(&random(256 << 10), None), tight(""), "run", "ok"),
        ),
        case(
            "wasi",
            "write past the capture pipe's capacity",
            Probe::new(with_stdout(&write(100_000)), tight(capture), "run", "component-model-violation"),
        ),
        case(
            "wasi",
            "under the limit: write 60 KiB to the capture pipe",
            Probe::new(with_stdout(&write(60_000)), tight(capture), "run", "ok"),
        ),
        case(
            "wasi",
            "exit(ok) inside a call",
            Probe::new(with_exit(r#"(func (export "run") (call $exit (i32.const 0)))"#), tight(""), "run", "exited/0"),
        ),
        case(
            "wasi",
            "exit(err) inside a call",
            Probe::new(with_exit(r#"(func (export "run") (call $exit (i32.const 1)))"#), tight(""), "run", "exited/1"),
        ),
    ]
}

fn violations() -> Vec<Case> {
    let cm = "component-model-violation";
    let string_result = |bytes: &str| {
        plain(
            &format!(r#"(data (i32.const 200) "{bytes}") {}"#, returning_area(&[200, (bytes.len() / 3) as u32])),
            "(result string)",
        )
    };
    let u32_list = |ptr: u32, len: u32| plain(&returning_area(&[ptr, len]), "(result (list u32))");
    let resources = |body: &str| with_resources(&format!(r#"(func (export "run") {body})"#));
    let lowering_args = |realloc: &'static str, param: &'static str| {
        super::guests::Guest {
            imports: "",
            lowered: "",
            host: &[],
            core_imports: "",
            body: r#"(func (export "run") (param i32 i32))"#,
            lifted: param,
            lift_options: "",
            realloc: Some(realloc),
        }
        .wat()
    };
    vec![
        case(
            "abi",
            "invalid UTF-8 in a result string",
            Probe::new(string_result("\\c3\\28\\ff"), tight(""), "run", cm),
        ),
        case(
            "abi",
            "unpaired UTF-16 surrogate",
            Probe::new(
                plain(
                    &format!(r#"(data (i32.const 200) "\00\d8\00\d8") {}"#, returning_area(&[200, 2])),
                    "(result string)",
                )
                .replace(
                    "(realloc (core func $libc \"realloc\")) ",
                    "(realloc (core func $libc \"realloc\")) string-encoding=utf16 ",
                ),
                tight(""),
                "run",
                cm,
            ),
        ),
        case(
            "abi",
            "a char that is a surrogate",
            Probe::new(
                plain(r#"(func (export "run") (result i32) (i32.const 0xd800))"#, "(result char)"),
                tight(""),
                "run",
                cm,
            ),
        ),
        case(
            "abi",
            "an option with discriminant 9",
            Probe::new(plain(&returning_area(&[9, 0]), "(result (option u32))"), tight(""), "run", cm),
        ),
        case("abi", "a list<u32> at an odd address", Probe::new(u32_list(1, 4), tight(""), "run", cm)),
        case("abi", "a list past the end of memory", Probe::new(u32_list(0xffff_0000, 100), tight(""), "run", cm)),
        case("abi", "a list whose byte length overflows", Probe::new(u32_list(0, 0x7fff_ffff), tight(""), "run", cm)),
        case(
            "abi",
            "a return area out of bounds",
            Probe::new(
                plain(r#"(func (export "run") (result i32) (i32.const -16))"#, "(result (list u8))"),
                tight(""),
                "run",
                cm,
            ),
        ),
        case(
            "abi",
            "a misaligned return area",
            Probe::new(
                plain(r#"(func (export "run") (result i32) (i32.const 3))"#, "(result (list u8))"),
                tight(""),
                "run",
                cm,
            ),
        ),
        case(
            "abi",
            "realloc out of bounds while lowering arguments",
            Probe::new(lowering_args("0x7ffffff0", r#"(param "s" string)"#), tight(""), "run", cm)
                .args(vec![Val::String("hello".into())]),
        ),
        case(
            "abi",
            "realloc misaligned while lowering arguments",
            Probe::new(lowering_args("2", r#"(param "xs" (list u32))"#), tight(""), "run", cm)
                .args(vec![Val::List(vec![Val::U32(1), Val::U32(2)])]),
        ),
        case(
            "abi",
            "realloc out of bounds while lowering a WASI result",
            Probe::new(
                with_random(
                    r#"(func (export "run") (call $random (i64.const 16) (i32.const 64)))"#,
                    Some("0x7ffffff0"),
                ),
                tight(""),
                "run",
                cm,
            ),
        ),
        case(
            "handles",
            "drop the same handle twice",
            Probe::new(
                resources(
                    "(local $h i32) (local.set $h (call $new-a (i32.const 1))) (call $drop-a (local.get $h)) (call $drop-a (local.get $h))",
                ),
                tight(""),
                "run",
                cm,
            ),
        ),
        case(
            "handles",
            "drop a forged handle",
            Probe::new(resources("(call $drop-a (i32.const 12345))"), tight(""), "run", cm),
        ),
        case(
            "handles",
            "drop a handle as the wrong type",
            Probe::new(resources("(call $drop-b (call $new-a (i32.const 1)))"), tight(""), "run", cm),
        ),
        case(
            "handles",
            "resource.new until the handle limit",
            Probe::new(
                resources("(loop $l (drop (call $new-a (i32.const 1))) (br $l))"),
                fuel_rich(""),
                "run",
                "handle-limit-exceeded",
            ),
        ),
        case(
            "handles",
            "under the limit: 5,000 handles held",
            Probe::new(
                resources(
                    "(local $i i32) (loop $l (drop (call $new-a (i32.const 1))) (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $l (i32.lt_u (local.get $i) (i32.const 5000))))",
                ),
                tight(""),
                "run",
                "ok",
            ),
        ),
    ]
}

fn loader() -> Vec<Case> {
    let unit = |core: &str| plain(core, "");
    // Each level instantiates the one below twice: 2^levels instantiations.
    let nested = |levels: usize| {
        let mut wat = String::from(
            "(component $root\n(component $c0 (core module $m (func (export \"f\"))) (core instance (instantiate $m)))\n",
        );
        for level in 1..=levels {
            wat.push_str(&format!(
                "(component $c{level} (alias outer $root $c{prev} (component $inner)) (instance (instantiate $inner)) (instance (instantiate $inner)))\n",
                prev = level - 1
            ));
        }
        wat.push_str(&format!("(instance (instantiate $c{levels})))"));
        wat
    };
    // Inline export aliases, which the WAT parser resolves in quadratic time.
    let aliases = |count: usize| {
        let exports: String = (0..count).map(|i| format!("(export \"a{i}\" (func $i \"f\"))")).collect();
        format!(
            "(component (core module $m (func (export \"f\"))) (core instance $i (instantiate $m)) (core instance {exports}) (func (export \"run\") (canon lift (core func $i \"f\"))))"
        )
    };
    // A body of `count` bytes of arithmetic over a few locals (binary).
    let function = |bytes: usize| {
        let step = "(local.set 0 (i32.add (local.get 0) (i32.mul (local.get 1) (i32.const 3))))";
        let body = step.repeat(bytes / 11);
        format!("(func (local i32 i32) {body})")
    };
    let functions = |count: usize, bytes: usize| {
        let text = plain(&format!(r#"{} (func (export "run"))"#, function(bytes).repeat(count)), "");
        wat::parse_str(text).unwrap_or_default()
    };
    let load = |wat: String, expected, bound| Probe::new(wat, tight(""), "run", expected).bound(bound);
    let load_binary = |binary, expected, bound| load(String::new(), expected, bound).binary(binary);
    vec![
        case(
            "loader",
            "components nested 30 deep, each instantiating twice",
            load(nested(30), "too-large", FAST_REFUSAL),
        ),
        case("loader", "50,000 inline aliases in WAT", load(aliases(50_000), "too-large", FAST_REFUSAL)),
        case("loader", "under the limit: 8,000 inline aliases", load(aliases(8_000), "ok", ADMITTED_LOAD)),
        case("loader", "one 660 KB function", load_binary(functions(1, 660_000), "too-large", FAST_REFUSAL)),
        case("loader", "24 functions of 100 KB", load_binary(functions(24, 100_000), "too-large", FAST_REFUSAL)),
        case(
            "loader",
            "worst admitted: one function at the body cap",
            load_binary(functions(1, 140_000), "ok", ADMITTED_LOAD),
        ),
        case(
            "loader",
            "worst admitted: 16 functions at the body cap",
            load_binary(functions(16, 125_000), "ok", ADMITTED_LOAD),
        ),
        case(
            "loader",
            "a memory whose minimum is 64 MiB",
            load(unit(r#"(memory 1024) (func (export "run"))"#), "memory-limit-exceeded", FAST_REFUSAL),
        ),
        case(
            "loader",
            "a table whose minimum is 1,000,000",
            load(unit(r#"(table 1000000 funcref) (func (export "run"))"#), "table-limit-exceeded", FAST_REFUSAL),
        ),
        case(
            "loader",
            "a 2 MiB memory under a 1 MiB budget",
            load(unit(r#"(memory 32) (func (export "run"))"#), "memory-limit-exceeded", FAST_REFUSAL),
        ),
    ]
}
