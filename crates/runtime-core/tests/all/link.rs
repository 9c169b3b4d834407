//! Linking a compiled component: what a missing import is called.

use crate::{GENEROUS, TestResult, load};

#[test]
fn a_missing_import_fails_at_link_naming_it() -> TestResult {
    let importer = r#"(component
      (import "example:host/log" (instance $log (export "log" (func (param "msg" string)))))
      (core module $m (func (export "run")))
      (core instance $i (instantiate $m))
      (func (export "run") (canon lift (core func $i "run"))))"#;
    let error = load(importer, GENEROUS).err().ok_or("nothing provides example:host/log")?;
    let message = error.to_string();
    assert_eq!(error.kind(), "link-failed", "{message}");
    assert!(message.contains("example:host/log"), "{message}");
    Ok(())
}
