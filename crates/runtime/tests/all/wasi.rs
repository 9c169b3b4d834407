//! WASI p2, deny by default: output only as granted, no imports beyond it.

use runtime::{ComponentManifest, Val};

use crate::{FOUR_MIB, TestResult, rust_guest, tokio};

#[test]
fn output_is_discarded_unless_the_manifest_captures_it() -> TestResult {
    tokio()?.block_on(async {
        let message = [Val::String("hello from the guest".into())];
        let silent = rust_guest(FOUR_MIB, "")?;
        let outcome = silent.call_async("shout", &message).await?;
        assert_eq!((outcome.report.stdout, outcome.report.stderr), (None, None));

        let captured = rust_guest(FOUR_MIB, "[wasi]\nstdio = \"capture\"")?;
        let outcome = captured.call_async("shout", &message).await?;
        assert_eq!(outcome.report.stdout.as_deref(), Some("hello from the guest\n"));
        assert_eq!(outcome.report.stderr.as_deref(), Some("hello from the guest\n"));
        Ok(())
    })
}

#[test]
fn captured_output_is_capped() -> TestResult {
    tokio()?.block_on(async {
        let captured = rust_guest(FOUR_MIB, "[wasi]\nstdio = \"capture\"")?;
        let huge = [Val::String("x".repeat(200 * 1024))];
        let outcome = captured.call_async("shout", &huge).await?;
        let stdout = outcome.report.stdout.unwrap_or_default();
        assert!(stdout.len() <= runtime::wasi::MAX_CAPTURED_OUTPUT_BYTES, "{} bytes kept", stdout.len());
        Ok(())
    })
}

#[test]
fn a_wasi_interface_the_host_does_not_grant_fails_at_link_naming_it() -> TestResult {
    let wat = r#"(component
      (import "wasi:http/outgoing-handler@0.2.6" (instance (export "handle" (func))))
      (core module $m (func (export "run")))
      (core instance $i (instantiate $m))
      (func (export "run") (canon lift (core func $i "run"))))"#;
    let manifest: ComponentManifest = "[component]\nname = \"net\"\nversion = \"0.1.0\"\n\
        [resources]\nmemory = \"1MiB\"\nfuel = 1_000\ntimeout = \"1s\"\n"
        .parse()?;
    let error = crate::runtime().load_bytes(wat.as_bytes(), &manifest).err().ok_or("no http here")?;
    assert_eq!(error.kind(), "link-failed");
    assert!(error.to_string().contains("wasi:http/outgoing-handler"), "{error}");
    Ok(())
}

#[test]
fn a_component_with_imports_refuses_a_synchronous_call() -> TestResult {
    let guest = rust_guest(FOUR_MIB, "")?;
    let error = guest.call("greet", &[Val::String("x".into())]).err().ok_or("sync call refused")?;
    assert_eq!(error.kind(), "async-required");
    assert!(guest.instantiate(()).is_err());
    Ok(())
}

#[test]
fn each_call_on_a_live_instance_reports_only_its_own_output() -> TestResult {
    tokio()?.block_on(async {
        let captured = rust_guest(FOUR_MIB, "[wasi]\nstdio = \"capture\"")?;
        let mut instance = captured.instantiate_async(()).await?;
        let first = instance.call_async("shout", &[Val::String("first".into())]).await?;
        let second = instance.call_async("shout", &[Val::String("second".into())]).await?;
        assert_eq!(first.report.stdout.as_deref(), Some("first\n"));
        assert_eq!(second.report.stdout.as_deref(), Some("second\n"), "not the first call's output again");
        assert_eq!(second.report.stderr.as_deref(), Some("second\n"));
        Ok(())
    })
}

/// A guest that makes one `wasi:http/types` `fields` and returns its handle.
const MAKES_FIELDS: &str = r#"(component
  (import "wasi:http/types@0.2.6" (instance $http
    (export "fields" (type $fields (sub resource)))
    (export "[constructor]fields" (func (result (own $fields))))))
  (core func $new (canon lower (func $http "[constructor]fields")))
  (core module $m (import "h" "new" (func $new (result i32)))
    (func (export "run") (result i32) (call $new)))
  (core instance $i (instantiate $m (with "h" (instance (export "new" (func $new))))))
  (func (export "run") (result u32) (canon lift (core func $i "run"))))"#;

