//! The compile caches: hit, miss, corruption and entries of another engine.

use std::path::PathBuf;

use runtime_loader::{Allocation, CacheSource, ComponentLoader, DiskCache, engine_config};
use runtime_manifest::HostPolicy;
use wasmtime::component::Component;

use crate::{TestResult, component_wat, engine};

fn cache_dir(name: &str) -> Result<PathBuf, std::io::Error> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cache-{name}"));
    match std::fs::symlink_metadata(&dir) {
        Ok(metadata) if metadata.is_dir() => std::fs::remove_dir_all(&dir)?,
        Ok(_) => std::fs::remove_file(&dir)?,
        Err(_) => {}
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
    let hash = runtime_loader::ContentHash::of(&wat::parse_str(&source)?);
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

/// Bytes of `.cwasm` entries in `dir`.
fn entry_bytes(dir: &PathBuf) -> Result<u64, std::io::Error> {
    let mut total = 0;
    for item in std::fs::read_dir(dir)? {
        let item = item?;
        if item.path().extension().is_some_and(|ext| ext == "cwasm") {
            total += item.metadata()?.len();
        }
    }
    Ok(total)
}

#[test]
fn the_memory_cache_keeps_within_its_budget_dropping_the_least_recently_used() -> TestResult {
    let one = ComponentLoader::new(engine().clone());
    one.load_bytes(wat("budget probe").as_bytes())?;
    let size = one.memory_cache_bytes();
    assert!(size > 0);
    // Room for two components of this size, not three.
    let loader = ComponentLoader::new(engine().clone()).with_memory_cache_budget(size * 2 + size / 2);
    // Tags of different lengths: the tag's length is what the component returns.
    let (a, b, c) = (wat("budget a"), wat("budget bb"), wat("budget ccc"));
    loader.load_bytes(a.as_bytes())?;
    loader.load_bytes(b.as_bytes())?;
    assert_eq!(loader.load_bytes(a.as_bytes())?.source, CacheSource::Memory, "a is now the most recent");
    loader.load_bytes(c.as_bytes())?;
    assert!(loader.memory_cache_bytes() <= size * 2 + size / 2);
    assert_eq!(loader.load_bytes(a.as_bytes())?.source, CacheSource::Memory);
    assert_eq!(loader.load_bytes(c.as_bytes())?.source, CacheSource::Memory);
    assert_eq!(loader.load_bytes(b.as_bytes())?.source, CacheSource::Compiled, "b was the least recently used");
    Ok(())
}

#[test]
fn the_disk_cache_keeps_within_its_budget_removing_the_oldest_entries() -> TestResult {
    let dir = cache_dir("disk-budget")?;
    disk_loader(&dir).load_bytes(wat("disk budget probe").as_bytes())?;
    let size = entry_bytes(&dir)?;
    std::fs::remove_dir_all(&dir)?;
    let budget = size * 2 + size / 2;
    let loader = || ComponentLoader::new(engine().clone()).with_disk_cache_budget(&dir, budget);
    let written = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    for (age, tag) in ["disk budget a", "disk budget bb", "disk budget ccc", "disk budget dddd"].into_iter().enumerate()
    {
        let compiled = loader().load_bytes(wat(tag).as_bytes())?;
        // Entries are ordered by mtime, whose clock ticks coarsely: give
        // each a distinct one instead of waiting.
        let entry = loader().disk_cache().ok_or("disk cache")?.entry_path(compiled.hash);
        std::fs::File::options()
            .write(true)
            .open(&entry)?
            .set_modified(written + std::time::Duration::from_secs(age as u64))?;
        assert!(entry_bytes(&dir)? <= budget, "{} bytes of entries, budget {budget}", entry_bytes(&dir)?);
    }
    assert_eq!(loader().load_bytes(wat("disk budget dddd").as_bytes())?.source, CacheSource::Disk);
    assert_eq!(loader().load_bytes(wat("disk budget a").as_bytes())?.source, CacheSource::Compiled, "a was oldest");
    Ok(())
}

#[test]
fn a_settled_entry_is_stamped_and_any_later_write_to_it_is_verified_again() -> TestResult {
    let dir = cache_dir("stamp")?;
    let source = wat("stamp");
    let compiled = disk_loader(&dir).load_bytes(source.as_bytes())?;
    let entry = disk_loader(&dir).disk_cache().ok_or("disk cache")?.entry_path(compiled.hash);
    let stamp = entry.with_extension("verified");
    // A fresh entry is verified in full and not stamped: its ctime may still
    // share a clock tick with a write to come.
    assert_eq!(disk_loader(&dir).load_bytes(source.as_bytes())?.source, CacheSource::Disk);
    assert!(!stamp.exists());
    #[expect(clippy::disallowed_methods, reason = "a ctime cannot be set back: the entry must really age a second")]
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    assert_eq!(disk_loader(&dir).load_bytes(source.as_bytes())?.source, CacheSource::Disk);
    assert!(stamp.exists(), "a settled entry that passed verification is stamped");
    assert_eq!(disk_loader(&dir).load_bytes(source.as_bytes())?.source, CacheSource::Disk);
    // Corrupt it in place, keeping its size: the stamp no longer matches.
    let mut bytes = std::fs::read(&entry)?;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&entry, &bytes)?;
    assert_eq!(disk_loader(&dir).load_bytes(source.as_bytes())?.source, CacheSource::Compiled);
    assert_eq!(run(&disk_loader(&dir).load_bytes(source.as_bytes())?.component)?, "stamp".len() as u32);
    Ok(())
}

