//! Directory grants shared by many instances in one process: one account
//! per grant, and directories pinned when the component loads.

use std::path::{Path, PathBuf};

use runtime::{ComponentManifest, LoadedComponent, RuntimeError};

use crate::TestResult;

/// The committed build of `fixtures/guests/rust-command`.
fn rust_command_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/guests/rust-command.wasm")
}

/// A fresh directory tree of this test's own under the target directory.
fn scratch(name: &str) -> std::io::Result<PathBuf> {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("grants-{name}"));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)?;
    root.canonicalize()
}

/// The command fixture with `actions` as its arguments and `dirs` as its
/// `[wasi.dirs]` lines, granted relative to `base`.
fn command(base: &Path, actions: &[&str], dirs: &str) -> Result<LoadedComponent, RuntimeError> {
    let args: Vec<String> = actions.iter().map(|a| format!("{a:?}")).collect();
    let manifest: ComponentManifest = format!(
        "[component]\nname = \"command\"\nversion = \"0.1.0\"\n\
         [resources]\nmemory = \"4MiB\"\nfuel = 1_000_000_000\ntimeout = \"20s\"\n\
         [wasi]\nargs = [{}]\nstdio = \"capture\"\n[wasi.dirs]\n{dirs}\n",
        args.join(", ")
    )
    .parse()?;
    crate::runtime().load_file(rust_command_path(), &manifest, base)
}

/// Runs the command once in a fresh instance; its captured stdout.
async fn run_once(component: &LoadedComponent) -> Result<String, RuntimeError> {
    let export = component.command_export().unwrap_or_default();
    let outcome = component.call_async(&export, &[]).await?;
    Ok(outcome.report.stdout.unwrap_or_default())
}

/// Calls `export` in sixteen fresh instances at once; their captured
/// stdouts, and the figure after `wrote` in each (the bytes it wrote).
fn sixteen_at_once(
    component: &LoadedComponent,
    export: &str,
) -> Result<(Vec<String>, Vec<u64>), Box<dyn std::error::Error>> {
    let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let outputs = tokio.block_on(async {
        let mut runs = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let (component, export) = (component.clone(), export.to_owned());
            runs.spawn(async move {
                let outcome = component.call_async(&export, &[]).await?;
                Ok::<_, RuntimeError>(outcome.report.stdout.unwrap_or_default())
            });
        }
        let mut outputs = Vec::new();
        while let Some(run) = runs.join_next().await {
            outputs.push(run.map_err(|e| e.to_string())??);
        }
        Ok::<_, Box<dyn std::error::Error>>(outputs)
    })?;
    let wrote = outputs
        .iter()
        .filter_map(|out| {
            let words = out.split("wrote ").nth(1)?.split_whitespace();
            words.map(|word| word.trim_end_matches(':')).find_map(|word| word.parse().ok())
        })
        .collect();
    Ok((outputs, wrote))
}

/// Allocated bytes (blocks) of the regular files under `dir`, as `du` counts.
fn allocated(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt as _;
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let meta = entry?.metadata()?;
        if meta.is_file() {
            total += meta.blocks() * 512;
        }
    }
    Ok(total)
}

#[test]
fn sixteen_concurrent_instances_share_one_quota() -> TestResult {
    let root = scratch("shared-quota")?;
    std::fs::create_dir(root.join("data"))?;
    let quota = "\"/data\" = { host = \"data\", mode = \"rw\", max-bytes = \"1MiB\" }";
    // Each instance writes 300,000 bytes to a file of its own: three fit in 1 MiB.
    let component = command(&root, &["fillnew:/data=300000"], quota)?;
    // The instances race for one account: together they write what fits.
    let (outputs, wrote) = sixteen_at_once(&component, &component.command_export().unwrap_or_default())?;
    assert_eq!(wrote.len(), 16, "{outputs:?}");
    let total: u64 = wrote.iter().sum();
    assert!(total > 900_000, "work under the quota succeeds: {outputs:?}");
    let disk = allocated(&root.join("data"))?;
    assert!(disk <= 1 << 20, "16 instances left {disk} bytes allocated under a 1 MiB quota: {outputs:?}");
    assert!(wrote.iter().filter(|n| **n < 300_000).count() >= 12, "the rest were refused: {outputs:?}");
    Ok(())
}