#[test]
fn an_ungranted_interface_loads_but_gives_the_guest_nothing() -> TestResult {
    tokio()?.block_on(async {
        let resources = "[component]\nname = \"fields\"\nversion = \"0.1.0\"\n\
            [resources]\nmemory = \"1MiB\"\nfuel = 1_000_000\ntimeout = \"1s\"\n";
        let ungranted: ComponentManifest = resources.parse()?;
        let guest = crate::runtime().load_bytes(MAKES_FIELDS.as_bytes(), &ungranted)?;
        let error = guest.call_async("run", &[]).await.err().ok_or("fields made without a grant")?;
        assert_eq!(error.kind(), "capability-denied", "{error}");
        let text = error.to_string();
        assert!(text.contains("wasi:http/types") && text.contains("--allow-http"), "{text}");

        // Granted (and allowed by the policy), the same call makes its fields.
        let policy = runtime::HostPolicy::parse("policy.toml", "[grants]\nhttp = true\n")?;
        let runtime = runtime::Runtime::builder().policy(policy).build()?;
        let granted = format!("{resources}[wasi.http]\nallowed-hosts = [\"http://127.0.0.1:1\"]\n");
        let granted = ComponentManifest::parse("Component.toml", &granted, runtime.policy())?;
        let guest = runtime.load_bytes(MAKES_FIELDS.as_bytes(), &granted)?;
        let outcome = guest.call_async("run", &[]).await?;
        assert!(matches!(outcome.results[..], [Val::U32(_)]), "{:?}", outcome.results);
        Ok(())
    })
}

/// A guest whose `run(times, size)` appends `times` values of `size` bytes
/// under one name to one `wasi:http/types` `fields`, stopping at the first
/// error value, and returns that result's discriminant (0 for ok).
const GROWS_FIELDS: &str = r#"(component
  (import "wasi:http/types@0.2.6" (instance $http
    (export "fields" (type $fields (sub resource)))
    (type $he (variant (case "invalid-syntax") (case "forbidden") (case "immutable")))
    (export "header-error" (type $header-error (eq $he)))
    (export "[constructor]fields" (func (result (own $fields))))
    (export "[method]fields.append"
      (func (param "self" (borrow $fields)) (param "name" string) (param "value" (list u8))
        (result (result (error $header-error)))))))
  (core module $mem (memory (export "memory") 1))
  (core instance $mem (instantiate $mem))
  (alias core export $mem "memory" (core memory $memory))
  (core func $new (canon lower (func $http "[constructor]fields")))
  (core func $append (canon lower (func $http "[method]fields.append") (memory $memory)))
  (core module $m
    (import "h" "memory" (memory 1))
    (import "h" "new" (func $new (result i32)))
    (import "h" "append" (func $append (param i32 i32 i32 i32 i32 i32)))
    (data (i32.const 0) "x-big")
    (func (export "run") (param $times i32) (param $size i32) (result i32)
      (local $fields i32) (local $i i32)
      (memory.fill (i32.const 1024) (i32.const 97) (local.get $size))
      (local.set $fields (call $new))
      (block $done
        (loop $again
          (br_if $done (i32.ge_u (local.get $i) (local.get $times)))
          (call $append (local.get $fields) (i32.const 0) (i32.const 5) (i32.const 1024) (local.get $size) (i32.const 64))
          (br_if $done (i32.load8_u (i32.const 64)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $again)))
      (i32.load8_u (i32.const 64))))
  (core instance $i (instantiate $m (with "h" (instance
    (export "memory" (memory $memory)) (export "new" (func $new)) (export "append" (func $append))))))
  (func (export "run") (param "times" u32) (param "size" u32) (result u32) (canon lift (core func $i "run"))))"#;

/// A `fields` the guest grows past its share of the host-side budget (1 MiB
/// of memory x 4 / 1,024 objects: 4 KiB) is the guest's overdraft,
/// `host-memory-limit-exceeded` with a help line naming the policy's
/// `host-memory-factor`, never `host-error`; under its share it grows.
#[test]
fn a_fields_past_its_share_of_the_host_memory_budget_is_the_guests_overdraft() -> TestResult {
    tokio()?.block_on(async {
        let policy = runtime::HostPolicy::parse("policy.toml", "[grants]\nhttp = true\n")?;
        let runtime = runtime::Runtime::builder().policy(policy).build()?;
        let text = "[component]\nname = \"fields\"\nversion = \"0.1.0\"\n\
            [resources]\nmemory = \"1MiB\"\nfuel = 100_000_000\ntimeout = \"10s\"\n\
            [wasi.http]\nallowed-hosts = [\"http://127.0.0.1:1\"]\n";
        let manifest = ComponentManifest::parse("Component.toml", text, runtime.policy())?;
        let guest = runtime.load_bytes(GROWS_FIELDS.as_bytes(), &manifest)?;
        // Two values of 1,500 bytes fit 4 KiB.
        let under = guest.call_async("run", &[Val::U32(2), Val::U32(1_500)]).await?;
        assert_eq!(under.results, [Val::U32(0)]);
        // A third does not.
        let error = guest.call_async("run", &[Val::U32(3), Val::U32(1_500)]).await.err().ok_or("past the share")?;
        assert_eq!(error.kind(), "host-memory-limit-exceeded", "{error}");
        let crash = error.crash().ok_or("a crash")?;
        assert_eq!(crash.kind, runtime::CrashKind::HostMemoryLimitExceeded);
        assert!(crash.kind.help().contains("host-memory-factor"), "{}", crash.kind.help());
        assert!(crash.message.contains("wasi:http/types"), "{}", crash.message);
        assert!(crash.detail.as_deref().is_some_and(|detail| detail.contains("4194304 bytes")), "{:?}", crash.detail);
        Ok(())
    })
}

