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