#[test]
fn a_settled_input_file_is_served_by_its_recorded_hash_until_it_changes() -> TestResult {
    let dir = cache_dir("input-stamp")?;
    std::fs::create_dir_all(&dir)?;
    let input = dir.join("guest.wat");
    std::fs::write(&input, wat("input stamp"))?;
    assert_eq!(disk_loader(&dir).load_file(&input)?.source, CacheSource::Compiled);
    #[expect(clippy::disallowed_methods, reason = "a ctime cannot be set back: the files must really age a second")]
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    assert_eq!(disk_loader(&dir).load_file(&input)?.source, CacheSource::Disk);
    let stamps = std::fs::read_dir(&dir)?
        .filter_map(Result::ok)
        .filter(|item| item.file_name().to_string_lossy().starts_with("input-"))
        .count();
    assert_eq!(stamps, 1, "the settled input's hash is recorded");
    let served = disk_loader(&dir).load_file(&input)?;
    assert_eq!(served.source, CacheSource::Disk);
    assert_eq!(run(&served.component)?, "input stamp".len() as u32);
    // A new version of the file is read and compiled, never served the old code.
    std::fs::write(&input, wat("input stamp, changed"))?;
    let changed = disk_loader(&dir).load_file(&input)?;
    assert_eq!(changed.source, CacheSource::Compiled);
    assert_eq!(run(&changed.component)?, "input stamp, changed".len() as u32);
    Ok(())
}

/// Two components in one cache whose `run` exports return different values,
/// each compiled to disk; their entry paths.
fn two_entries(dir: &PathBuf, a: &str, b: &str) -> Result<(PathBuf, PathBuf), Box<dyn std::error::Error>> {
    let cache = disk_loader(dir);
    let first = cache.load_bytes(a.as_bytes())?;
    let second = cache.load_bytes(b.as_bytes())?;
    let disk = cache.disk_cache().ok_or("disk cache")?;
    Ok((disk.entry_path(first.hash), disk.entry_path(second.hash)))
}

/// Loads `source` through a new loader of `dir`: where it came from and what `run` returns.
fn load_and_run(dir: &PathBuf, source: &str) -> Result<(CacheSource, u32), Box<dyn std::error::Error>> {
    let loaded = disk_loader(dir).load_bytes(source.as_bytes())?;
    Ok((loaded.source, run(&loaded.component)?))
}

#[test]
fn a_swapped_entry_is_refused_and_never_runs_the_other_components_code() -> TestResult {
    let dir = cache_dir("swapped")?;
    let (a, b) = (wat("swap a"), wat("swap bbbbbbbb"));
    let (entry_a, entry_b) = two_entries(&dir, &a, &b)?;
    let moved = dir.join("moved");
    std::fs::rename(&entry_a, &moved)?;
    std::fs::rename(&entry_b, &entry_a)?;
    std::fs::rename(&moved, &entry_b)?;
    assert_eq!(load_and_run(&dir, &a)?, (CacheSource::Compiled, "swap a".len() as u32));
    assert_eq!(load_and_run(&dir, &b)?, (CacheSource::Compiled, "swap bbbbbbbb".len() as u32));
    // Recompiled into place: the next load is a hit again.
    assert_eq!(load_and_run(&dir, &a)?, (CacheSource::Disk, "swap a".len() as u32));
    Ok(())
}