/// A guest that sets `k` in the reference key-value store, reads it back
/// and sleeps `ms` through the reference `sleep`.
fn kv_and_sleep() -> String {
    format!(
        r#"(component
  (import "{kv}" (instance $kv
    (export "get" (func (param "key" string) (result (result (option string) (error string)))))
    (export "set" (func (param "key" string) (param "value" string) (result (result (error string)))))))
  (import "{time}" (instance $time (export "sleep" (func (param "ms" u32)))))
  (core module $mem (memory (export "memory") 1)
    (global $next (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (global.get $next) (global.set $next (i32.add (global.get $next) (local.get 3)))))
  (core instance $mem (instantiate $mem))
  (alias core export $mem "memory" (core memory $memory))
  (alias core export $mem "realloc" (core func $realloc))
  (core func $set (canon lower (func $kv "set") (memory $memory) (realloc $realloc)))
  (core func $get (canon lower (func $kv "get") (memory $memory) (realloc $realloc)))
  (core func $sleep (canon lower (func $time "sleep")))
  (core module $m
    (import "h" "memory" (memory 1))
    (import "h" "set" (func $set (param i32 i32 i32 i32 i32)))
    (import "h" "get" (func $get (param i32 i32 i32)))
    (import "h" "sleep" (func $sleep (param i32)))
    (data (i32.const 0) "kv")
    ;; set("k", "v"), then get("k"): 1 when the value came back.
    (func (export "run") (param $ms i32) (result i32)
      (call $set (i32.const 0) (i32.const 1) (i32.const 1) (i32.const 1) (i32.const 64))
      (call $get (i32.const 0) (i32.const 1) (i32.const 128))
      (call $sleep (local.get $ms))
      ;; result<option<string>>: ok (0 at 128), some (1 at 132).
      (i32.and (i32.eqz (i32.load8_u (i32.const 128))) (i32.load8_u (i32.const 132)))))
  (core instance $i (instantiate $m (with "h" (instance
    (export "memory" (memory $memory)) (export "set" (func $set)) (export "get" (func $get))
    (export "sleep" (func $sleep))))))
  (func (export "run") (param "ms" u32) (result u32) (canon lift (core func $i "run"))))"#,
        kv = runtime::host::KV_INTERFACE,
        time = runtime::host::TIME_INTERFACE,
    )
}

#[test]
fn the_reference_host_functions_answer_only_a_manifest_that_names_them() -> TestResult {
    tokio()?.block_on(async {
        let resources = "[component]\nname = \"kv\"\nversion = \"0.1.0\"\n\
            [resources]\nmemory = \"1MiB\"\nfuel = 1_000_000\ntimeout = \"5s\"\n";
        let wat = kv_and_sleep();
        // Not named: the first call into `kv` fails at once, before any sleep.
        let ungranted = crate::runtime().load_bytes(wat.as_bytes(), &resources.parse()?)?;
        let started = std::time::Instant::now();
        let error = ungranted.call_async("run", &[Val::U32(3_000)]).await.err().ok_or("kv used without a grant")?;
        assert_eq!(error.kind(), "capability-denied", "{error}");
        let text = error.to_string();
        assert!(text.contains(runtime::host::KV_INTERFACE) && text.contains("--host-functions kv"), "{text}");
        assert!(started.elapsed() < std::time::Duration::from_secs(3), "the sleep never ran");
        // `kv` alone: the store answers and the sleep is refused.
        let kv_only: ComponentManifest = format!("{resources}[wasi]\nhost-functions = [\"kv\"]\n").parse()?;
        let kv_only = crate::runtime().load_bytes(wat.as_bytes(), &kv_only)?;
        let error = kv_only.call_async("run", &[Val::U32(1)]).await.err().ok_or("sleep used without a grant")?;
        assert!(error.to_string().contains(runtime::host::TIME_INTERFACE), "{error}");
        // Both named: the value comes back and the sleep is served.
        let both: ComponentManifest = format!("{resources}[wasi]\nhost-functions = [\"kv\", \"time\"]\n").parse()?;
        let both = crate::runtime().load_bytes(wat.as_bytes(), &both)?;
        let outcome = both.call_async("run", &[Val::U32(1)]).await?;
        assert_eq!(outcome.results, [Val::U32(1)]);
        assert_eq!(outcome.report.host_calls, 3);
        Ok(())
    })
}

