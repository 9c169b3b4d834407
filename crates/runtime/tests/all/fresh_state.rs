//! A reused pool slot never shows a byte of the instance before it: a guest
//! writes a marker across its memory and its table and then traps, is
//! cancelled or returns and is dropped; the next instance in the same slot
//! (one slot in all) scans for anything that is not fresh.

use std::time::Duration;

use runtime::{ComponentManifest, HostPolicy, Runtime, RuntimeError, Val};

use crate::{TestResult, tokio};

/// `plant(how)`: grows memory to 16 pages and the table to 100 entries,
/// fills both with a marker, then returns (0), traps (1) or spins (2).
/// `scan()`: how many 8-byte words of memory and table entries are not
/// what a fresh instance has (zero, null).
const MARKER: &str = r#"(component
  (core module $m
    (memory 1 16)
    (table 10 100 funcref)
    (func $marker)
    (elem declare func $marker)
    (func (export "plant") (param $how i32)
      (drop (memory.grow (i32.sub (i32.const 16) (memory.size))))
      (memory.fill (i32.const 0) (i32.const 0xA5) (i32.mul (memory.size) (i32.const 65536)))
      (drop (table.grow (ref.func $marker) (i32.sub (i32.const 100) (table.size))))
      (table.fill (i32.const 0) (ref.func $marker) (table.size))
      (if (i32.eq (local.get $how) (i32.const 1)) (then unreachable))
      (if (i32.eq (local.get $how) (i32.const 2)) (then (loop $spin (br $spin)))))
    (func (export "scan") (result i32) (local $i i32) (local $found i32) (local $end i32)
      (local.set $end (i32.mul (memory.size) (i32.const 65536)))
      (block $done (loop $words
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (if (i64.ne (i64.load (local.get $i)) (i64.const 0))
          (then (local.set $found (i32.add (local.get $found) (i32.const 1)))))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $words)))
      (local.set $i (i32.const 0))
      (block $done (loop $entries
        (br_if $done (i32.ge_u (local.get $i) (table.size)))
        (if (i32.eqz (ref.is_null (table.get (local.get $i))))
          (then (local.set $found (i32.add (local.get $found) (i32.const 1)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $entries)))
      (i32.add (local.get $found) (i32.mul (i32.ne (memory.size) (i32.const 1)) (i32.const 1000000)))))
  (core instance $i (instantiate $m))
  (func (export "plant") (param "how" u32) (canon lift (core func $i "plant")))
  (func (export "scan") (result u32) (canon lift (core func $i "scan"))))"#;

const ROUNDS: u32 = 1_000;

fn rounds(copy_on_write: bool) -> TestResult {
    let policy = HostPolicy::builder().max_concurrent_instances(1).build()?;
    let runtime = Runtime::builder()
        .policy(policy)
        .unstable_engine_config(move |config| {
            config.memory_init_cow(copy_on_write);
        })
        .build()?;
    let manifest: ComponentManifest = "[component]\nname = \"marker\"\nversion = \"0.1.0\"\n\
        [resources]\nmemory = \"1MiB\"\nfuel = 100_000_000\ntimeout = \"10s\"\ntable-elements = 1000\n"
        .parse()?;
    let component = runtime.load_bytes(MARKER.as_bytes(), &manifest)?;
    tokio()?.block_on(async {
        for round in 0..ROUNDS {
            let mut planter = component.instantiate_async(()).await?;
            let how = round % 3;
            let planted = match how {
                2 => {
                    let token = planter.cancellation_token();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        token.cancel();
                    });
                    planter.call_async("plant", &[Val::U32(2)]).await
                }
                _ => planter.call_async("plant", &[Val::U32(how)]).await,
            };
            match (how, &planted) {
                (0, Ok(_)) | (1, Err(RuntimeError::Crash(_))) | (2, Err(RuntimeError::Cancelled { .. })) => {}
                _ => return Err(format!("round {round}: planting ended {planted:?}").into()),
            }
            if round == 0 {
                // The scan sees the marker where it is: every word, every entry, the grown size.
                let seen = planter.call_async("scan", &[]).await?;
                assert_eq!(seen.results, [Val::U32(16 * 65_536 / 8 + 100 + 1_000_000)]);
            }
            drop(planter);
            let mut scanner = component.instantiate_async(()).await?;
            let scan = scanner.call_async("scan", &[]).await?;
            assert_eq!(
                scan.results,
                [Val::U32(0)],
                "round {round} (copy-on-write {copy_on_write}) saw its predecessor"
            );
        }
        Ok(())
    })
}

#[test]
fn a_reused_slot_shows_nothing_of_its_predecessor_with_memory_images() -> TestResult {
    rounds(true)
}

#[test]
fn a_reused_slot_shows_nothing_of_its_predecessor_without_memory_images() -> TestResult {
    rounds(false)
}
