//! The Rust guest (wit-bindgen, regex, serde_json) under limits.

use runtime::{CrashKind, Val};

use crate::{FOUR_MIB, TestResult, rust_guest, tokio};

fn string(text: &str) -> Val {
    Val::String(text.into())
}

#[test]
fn strings_lists_records_and_results_cross_the_boundary() -> TestResult {
    tokio()?.block_on(async {
        let guest = rust_guest(FOUR_MIB, "")?;
        let call = |export: &'static str, args: Vec<Val>| {
            let guest = guest.clone();
            async move { guest.call_async(export, &args).await.map(|outcome| outcome.results) }
        };
        assert_eq!(call("greet", vec![string("world")]).await?, [string("hello, world!")]);
        assert_eq!(
            call("count-matches", vec![string("[0-9]+"), string("a1 b22 c333")]).await?,
            [Val::Result(Ok(Some(Box::new(Val::U32(3)))))]
        );
        let bad_regex = call("count-matches", vec![string("(unclosed"), string("x")]).await?;
        assert!(matches!(&bad_regex[..], [Val::Result(Err(Some(message)))] if matches!(**message, Val::String(_))));
        let person = call("parse-person", vec![string(r#"{"name": "Ada", "age": 36}"#)]).await?;
        assert_eq!(
            person,
            [Val::Result(Ok(Some(Box::new(Val::Record(vec![
                ("name".into(), string("Ada")),
                ("age".into(), Val::U32(36)),
            ])))))]
        );
        let list = Val::List(vec![Val::S64(1), Val::S64(2), Val::S64(3)]);
        assert_eq!(call("sum", vec![list]).await?, [Val::Option(Some(Box::new(Val::S64(6))))]);
        let overflow = Val::List(vec![Val::S64(i64::MAX), Val::S64(1)]);
        assert_eq!(call("sum", vec![overflow]).await?, [Val::Option(None)]);
        Ok(())
    })
}

#[test]
fn allocation_past_the_budget_is_memory_limit_exceeded_not_unreachable() -> TestResult {
    tokio()?.block_on(async {
        let guest = rust_guest(FOUR_MIB, "")?;
        let fits = guest.call_async("allocate", &[Val::U64(1 << 20)]).await?;
        assert_eq!(fits.results, [Val::U64(1 << 20)]);
        let error = guest.call_async("allocate", &[Val::U64(16 << 20)]).await.err().ok_or("16MiB")?;
        let crash = error.crash().ok_or("a crash")?;
        assert_eq!(crash.kind, CrashKind::MemoryLimitExceeded);
        assert_eq!(crash.detail.as_deref(), Some("unreachable"));
        assert!(crash.report.peak_memory_bytes <= 4 << 20);
        Ok(())
    })
}

#[test]
fn a_long_loop_runs_out_of_fuel_and_a_short_one_finishes() -> TestResult {
    tokio()?.block_on(async {
        let guest = rust_guest(FOUR_MIB, "")?;
        guest.call_async("spin", &[Val::U64(1_000)]).await?;
        let error = guest.call_async("spin", &[Val::U64(1 << 40)]).await.err().ok_or("spin")?;
        assert_eq!(error.crash().map(|c| c.kind), Some(CrashKind::OutOfFuel));
        Ok(())
    })
}

#[test]
fn a_one_mib_budget_refuses_a_rust_guest_at_load_naming_both_figures() -> TestResult {
    // Its memory declares more than 1 MiB at its minimum: no instance could
    // start, which is the load's error (no guest code runs), naming the fix.
    let error = rust_guest("memory = \"1MiB\"\nfuel = 1_000_000\ntimeout = \"1s\"", "").err().ok_or("loaded")?;
    assert_eq!(error.kind(), "memory-limit-exceeded", "{error}");
    assert!(error.to_string().contains("1048576 bytes"), "the budget: {error}");
    let help = miette::Diagnostic::help(&error).map(|help| help.to_string()).unwrap_or_default();
    assert!(help.contains("at least 2MiB") && help.contains("--memory"), "the fix: {help}");
    // The next budget up runs it.
    tokio()?.block_on(async {
        let guest = rust_guest("memory = \"2MiB\"\nfuel = 100_000_000\ntimeout = \"1s\"", "")?;
        guest.call_async("greet", &[string("x")]).await?;
        Ok(())
    })
}