#[test]
fn an_entry_linked_to_another_is_refused() -> TestResult {
    let dir = cache_dir("linked")?;
    let (a, b) = (wat("link a"), wat("link bbbbbbbb"));
    let (entry_a, entry_b) = two_entries(&dir, &a, &b)?;
    std::fs::remove_file(&entry_a)?;
    std::os::unix::fs::symlink(&entry_b, &entry_a)?;
    assert_eq!(load_and_run(&dir, &a)?, (CacheSource::Compiled, "link a".len() as u32));
    assert!(!std::fs::symlink_metadata(&entry_a)?.is_symlink(), "the link was replaced, not followed");
    assert_eq!(load_and_run(&dir, &b)?, (CacheSource::Disk, "link bbbbbbbb".len() as u32), "b's entry untouched");
    std::fs::remove_file(&entry_a)?;
    std::fs::hard_link(&entry_b, &entry_a)?;
    assert_eq!(load_and_run(&dir, &a)?, (CacheSource::Compiled, "link a".len() as u32));
    assert_eq!(load_and_run(&dir, &b)?, (CacheSource::Disk, "link bbbbbbbb".len() as u32));
    Ok(())
}

#[test]
fn a_fifo_or_a_device_in_place_of_an_entry_is_refused_at_once() -> TestResult {
    let dir = cache_dir("fifo")?;
    let source = wat("fifo");
    let (entry, _) = two_entries(&dir, &source, &wat("fifo other"))?;
    std::fs::remove_file(&entry)?;
    rustix::fs::mknodat(rustix::fs::CWD, &entry, rustix::fs::FileType::Fifo, 0o600.into(), 0)?;
    let started = std::time::Instant::now();
    assert_eq!(load_and_run(&dir, &source)?, (CacheSource::Compiled, "fifo".len() as u32));
    std::fs::remove_file(&entry)?;
    std::os::unix::fs::symlink("/dev/zero", &entry)?;
    assert_eq!(load_and_run(&dir, &source)?, (CacheSource::Compiled, "fifo".len() as u32));
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "took {:?}", started.elapsed());
    Ok(())
}

#[test]
fn writes_replace_planted_links_and_never_write_through_them() -> TestResult {
    let dir = cache_dir("planted")?;
    let outside = cache_dir("planted-outside")?;
    std::fs::create_dir_all(&outside)?;
    let source = wat("planted");
    let hash = runtime_loader::ContentHash::of(&wat::parse_str(&source)?);
    let loader = disk_loader(&dir);
    let entry = loader.disk_cache().ok_or("disk cache")?.entry_path(hash);
    std::fs::create_dir_all(&dir)?;
    let victim = outside.join("victim");
    std::fs::write(&victim, "precious")?;
    std::os::unix::fs::symlink(&victim, &entry)?;
    std::os::unix::fs::symlink(&victim, entry.with_extension("verified"))?;
    assert_eq!(loader.load_bytes(source.as_bytes())?.source, CacheSource::Compiled);
    assert_eq!(std::fs::read_to_string(&victim)?, "precious");
    assert!(std::fs::symlink_metadata(&entry)?.is_file());
    Ok(())
}

#[test]
fn an_entry_of_another_user_is_refused() -> TestResult {
    if rustix::process::geteuid().as_raw() != 0 {
        return Ok(()); // only root can give a file away
    }
    let dir = cache_dir("other-user")?;
    let source = wat("other user");
    let (entry, _) = two_entries(&dir, &source, &wat("other user 2"))?;
    rustix::fs::chown(&entry, Some(rustix::fs::Uid::from_raw(65534)), None)?;
    assert_eq!(load_and_run(&dir, &source)?.0, CacheSource::Compiled);
    Ok(())
}

