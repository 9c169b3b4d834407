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
        assert!(stdout.len() <= runtime::MAX_CAPTURED_OUTPUT_BYTES, "{} bytes kept", stdout.len());
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