#[test]
fn a_guest_cannot_swap_what_a_loaded_grant_opens() -> TestResult {
    let root = scratch("swap")?;
    std::fs::create_dir_all(root.join("data/inner"))?;
    std::fs::create_dir_all(root.join("elsewhere"))?;
    std::fs::write(root.join("data/inner/file"), "original")?;
    std::fs::write(root.join("elsewhere/file"), "planted")?;
    let reader = command(&root, &["read:/inner/file"], "\"/inner\" = { host = \"data/inner\", mode = \"ro\" }")?;
    // A read-write grant of the parent moves `inner` away and puts a link
    // to `elsewhere` in its place.
    let swap = ["rename:/data/inner=/data/moved", "symlink:../elsewhere=/data/inner"];
    let swapper = command(&root, &swap, "\"/data\" = { host = \"data\", mode = \"rw\" }")?;
    let tokio = crate::tokio()?;
    tokio.block_on(async {
        assert_eq!(run_once(&reader).await?.trim(), "original");
        let swapped = run_once(&swapper).await?;
        assert!(swapped.contains("rename:/data/inner=/data/moved ok"), "{swapped}");
        assert!(swapped.contains("symlink:../elsewhere=/data/inner ok"), "{swapped}");
        // The loaded grant still opens the directory it pinned.
        assert_eq!(run_once(&reader).await?.trim(), "original");
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    // Loading it anew follows no link: the path now crosses one.
    let again = command(&root, &["read:/inner/file"], "\"/inner\" = { host = \"data/inner\", mode = \"ro\" }");
    assert_eq!(again.err().map(|e| e.kind()), Some("grant-invalid"));
    Ok(())
}

/// Two actors of one component, each with its own arguments and its own
/// data directory (absolute, named by the host): neither sees the other's.
#[test]
fn each_instance_can_have_its_own_arguments_and_data_directory() -> TestResult {
    use runtime::manifest::{DirGrant, DirMode};
    use runtime::wasi::InstanceWasi;
    let root = scratch("instance-wasi")?;
    let component = command(&root, &["args"], "")?;
    let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    for actor in ["a", "b"] {
        let dir = root.join(actor);
        std::fs::create_dir(&dir)?;
        let own = InstanceWasi::new()
            .args([format!("write:/data/{actor}.txt"), "ls:/data".to_owned()])
            .dir("/data", DirGrant::new(dir.to_string_lossy(), DirMode::ReadWrite)?);
        let actor_component = component.with_instance_wasi(&own)?;
        let stdout = tokio.block_on(run_once(&actor_component))?;
        assert!(stdout.contains(&format!("write:/data/{actor}.txt ok")), "{stdout}");
        assert!(
            stdout.lines().any(|line| line.trim() == format!("{actor}.txt"))
                || stdout.contains(&format!("{actor}.txt")),
            "{stdout}"
        );
        assert!(dir.join(format!("{actor}.txt")).is_file());
    }
    assert!(!root.join("a/b.txt").exists() && !root.join("b/a.txt").exists(), "each wrote only its own");
    // The component itself is unchanged: no directory, its own arguments.
    let plain = tokio.block_on(run_once(&component))?;
    assert_eq!(plain.trim(), "rust-command.wasm args", "{plain}");
    // The policy's symlink rule still holds for a directory the host names.
    std::os::unix::fs::symlink(root.join("a"), root.join("link"))?;
    let linked =
        InstanceWasi::new().dir("/data", DirGrant::new(root.join("link").to_string_lossy(), DirMode::ReadWrite)?);
    let refused = component.with_instance_wasi(&linked).err().ok_or("a symlinked directory was granted")?;
    assert!(refused.to_string().contains("symlink"), "{refused}");
    Ok(())
}

#[test]
fn sixteen_concurrent_p3_instances_appending_to_one_file_share_one_quota() -> TestResult {
    let root = scratch("shared-quota-p3")?;
    std::fs::create_dir(root.join("data"))?;
    let policy = runtime::HostPolicy::builder().component_model_async(true).build()?;
    let runtime = runtime::Runtime::builder().policy(policy).build()?;
    let manifest: ComponentManifest = "[component]\nname = \"p3-appender\"\nversion = \"0.1.0\"\n\
         [resources]\nmemory = \"4MiB\"\nfuel = 1_000_000_000\ntimeout = \"20s\"\n\
         [wasi]\nargs = [\"append:shared:300000\"]\nstdio = \"capture\"\n\
         [wasi.dirs]\n\"/data\" = { host = \"data\", mode = \"rw\", max-bytes = \"1MiB\" }\n"
        .parse()?;
    let wasm = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/guests/rust-p3-command.wasm");
    let component = runtime.load_file(wasm, &manifest, &root)?;
    // Sixteen instances append 300,000 bytes each to one file, at once.
    let (outputs, wrote) = sixteen_at_once(&component, "wasi:cli/run@0.3.0#run")?;
    assert_eq!(wrote.len(), 16, "{outputs:?}");
    let total: u64 = wrote.iter().sum();
    let length = std::fs::metadata(root.join("data/shared"))?.len();
    let disk = allocated(&root.join("data"))?;
    assert!(
        disk <= 1 << 20,
        "16 p3 instances left {disk} bytes allocated ({length} long) under a 1 MiB quota: {outputs:?}"
    );
    assert!(total > 900_000, "work under the quota succeeds: {outputs:?}");
    assert!(
        total <= 1 << 20,
        "the instances were told they wrote {total} bytes under a 1 MiB quota ({length} long): {outputs:?}"
    );
    assert_eq!(length, total, "every byte an instance was told it wrote is in the file, and no other");
    assert!(wrote.iter().filter(|n| **n < 300_000).count() >= 12, "the rest were refused: {outputs:?}");
    Ok(())
}
