//! WAT guests for the boundary attacks: what they import, how they lay out
//! their memory, and the canonical-ABI shapes they abuse.

/// A core module providing a memory and a bump `cabi_realloc` that grows the
/// memory as needed (and returns a pointer past its end when the budget
/// refuses, which wasmtime then rejects). `realloc_result` replaces the
/// computed pointer when given: a hostile allocator.
pub(crate) fn libc(realloc_result: Option<&str>) -> String {
    let result = realloc_result.map_or_else(|| "(local.get $ptr)".to_owned(), |r| format!("(i32.const {r})"));
    format!(
        r#"(core module $libc
    (memory (export "memory") 1)
    (global $bump (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32) (param $align i32) (param $size i32) (result i32) (local $ptr i32)
      (local.set $ptr (i32.and (i32.add (global.get $bump) (i32.sub (local.get $align) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get $align))))
      (global.set $bump (i32.add (local.get $ptr) (local.get $size)))
      (block $done (loop $grow
        (br_if $done (i32.le_u (global.get $bump) (i32.mul (memory.size) (i32.const 65536))))
        (br_if $done (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
        (br $grow)))
      {result}))
  (core instance $libc (instantiate $libc))"#
    )
}

/// A component whose core module (which imports `libc` memory) exports `run`
/// with the given core signature, lifted as `lifted`, plus `imports` lowered
/// into the core module's `host` namespace (`(core func $name ...)` lines and
/// matching `import` lines).
pub(crate) struct Guest<'a> {
    /// Component-level imports and aliases.
    pub(crate) imports: &'a str,
    /// `(core func $x (canon lower ...))` lines, before the core module.
    pub(crate) lowered: &'a str,
    /// The names of those core funcs, as the core module imports them from `host`.
    pub(crate) host: &'a [&'a str],
    /// The core module's imports from `host`, with their core types.
    pub(crate) core_imports: &'a str,
    /// The core module's own fields (functions, data, start).
    pub(crate) body: &'a str,
    /// The lifted export's component type.
    pub(crate) lifted: &'a str,
    /// Canonical options of the lift, beyond memory.
    pub(crate) lift_options: &'a str,
    /// A replacement result for `cabi_realloc`.
    pub(crate) realloc: Option<&'a str>,
}

impl Guest<'_> {
    pub(crate) fn wat(&self) -> String {
        let host: String = self.host.iter().map(|name| format!(r#"(export "{name}" (func ${name}))"#)).collect();
        format!(
            r#"(component $C
  {imports}
  {libc}
  {lowered}
  (core module $m
    (import "libc" "memory" (memory 1))
    {core_imports}
    {body})
  (core instance $i (instantiate $m (with "libc" (instance $libc)) (with "host" (instance {host}))))
  (func (export "run") {lifted}
    (canon lift (core func $i "run") (memory (core memory $libc "memory")) (realloc (core func $libc "realloc")) {options})))"#,
            imports = self.imports,
            libc = libc(self.realloc),
            lowered = self.lowered,
            core_imports = self.core_imports,
            body = self.body,
            lifted = self.lifted,
            options = self.lift_options,
        )
    }
}

/// A guest with no imports: `body` defines the core `run`, lifted as `lifted`.
pub(crate) fn plain(body: &str, lifted: &str) -> String {
    Guest { imports: "", lowered: "", host: &[], core_imports: "", body, lifted, lift_options: "", realloc: None }.wat()
}

/// `wasi:io/poll` and `wasi:clocks/monotonic-clock`, lowered as `subscribe`
/// (u64 -> handle), `block` (handle) and `poll` (list of borrows -> list of u32).
pub(crate) const CLOCK_IMPORTS: &str = r#"
  (import "wasi:io/poll@0.2.0" (instance $poll
    (export "pollable" (type (sub resource)))
    (export "[method]pollable.block" (func (param "self" (borrow 0))))
    (export "poll" (func (param "in" (list (borrow 0))) (result (list u32))))))
  (alias export $poll "pollable" (type $pollable))
  (import "wasi:clocks/monotonic-clock@0.2.0" (instance $clock
    (alias outer $C $pollable (type $p))
    (export "now" (func (result u64)))
    (export "subscribe-duration" (func (param "when" u64) (result (own $p))))))"#;

