//! The compile caches: hit, miss, corruption and entries of another engine.

use std::path::PathBuf;

use runtime_core::{Allocation, CacheSource, ComponentLoader, DiskCache, engine_config};
use runtime_manifest::HostPolicy;
use wasmtime::component::Component;

use crate::{TestResult, component_wat, engine};

fn cache_dir(name: &str) -> Result<PathBuf, std::io::Error> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cache-{name}"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(dir)
}

fn wat(tag: &str) -> String {
    // Each test compiles its own component so that tests share no entries.
    component_wat(
        &format!(r#"(module (func (export "run") (result i32) (i32.const {})))"#, tag.len()),
        &[("run", "(result u32)")],
    ) + &format!(";; {tag}")
}

fn disk_loader(dir: &PathBuf) -> ComponentLoader {
    ComponentLoader::new(engine().clone()).with_disk_cache(dir)
}

#[test]
fn memory_cache_hits_after_a_miss() -> TestResult {
    let loader = ComponentLoader::new(engine().clone());
    let source = wat("memory");
    assert_eq!(loader.load_bytes(source.as_bytes())?.source, CacheSource::Compiled);
    assert_eq!(loader.load_bytes(source.as_bytes())?.source, CacheSource::Memory);
    Ok(())
}

#[test]
fn evicting_from_memory_falls_back_to_the_disk_and_keeps_loaded_components_working() -> TestResult {
    let dir = cache_dir("evict")?;
    let loader = disk_loader(&dir);
    let (one, two) = (wat("evict one"), wat("evict two"));
    let first = loader.load_bytes(one.as_bytes())?;
    loader.load_bytes(two.as_bytes())?;
    loader.evict_from_memory(Some(first.hash));
    assert_eq!(loader.load_bytes(one.as_bytes())?.source, CacheSource::Disk);
    assert_eq!(loader.load_bytes(two.as_bytes())?.source, CacheSource::Memory, "only `one` was evicted");
    loader.evict_from_memory(None);
    assert_eq!(loader.load_bytes(two.as_bytes())?.source, CacheSource::Disk);
    // The evicted component's compiled code lives on while it is in use.
    assert_eq!(run(&first.component)?, "evict one".len() as u32);
    Ok(())
}

/// What the `run` export of a component made by [`wat`] returns.
fn run(component: &Component) -> Result<u32, wasmtime::Error> {
    let mut store = wasmtime::Store::new(engine().engine(), ());
    store.set_fuel(1_000_000)?;
    store.set_epoch_deadline(1_000);
    let instance = wasmtime::component::Linker::new(engine().engine()).instantiate(&mut store, component)?;
    let run = instance.get_typed_func::<(), (u32,)>(&mut store, "run")?;
    Ok(run.call(&mut store, ())?.0)
}

#[test]
fn disk_cache_serves_a_new_loader() -> TestResult {
    let dir = cache_dir("hit")?;
    let source = wat("disk hit");
    let first = disk_loader(&dir).load_bytes(source.as_bytes())?;
    assert_eq!(first.source, CacheSource::Compiled);
    let second = disk_loader(&dir).load_bytes(source.as_bytes())?;
    assert_eq!(second.source, CacheSource::Disk);
    assert_eq!(second.hash, first.hash);
    // The code wasmtime mapped from the entry runs.
    assert_eq!(run(&second.component)?, "disk hit".len() as u32);
    Ok(())
}

#[test]
fn a_corrupt_or_truncated_entry_is_ignored_and_rebuilt() -> TestResult {
    let dir = cache_dir("corrupt")?;
    let source = wat("corrupt");
    let compiled = disk_loader(&dir).load_bytes(source.as_bytes())?;
    let entry = disk_loader(&dir).disk_cache().ok_or("disk cache")?.entry_path(compiled.hash);
    let mut bytes = std::fs::read(&entry)?;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&entry, &bytes)?;
    assert_eq!(disk_loader(&dir).load_bytes(source.as_bytes())?.source, CacheSource::Compiled);
    assert_eq!(disk_loader(&dir).load_bytes(source.as_bytes())?.source, CacheSource::Disk);

    std::fs::write(&entry, &bytes[..middle])?;
    assert_eq!(disk_loader(&dir).load_bytes(source.as_bytes())?.source, CacheSource::Compiled);
    assert_eq!(disk_loader(&dir).load_bytes(source.as_bytes())?.source, CacheSource::Disk);
    Ok(())
}

#[test]
fn an_entry_of_another_engine_is_not_trusted() -> TestResult {
    let dir = cache_dir("foreign")?;
    let source = wat("foreign");
    // An engine that compiles differently (no fuel checks) writes an entry...
    let mut config = engine_config(&HostPolicy::default(), Allocation::OnDemand);
    config.consume_fuel(false);
    #[expect(clippy::disallowed_methods, reason = "the test needs an engine runtime-core would never build")]
    let foreign = wasmtime::Engine::new(&config)?;
    let foreign_cache = DiskCache::new(&dir, &foreign);
    let component = Component::new(&foreign, &source)?;
    let hash = runtime_core::ContentHash::of(&wat::parse_str(&source)?);
    foreign_cache.put(hash, &component);
    let foreign_entry = foreign_cache.entry_path(hash);
    assert!(foreign_entry.exists());

    // ...which our engine neither finds under its own name nor trusts when
    // the file is copied there.
    let ours = disk_loader(&dir);
    let our_entry = ours.disk_cache().ok_or("disk cache")?.entry_path(hash);
    assert_ne!(foreign_entry, our_entry);
    std::fs::copy(&foreign_entry, &our_entry)?;
    let loaded = ours.load_bytes(source.as_bytes())?;
    assert_eq!(loaded.source, CacheSource::Compiled);
    Ok(())
}