#[test]
fn an_unsafe_or_unusable_cache_directory_is_refused_by_name() -> TestResult {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = cache_dir("insecure")?;
    std::fs::create_dir_all(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))?;
    let error = runtime_loader::check_cache_dir(&dir).err().ok_or("a world-writable directory was accepted")?;
    assert_eq!(error.kind(), "io");
    assert!(error.to_string().contains(&dir.display().to_string()), "{error}");
    assert!(error.to_string().contains("other users may write"), "{error}");
    // Nothing is written into a refused directory.
    let source = wat("insecure");
    assert_eq!(disk_loader(&dir).load_bytes(source.as_bytes())?.source, CacheSource::Compiled);
    assert_eq!(std::fs::read_dir(&dir)?.count(), 0);
    // With the sticky bit, as /tmp: other users cannot replace this user's files.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777))?;
    runtime_loader::check_cache_dir(&dir)?;

    let file = cache_dir("a-file")?;
    std::fs::write(&file, "")?;
    let error = runtime_loader::check_cache_dir(&file).err().ok_or("a file was accepted")?;
    assert!(error.to_string().contains("not a directory"), "{error}");
    if rustix::process::geteuid().as_raw() == 0 {
        let theirs = cache_dir("theirs")?;
        std::fs::create_dir_all(&theirs)?;
        rustix::fs::chown(&theirs, Some(rustix::fs::Uid::from_raw(65534)), None)?;
        let error = runtime_loader::check_cache_dir(&theirs).err().ok_or("another user's directory was accepted")?;
        assert!(error.to_string().contains("owned by user 65534"), "{error}");
    }
    Ok(())
}

#[test]
fn stale_temporaries_are_removed_when_a_cache_is_opened() -> TestResult {
    let dir = cache_dir("stale")?;
    std::fs::create_dir_all(&dir)?;
    let aged = std::time::SystemTime::now() - runtime_loader::STALE_TEMPORARY - std::time::Duration::from_secs(60);
    for name in [".tmp-old", ".compile-old.wasm"] {
        std::fs::File::create(dir.join(name))?.set_modified(aged)?;
    }
    std::fs::write(dir.join(".tmp-fresh"), "")?;
    runtime_loader::check_cache_dir(&dir)?;
    let mut left: Vec<String> =
        std::fs::read_dir(&dir)?.filter_map(Result::ok).map(|i| i.file_name().to_string_lossy().into_owned()).collect();
    left.sort();
    assert_eq!(left, [".tmp-fresh"]);
    Ok(())
}

#[test]
fn a_component_file_is_read_up_to_the_cap_and_a_fifo_does_not_block() -> TestResult {
    let loader = ComponentLoader::new(engine().clone()).with_max_bytes(1 << 20);
    let started = std::time::Instant::now();
    let error = loader.read_file("/dev/zero").err().ok_or("/dev/zero was read")?;
    assert_eq!(error.kind(), "too-large");
    let dir = cache_dir("input-fifo")?;
    std::fs::create_dir_all(&dir)?;
    let fifo = dir.join("guest.wasm");
    rustix::fs::mknodat(rustix::fs::CWD, &fifo, rustix::fs::FileType::Fifo, 0o600.into(), 0)?;
    assert!(loader.load_file(&fifo).is_err());
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "took {:?}", started.elapsed());
    Ok(())
}

/// A loader whose compile worker is the shell script `script` (the
/// worker's arguments follow as `$1`...), with a 2 s compile-time limit.
fn scripted_loader(dir: &PathBuf, script: &str) -> Result<ComponentLoader, Box<dyn std::error::Error>> {
    let policy = HostPolicy::parse("policy.toml", "[compile]\nmax-compile-time = \"2s\"\n")?;
    let engine = runtime_loader::RuntimeEngine::new(policy, Allocation::OnDemand)?;
    let worker = runtime_loader::CompileWorker::new("/bin/sh", ["-c", script, "worker"]);
    Ok(ComponentLoader::new(engine).with_disk_cache(dir).with_compile_worker(worker))
}