pub(crate) const CLOCK_LOWERED: &str = r#"
  (core func $subscribe (canon lower (func $clock "subscribe-duration")))
  (core func $now (canon lower (func $clock "now")))
  (core func $block (canon lower (func $poll "[method]pollable.block")))
  (core func $poll-list (canon lower (func $poll "poll") (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))"#;

pub(crate) const CLOCK_HOST: &[&str] = &["subscribe", "now", "block", "poll-list"];

pub(crate) const CLOCK_CORE_IMPORTS: &str = r#"
    (import "host" "subscribe" (func $subscribe (param i64) (result i32)))
    (import "host" "now" (func $now (result i64)))
    (import "host" "block" (func $block (param i32)))
    (import "host" "poll-list" (func $poll-list (param i32 i32 i32)))"#;

/// A guest importing the clock and poll interfaces of WASI.
pub(crate) fn with_clock(body: &str) -> String {
    Guest {
        imports: CLOCK_IMPORTS,
        lowered: CLOCK_LOWERED,
        host: CLOCK_HOST,
        core_imports: CLOCK_CORE_IMPORTS,
        body,
        lifted: "",
        lift_options: "",
        realloc: None,
    }
    .wat()
}

/// A guest importing `wasi:random/random.get-random-bytes`, lowered as
/// `random` (len, retptr), with an optional hostile `cabi_realloc`.
pub(crate) fn with_random(body: &str, realloc: Option<&str>) -> String {
    Guest {
        imports: r#"(import "wasi:random/random@0.2.0" (instance $random
          (export "get-random-bytes" (func (param "len" u64) (result (list u8))))))"#,
        lowered: r#"(core func $random (canon lower (func $random "get-random-bytes")
          (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))"#,
        host: &["random"],
        core_imports: r#"(import "host" "random" (func $random (param i64 i32)))"#,
        body,
        lifted: "",
        lift_options: "",
        realloc,
    }
    .wat()
}

/// A guest importing `wasi:cli/exit.exit`, lowered as `exit` (0 ok, 1 err).
pub(crate) fn with_exit(body: &str) -> String {
    Guest {
        imports: r#"(import "wasi:cli/exit@0.2.0" (instance $exit (export "exit" (func (param "status" (result))))))"#,
        lowered: r#"(core func $exit (canon lower (func $exit "exit")))"#,
        host: &["exit"],
        core_imports: r#"(import "host" "exit" (func $exit (param i32)))"#,
        body,
        lifted: "",
        lift_options: "",
        realloc: None,
    }
    .wat()
}

/// A guest importing `wasi:cli/stdout` and `output-stream.write`, lowered as
/// `stdout` (-> handle) and `write` (handle, ptr, len, retptr).
pub(crate) fn with_stdout(body: &str) -> String {
    Guest {
        imports: r#"
  (import "wasi:io/error@0.2.0" (instance $error (export "error" (type (sub resource)))))
  (alias export $error "error" (type $error))
  (import "wasi:io/streams@0.2.0" (instance $streams
    (alias outer $C $error (type $e))
    (export "output-stream" (type $os (sub resource)))
    (type $se (variant (case "last-operation-failed" (own $e)) (case "closed")))
    (export "stream-error" (type $se2 (eq $se)))
    (export "[method]output-stream.write" (func (param "self" (borrow $os)) (param "contents" (list u8)) (result (result (error $se2)))))))
  (alias export $streams "output-stream" (type $output-stream))
  (import "wasi:cli/stdout@0.2.0" (instance $stdout
    (alias outer $C $output-stream (type $os))
    (export "get-stdout" (func (result (own $os))))))"#,
        lowered: r#"
  (core func $get-stdout (canon lower (func $stdout "get-stdout")))
  (core func $write (canon lower (func $streams "[method]output-stream.write") (memory (core memory $libc "memory"))))"#,
        host: &["get-stdout", "write"],
        core_imports: r#"
    (import "host" "get-stdout" (func $get-stdout (result i32)))
    (import "host" "write" (func $write (param i32 i32 i32 i32)))"#,
        body,
        lifted: "",
        lift_options: "",
        realloc: None,
    }
    .wat()
}

