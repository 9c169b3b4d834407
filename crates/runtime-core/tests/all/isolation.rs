//! Instances never see each other's memory, live or after a pool slot is reused.

use wasmtime::component::Val;

use crate::{GENEROUS, TestResult, component_wat, load};

const SECRET: u32 = 0xdead_beef;

fn vault() -> Result<runtime_core::LoadedComponent, runtime_core::RuntimeError> {
    let core = r#"(module
      (memory 1)
      (func (export "write") (param i32) (i32.store (i32.const 1024) (local.get 0)))
      (func (export "read") (result i32) (i32.load (i32.const 1024))))"#;
    load(&component_wat(core, &[("write", r#"(param "secret" u32)"#), ("read", "(result u32)")]), GENEROUS)
}

#[test]
fn a_reused_pool_slot_reads_zeros_where_the_previous_instance_wrote() -> TestResult {
    let component = vault()?;
    for _ in 0..50 {
        component.call("write", &[Val::U32(SECRET)])?;
        assert_eq!(component.call("read", &[])?.results, [Val::U32(0)]);
    }
    Ok(())
}

#[test]
fn two_live_instances_cannot_see_each_other() -> TestResult {
    let component = vault()?;
    let mut first = component.instantiate()?;
    let mut second = component.instantiate()?;
    first.call("write", &[Val::U32(SECRET)])?;
    assert_eq!(second.call("read", &[])?.results, [Val::U32(0)]);
    assert_eq!(first.call("read", &[])?.results, [Val::U32(SECRET)]);
    Ok(())
}