/// How a load through a worker running `script` failed: its kind and message.
fn worker_failure(name: &str, script: &str) -> Result<(String, String), Box<dyn std::error::Error>> {
    let dir = cache_dir(name)?;
    let error =
        scripted_loader(&dir, script)?.load_bytes(wat(name).as_bytes()).err().ok_or("the scripted worker compiled")?;
    // Nothing is left behind in the cache but what a check made.
    let left: Vec<_> = std::fs::read_dir(&dir)?.filter_map(Result::ok).map(|item| item.file_name()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    Ok((error.kind().to_owned(), error.to_string()))
}

#[test]
fn a_worker_killed_from_outside_is_reported_as_killed_not_as_a_limit() -> TestResult {
    let (kind, message) = worker_failure("worker-killed", "kill -KILL $$")?;
    assert_eq!(kind, "compile-worker-failed", "{message}");
    assert!(message.contains("signal 9 (SIGKILL)"), "{message}");
    let (kind, message) = worker_failure("worker-segv", "kill -SEGV $$")?;
    assert_eq!(kind, "compile-worker-failed", "{message}");
    assert!(message.contains("crashed") && message.contains("signal 11"), "{message}");
    let (kind, message) = worker_failure("worker-exit", "echo 'thread main panicked' >&2; exit 101")?;
    assert_eq!(kind, "compile-worker-failed", "{message}");
    assert!(message.contains("panicked"), "{message}");
    Ok(())
}

#[test]
fn a_worker_at_a_limit_is_reported_as_that_limit() -> TestResult {
    let (kind, message) =
        worker_failure("worker-memory", "echo 'memory allocation of 1048576 bytes failed' >&2; kill -ABRT $$")?;
    assert_eq!(kind, "compile-limit-exceeded", "{message}");
    assert!(message.contains("max-compile-memory"), "{message}");
    // SIGXCPU after the CPU limit could have been used up (2 s on every core)...
    let (kind, message) = worker_failure("worker-cpu", "sleep 1.9; kill -XCPU $$")?;
    assert_eq!(kind, "compile-limit-exceeded", "{message}");
    assert!(message.contains("max-compile-time") && message.contains("CPU"), "{message}");
    // ...and at once, which only a signal from elsewhere does.
    let (kind, message) = worker_failure("worker-xcpu-early", "kill -XCPU $$")?;
    assert_eq!(kind, "compile-worker-failed", "{message}");
    assert!(message.contains("signal 24 (SIGXCPU)"), "{message}");
    let (kind, message) = worker_failure("worker-wall", "exec sleep 30")?;
    assert_eq!(kind, "compile-limit-exceeded", "{message}");
    assert!(message.contains("max-compile-time") && message.contains("wall"), "{message}");
    // The component's own compile error stays the component's.
    let (kind, message) = worker_failure("worker-invalid", "echo 'invalid input: type mismatch' >&2; exit 2")?;
    assert_eq!((kind.as_str(), message.contains("type mismatch")), ("compile-failed", true), "{message}");
    Ok(())
}

#[test]
fn at_most_one_worker_per_core_runs_at_once() -> TestResult {
    let cores = std::thread::available_parallelism()?.get();
    let dir = cache_dir("worker-slots")?;
    std::fs::create_dir_all(&dir)?;
    let log = dir.join("log");
    // Each worker logs its start and end around a short wait, then fails.
    let script = format!("echo start >> {0}; sleep 0.3; echo end >> {0}; exit 3", log.display());
    let loader = scripted_loader(&dir.join("cache"), &script)?;
    std::thread::scope(|scope| {
        for n in 0..cores + 2 {
            let (loader, source) = (&loader, wat(&format!("slots {n}")));
            scope.spawn(move || loader.load_bytes(source.as_bytes()).err().map(|e| e.kind()));
        }
    });
    let text = std::fs::read_to_string(&log)?;
    let (mut running, mut most) = (0_usize, 0_usize);
    for line in text.lines() {
        running = if line == "start" { running + 1 } else { running.saturating_sub(1) };
        most = most.max(running);
    }
    assert_eq!(text.lines().filter(|line| *line == "start").count(), cores + 2, "{text}");
    assert!(most <= cores, "{most} workers ran at once on {cores} cores:\n{text}");
    Ok(())
}

#[test]
fn a_worker_is_given_the_hosts_disk_cache_budget() -> TestResult {
    let dir = cache_dir("worker-budget")?;
    let policy = HostPolicy::parse("policy.toml", "[compile]\nmax-compile-time = \"2s\"\n")?;
    let engine = runtime_loader::RuntimeEngine::new(policy, Allocation::OnDemand)?;
    // The script fails one way when the budget arrived, another when not.
    let script = format!("test \"${}\" = 123456 && exit 3; exit 4", runtime_loader::CACHE_BUDGET_ENV);
    let worker = runtime_loader::CompileWorker::new("/bin/sh", ["-c", script.as_str(), "worker"]);
    let loader = ComponentLoader::new(engine).with_disk_cache_budget(&dir, 123_456).with_compile_worker(worker);
    let error = loader.load_bytes(wat("worker budget").as_bytes()).err().ok_or("the script compiled")?;
    assert!(error.to_string().contains("exit status: 3"), "{error}");
    Ok(())
}