/// A guest defining two resource types and lowering `resource.new` and
/// `resource.drop` of each as `new-a`, `drop-a`, `new-b`, `drop-b`.
pub(crate) fn with_resources(body: &str) -> String {
    Guest {
        imports: r#"(type $a (resource (rep i32))) (type $b (resource (rep i32)))"#,
        lowered: r#"
  (core func $new-a (canon resource.new $a)) (core func $drop-a (canon resource.drop $a))
  (core func $new-b (canon resource.new $b)) (core func $drop-b (canon resource.drop $b))"#,
        host: &["new-a", "drop-a", "new-b", "drop-b"],
        core_imports: r#"
    (import "host" "new-a" (func $new-a (param i32) (result i32))) (import "host" "drop-a" (func $drop-a (param i32)))
    (import "host" "new-b" (func $new-b (param i32) (result i32))) (import "host" "drop-b" (func $drop-b (param i32)))"#,
        body,
        lifted: "",
        lift_options: "",
        realloc: None,
    }
    .wat()
}

/// A core `run` returning the address of a return area that holds the words
/// `words` (written by the function before it returns), at address 64.
pub(crate) fn returning_area(words: &[u32]) -> String {
    let stores: String = words
        .iter()
        .enumerate()
        .map(|(i, word)| format!("(i32.store (i32.const {}) (i32.const {}))", 64 + 4 * i, *word as i32))
        .collect();
    format!(r#"(func (export "run") (result i32) {stores} (i32.const 64))"#)
}

/// A guest whose `run` returns `list<...>` of `entries` entries that all
/// alias the same `bytes` of memory: its result makes the host copy
/// `entries * bytes` (an amplification) out of a small memory. `element`
/// is the lifted entry type, `tag` is or-ed into each entry's length
/// (the UTF-16 flag of `latin1+utf16`).
pub(crate) fn aliased_list(entries: u32, bytes: u32, element: &str, options: &str, tag: u32) -> String {
    let region = if tag == 0 { bytes } else { bytes * 2 };
    let pages = region.div_ceil(65536) + 1;
    let array = pages * 65536 - 65536;
    let area = array + 4096;
    let body = format!(
        r#"(func (export "run") (result i32) (local $i i32)
      (drop (memory.grow (i32.const {grow})))
      (loop $l
        (i32.store (i32.add (i32.const {array}) (i32.shl (local.get $i) (i32.const 3))) (i32.const 0))
        (i32.store (i32.add (i32.const {array4}) (i32.shl (local.get $i) (i32.const 3))) (i32.const {len}))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $l (i32.lt_u (local.get $i) (i32.const {entries}))))
      (i32.store (i32.const {area}) (i32.const {array}))
      (i32.store (i32.const {area4}) (i32.const {entries}))
      (i32.const {area}))"#,
        area4 = area + 4,
        grow = pages - 1,
        array4 = array + 4,
        len = (bytes | tag) as i32,
    );
    Guest {
        imports: "",
        lowered: "",
        host: &[],
        core_imports: "",
        body: &body,
        lifted: &format!("(result (list {element}))"),
        lift_options: options,
        realloc: None,
    }
    .wat()
}

/// A guest whose `run` writes `line` and a newline to its stdout.
pub(crate) fn print_stdout_guest(line: &str) -> String {
    let text = format!("{line}\n");
    let escaped = text.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
    with_stdout(&format!(
        r#"(data (i32.const 0) "{escaped}") (func (export "run") (call $write (call $get-stdout) (i32.const 0) (i32.const {len}) (i32.const 4096)))"#,
        len = text.len()
    ))
}
