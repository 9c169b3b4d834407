//! WASI 0.3 components through the library: refused by a policy that does
//! not run component-model async, called like any other where it does.

use runtime::{HostPolicy, Runtime, Val};

use crate::{FOUR_MIB, TestResult, manifest, tokio};

fn p3_command() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/guests/rust-p3-command.wasm")
}

#[test]
fn a_policy_without_component_model_async_refuses_a_p3_component_naming_the_key() -> TestResult {
    let runtime = Runtime::builder().build()?;
    let error = runtime
        .load_file(p3_command(), &manifest(FOUR_MIB, "")?, ".")
        .err()
        .ok_or("a p3 component loaded without component-model async")?;
    assert_eq!(error.kind(), "component-model-async-disabled", "{error}");
    let help = miette::Diagnostic::help(&error).map(|help| help.to_string()).unwrap_or_default();
    assert!(help.contains("component-model-async = true"), "{help}");
    Ok(())
}

#[test]
fn a_p3_command_s_async_run_is_called_with_its_arguments_and_output_captured() -> TestResult {
    use runtime::wasi::InstanceWasi;
    let policy = HostPolicy::builder().component_model_async(true).build()?;
    let runtime = Runtime::builder().policy(policy).build()?;
    let component = runtime.load_file(p3_command(), &manifest(FOUR_MIB, "[wasi]\nstdio = \"capture\"")?, ".")?;
    let component = component.with_instance_wasi(&InstanceWasi::new().args(["args", "sleep:5"]))?;
    tokio()?.block_on(async {
        let outcome = component.call_async("wasi:cli/run@0.3.0#run", &[]).await?;
        assert_eq!(outcome.results, [Val::Result(Ok(None))]);
        assert_eq!(outcome.report.stdout.as_deref(), Some("rust-p3-command.wasm args sleep:5\nslept 5\n"));
        assert!(outcome.report.host_calls > 0, "p3 calls are counted like p2 ones");
        Ok(())
    })
}