#[test]
fn the_runtime_policy_is_the_last_gate_whatever_policy_the_manifest_was_parsed_with() -> TestResult {
    let text = "[component]\nname = \"wide\"\nversion = \"0.1.0\"\n\
        [resources]\nmemory = \"1MiB\"\nfuel = 1_000_000\ntimeout = \"1s\"\n\
        [wasi.network]\ntcp-connect = [\"127.0.0.1:9\"]\n";
    let wide = runtime::HostPolicy::parse("wide.toml", "[grants]\nnetwork = true\n")?;
    let parsed_wide = ComponentManifest::parse("Component.toml", text, &wide)?;
    // The default runtime refuses sockets: loading fails, naming the grant.
    let error = crate::runtime().load_bytes(MAKES_FIELDS.as_bytes(), &parsed_wide).err().ok_or("loaded")?;
    assert_eq!(error.kind(), "grant-refused", "{error}");
    assert!(error.to_string().contains("wasi.network"), "{error}");
    // Built from values, or changed after parsing: the same gate.
    let mut changed: ComponentManifest = "[component]\nname = \"c\"\nversion = \"0.1.0\"\n\
        [resources]\nmemory = \"1MiB\"\nfuel = 1_000_000\ntimeout = \"1s\"\n"
        .parse()?;
    changed.wasi.http.allowed_hosts.push("http://127.0.0.1:1".parse()?);
    let error = crate::runtime().load_bytes(MAKES_FIELDS.as_bytes(), &changed).err().ok_or("loaded")?;
    assert_eq!(error.kind(), "grant-refused", "{error}");
    // A runtime whose own policy allows it loads the same manifest.
    let runtime = runtime::Runtime::builder().policy(wide).build()?;
    runtime.load_bytes(MAKES_FIELDS.as_bytes(), &parsed_wide)?;
    Ok(())
}

/// Random numbers and the monotonic clock through WASI.
const READS_RANDOM_AND_CLOCK: &str = r#"(component
  (import "wasi:random/random@0.2.0" (instance $random (export "get-random-u64" (func (result u64)))))
  (import "wasi:clocks/monotonic-clock@0.2.0" (instance $clock (export "now" (func (result u64)))))
  (core func $rand (canon lower (func $random "get-random-u64")))
  (core func $now (canon lower (func $clock "now")))
  (core module $m
    (import "wasi" "rand" (func $rand (result i64)))
    (import "wasi" "now" (func $now (result i64)))
    (func (export "rand") (result i64) (call $rand))
    (func (export "now") (result i64) (call $now)))
  (core instance $i (instantiate $m (with "wasi" (instance (export "rand" (func $rand)) (export "now" (func $now))))))
  (func (export "rand") (result u64) (canon lift (core func $i "rand")))
  (func (export "now") (result u64) (canon lift (core func $i "now"))))"#;

/// An actor replayed with the same seed reads the same random numbers and
/// clock values in the same order; another seed, or none, reads others.
#[test]
fn an_instance_replayed_with_a_seed_reads_the_same_random_numbers_and_clock() -> TestResult {
    use runtime::wasi::InstanceWasi;
    let runtime = runtime::Runtime::builder().build()?;
    let manifest: ComponentManifest =
        "[component]\nname = \"replay\"\nversion = \"0.1.0\"\n[resources]\nmemory = \"1MiB\"\nfuel = 1_000_000\ntimeout = \"5s\"\n"
            .parse()?;
    let component = runtime.load_bytes(READS_RANDOM_AND_CLOCK.as_bytes(), &manifest)?;
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let reads = |component: runtime::LoadedComponent| {
        tokio.block_on(async move {
            let mut instance = component.instantiate_async(()).await?;
            let mut values = Vec::new();
            for export in ["rand", "rand", "now", "now"] {
                values.push(instance.call_async(export, &[]).await?.results);
            }
            Ok::<_, runtime::RuntimeError>(values)
        })
    };
    let seeded = |seed| component.with_instance_wasi(&InstanceWasi::new().replay(seed));
    let first = reads(seeded(7)?)?;
    assert_eq!(first, reads(seeded(7)?)?, "the same seed, the same reads");
    assert_eq!(
        &first[2..],
        [vec![runtime::Val::U64(0)], vec![runtime::Val::U64(1_000_000)]],
        "the clock moves 1 ms a read"
    );
    assert_ne!(first[..2], reads(seeded(8)?)?[..2], "another seed, other numbers");
    assert_ne!(first[..2], reads(component.clone())?[..2], "no seed: the host's own random numbers");
    Ok(())
}
