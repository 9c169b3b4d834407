//! The command world and capability grants: `run APP.wasm [grants] -- ARGS`
//! runs `wasi:cli/run` with the exit status as the process's, and every grant
//! is denied unless given.

use std::path::{Path, PathBuf};

use crate::{TestResult, wasm_runtime};

const LIMITS: &[&str] = &["--memory", "4MiB", "--fuel", "1_000_000_000", "--timeout", "10s"];

fn command() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/guests/rust-command.wasm").to_owned()
}

/// Runs the command fixture with `flags` and then `-- actions`.
fn run_command(flags: &[&str], actions: &[&str]) -> Result<(i32, String, String), std::io::Error> {
    run_fixture(&command(), &[LIMITS, flags].concat(), actions)
}

/// `wasm-runtime run WASM FLAGS -- ACTIONS`: its exit code, stdout and stderr.
pub(crate) fn run_fixture(
    wasm: &str,
    flags: &[&str],
    actions: &[&str],
) -> Result<(i32, String, String), std::io::Error> {
    let mut args = vec!["run", wasm];
    args.extend_from_slice(flags);
    args.push("--");
    args.extend_from_slice(actions);
    let output = wasm_runtime(&args)?;
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    Ok((output.status.code().unwrap_or(-1), text(&output.stdout), text(&output.stderr)))
}

/// A scratch tree: `data/a.txt`, a secret beside `data`, and a symlink in
/// `data` pointing at the secret.
pub(crate) fn tree(name: &str) -> Result<PathBuf, std::io::Error> {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("grants-{name}"));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("data"))?;
    std::fs::write(root.join("data/a.txt"), "hello data")?;
    std::fs::write(root.join("secret.txt"), "the secret")?;
    #[cfg(unix)]
    std::os::unix::fs::symlink(root.join("secret.txt"), root.join("data/link"))?;
    Ok(root)
}

pub(crate) fn dir_flag(root: &Path, guest: &str) -> String {
    format!("{}::{guest}", root.join("data").display())
}

#[test]
fn a_command_gets_its_arguments_and_its_exit_status_is_the_process_s() -> TestResult {
    let (code, stdout, _) = run_command(&[], &["args", "exit:0"])?;
    assert_eq!(code, 0);
    assert_eq!(stdout.lines().next(), Some("rust-command.wasm args exit:0"), "argv[0] is the file's name");
    // exit(err): wasmtime-wasi 48 links no exit-with-code, so any failure status is 1.
    let (code, stdout, _) = run_command(&[], &["args", "exit:7"])?;
    assert_eq!((code, stdout.lines().count()), (1, 1));
    // Returning from main is exit(ok).
    assert_eq!(run_command(&[], &[])?.0, 0);
    Ok(())
}

#[test]
fn json_adds_the_exit_code_and_keeps_stdout_one_object() -> TestResult {
    let (code, stdout, stderr) = run_command(&["--json"], &["args", "exit:3"])?;
    assert_eq!(code, 1);
    let body = crate::run_json(stdout.trim().as_bytes())?;
    assert_eq!(body["exit_code"], 1);
    assert_eq!(body["ok"], false);
    assert!(stderr.contains("rust-command.wasm args"), "the guest's output went to stderr: {stderr}");
    Ok(())
}

#[test]
fn environment_is_denied_unless_granted() -> TestResult {
    let (_, stdout, _) = run_command(&[], &["env:GREETING", "env:PATH"])?;
    assert_eq!(stdout, "env:GREETING unset\nenv:PATH unset\n");
    let (_, stdout, _) = run_command(&["--env", "GREETING=hi", "--env", "PATH"], &["env:GREETING", "env:PATH"])?;
    let path = std::env::var("PATH")?;
    assert_eq!(stdout, format!("GREETING=hi\nPATH={path}\n"));
    Ok(())
}

#[test]
fn stdin_is_end_of_file_unless_inherited() -> TestResult {
    let wasm = command();
    let mut args = vec!["run", wasm.as_str()];
    args.extend_from_slice(LIMITS);
    let feed = |extra: &[&str]| -> Result<String, std::io::Error> {
        use std::io::Write;
        let mut all = args.clone();
        all.extend_from_slice(extra);
        all.extend_from_slice(&["--", "stdin"]);
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wasm-runtime"))
            .args(&all)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        child.stdin.take().map(|mut input| input.write_all(b"typed in")).transpose()?;
        Ok(String::from_utf8_lossy(&child.wait_with_output()?.stdout).into_owned())
    };
    assert_eq!(feed(&[])?, "stdin 0 bytes: \n");
    assert_eq!(feed(&["--stdin", "inherit"])?, "stdin 8 bytes: typed in\n");
    Ok(())
}

#[test]
fn a_read_only_dir_reads_and_refuses_every_write() -> TestResult {
    let root = tree("ro")?;
    let dir = dir_flag(&root, "/data");
    let actions = [
        "read:/data/a.txt",
        "write:/data/new.txt",
        "mkdir:/data/d",
        "rm:/data/a.txt",
        "rename:/data/a.txt=/data/b.txt",
    ];
    let (code, stdout, _) = run_command(&["--dir-ro", &dir], &actions)?;
    assert_eq!(code, 0);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "hello data");
    for line in &lines[1..] {
        assert!(line.contains("denied"), "a write got through a read-only dir: {line}");
    }
    assert_eq!(std::fs::read_to_string(root.join("data/a.txt"))?, "hello data");
    assert!(!root.join("data/new.txt").exists() && !root.join("data/d").exists() && !root.join("data/b.txt").exists());
    Ok(())
}

#[test]
fn a_read_write_dir_writes_inside_only() -> TestResult {
    let root = tree("rw")?;
    let dir = dir_flag(&root, "/data");
    let actions = ["write:/data/new.txt", "write:/data/../escaped.txt", "read:/data/../secret.txt", "read:/data/link"];
    let (_, stdout, _) = run_command(&["--dir", &dir], &actions)?;
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "write:/data/new.txt ok");
    for line in &lines[1..] {
        assert!(line.contains("denied"), "`..` or a symlink left the preopen: {line}");
    }
    assert_eq!(std::fs::read_to_string(root.join("data/new.txt"))?, "written");
    assert!(!root.join("escaped.txt").exists());
    Ok(())
}

#[test]
fn no_directory_is_visible_unless_granted() -> TestResult {
    let (_, stdout, _) = run_command(&[], &["ls:/", "read:/etc/passwd", "ls:."])?;
    assert_eq!(stdout.matches("denied").count(), 3, "{stdout}");
    Ok(())
}

#[test]
fn a_manifest_dir_stays_inside_the_manifest_directory_even_through_symlinks() -> TestResult {
    let root = tree("manifest")?;
    #[cfg(unix)]
    std::os::unix::fs::symlink(&root, root.join("data/up"))?;
    let manifest = |host: &str| -> Result<PathBuf, std::io::Error> {
        let path = root.join("data/Component.toml");
        std::fs::write(
            &path,
            format!(
                "[component]\nname = \"c\"\nversion = \"0.1.0\"\n[resources]\nmemory = \"4MiB\"\nfuel = 1_000_000_000\ntimeout = \"10s\"\n[wasi.dirs]\n\"/d\" = {{ host = \"{host}\", mode = \"ro\" }}\n"
            ),
        )?;
        Ok(path)
    };
    let wasm = command();
    let run = |path: &Path| wasm_runtime(&["run", &wasm, "--manifest", &path.display().to_string(), "--", "ls:/d"]);
    // `.` is the manifest's own directory: granted.
    let inside = run(&manifest(".")?)?;
    assert_eq!(inside.status.code(), Some(0), "{}", String::from_utf8_lossy(&inside.stderr));
    assert!(String::from_utf8_lossy(&inside.stdout).contains("a.txt"));
    // `up` is a symlink to the parent: refused when loading, exit 2.
    let symlink = run(&manifest("up")?)?;
    assert_eq!(symlink.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&symlink.stderr).contains("symlink"));
    // `..` is refused by the default policy when the manifest is checked, exit 1.
    let parent = run(&manifest("..")?)?;
    assert_eq!(parent.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&parent.stderr).contains("absolute-dirs"));
    Ok(())
}

#[test]
fn sockets_are_denied_unless_the_policy_and_a_grant_allow_the_address() -> TestResult {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?.to_string();
    let action = format!("tcp:{address}");
    // Without a grant, `wasi:sockets` gives the guest nothing: its first call fails typed.
    let (code, _, stderr) = run_command(&[], &[&action])?;
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("capability-denied") && stderr.contains("wasi:sockets/"), "{stderr}");
    assert!(stderr.contains("--allow-tcp"), "the error names the grant: {stderr}");
    // The default policy refuses network grants outright.
    let (code, _, stderr) = run_command(&["--allow-tcp", &address], &[&action])?;
    assert_eq!(code, 1);
    assert!(stderr.contains("[grants] network = true"), "{stderr}");
    let policy = crate::scratch("network-policy.toml", "[grants]\nnetwork = true\n")?;
    let policy = policy.display().to_string();
    let (_, stdout, _) = run_command(&["--policy", &policy, "--allow-tcp", &address], &[&action])?;
    assert!(stdout.contains("connected"), "{stdout}");
    // Another port on the same host stays closed.
    let other = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.to_string();
    let (_, stdout, _) = run_command(&["--policy", &policy, "--allow-tcp", &address], &[&format!("tcp:{other}")])?;
    assert!(stdout.contains("denied"), "{stdout}");
    // A port wildcard opens every port of that address, a range every address in it; nothing else.
    let listening = std::net::TcpListener::bind("127.0.0.1:0")?;
    let open = format!("tcp:{}", listening.local_addr()?);
    for pattern in ["127.0.0.1:*", "127.0.0.0/8:*"] {
        let (_, stdout, _) = run_command(&["--policy", &policy, "--allow-tcp", pattern], &[&open])?;
        assert!(stdout.contains("connected"), "{pattern}: {stdout}");
    }
    let (_, stdout, _) = run_command(&["--policy", &policy, "--allow-tcp", "10.0.0.0/8:*"], &[&action])?;
    assert!(stdout.contains("denied"), "{stdout}");
    // A policy that names ranges lets grants name nothing outside them.
    let ranged = "[grants]\nnetwork = true\nnetwork-ranges = [\"127.0.0.0/8:*\"]\n";
    let ranged = crate::scratch("network-ranges-policy.toml", ranged)?.display().to_string();
    let (_, stdout, _) = run_command(&["--policy", &ranged, "--allow-tcp", "127.0.0.1:*"], &[&open])?;
    assert!(stdout.contains("connected"), "inside the policy's range: {stdout}");
    let (code, _, stderr) = run_command(&["--policy", &ranged, "--allow-tcp", "0.0.0.0/0:*"], &[&open])?;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("network-ranges") && stderr.contains("127.0.0.0/8:*"), "{stderr}");
    Ok(())
}

#[test]
fn a_component_without_wasi_cli_run_is_refused_with_its_exports() -> TestResult {
    let hello = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/hello/hello.wat");
    let output = wasm_runtime(&["run", hello, "--memory", "1MiB", "--fuel", "1000", "--timeout", "1s"])?;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("wasi:cli/run") && stderr.contains("hello"), "{stderr}");
    Ok(())
}

/// A one-shot HTTP server on 127.0.0.1: answers each connection with a
/// 200 and `body_bytes` bytes, and returns its address.
pub(crate) fn http_server(body_bytes: usize, connections: usize) -> Result<String, std::io::Error> {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?.to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {body_bytes}\r\nconnection: close\r\n\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&vec![b'x'; body_bytes]);
        }
    });
    Ok(address)
}

#[test]
fn outgoing_http_reaches_granted_origins_only_and_bodies_count_against_memory() -> TestResult {
    let small = http_server(1000, 1)?;
    let big = http_server(8 << 20, 1)?;
    let policy = crate::scratch("http-policy.toml", "[grants]\nhttp = true\n")?.display().to_string();
    let get = |address: &str| format!("http:{address}/");
    // Without a grant, `wasi:http` gives the guest nothing: its first call fails typed.
    let (code, _, stderr) = run_command(&[], &[&get(&small)])?;
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("capability-denied") && stderr.contains("wasi:http/types"), "{stderr}");
    assert!(stderr.contains("--allow-http"), "the error names the grant: {stderr}");
    // The default policy refuses HTTP grants outright.
    let (code, _, stderr) = run_command(&["--allow-http", &format!("http://{small}")], &[])?;
    assert_eq!(code, 1);
    assert!(stderr.contains("[grants] http = true"), "{stderr}");
    // Granted: the request goes out; another origin on the same host does not.
    let unlisted = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.to_string();
    let flags =
        ["--policy", &policy, "--allow-http", &format!("http://{small}"), "--allow-http", &format!("http://{big}")];
    let (_, stdout, _) = run_command(&flags, &[&get(&small), &get(&unlisted), &get(&big)])?;
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], format!("http:{small}/ status 200, 1000 bytes"));
    assert!(lines[1].contains("HttpRequestDenied"), "{}", lines[1]);
    // 8 MiB of response body is over the 4 MiB memory budget: the stream fails.
    assert!(lines[2].contains("denied") && lines[2].contains("exceeds limit"), "{}", lines[2]);
    Ok(())
}

/// Bytes in the regular files under `dir` and the number of entries, as the disk has them.
pub(crate) fn on_disk(dir: &Path) -> Result<(u64, usize), std::io::Error> {
    let (mut bytes, mut entries) = (0, 0);
    for entry in std::fs::read_dir(dir)? {
        let meta = std::fs::symlink_metadata(entry?.path())?;
        entries += 1;
        if meta.is_file() {
            bytes += meta.len();
        }
    }
    Ok((bytes, entries))
}

#[test]
fn a_read_write_grant_holds_no_more_than_its_byte_quota_across_runs() -> TestResult {
    let root = tree("quota-bytes")?;
    let dir = dir_flag(&root, "/data");
    let quota = ["--dir", &dir, "--dir-max-bytes", "1MiB", "--json"];
    // 3 MB asked in 64 KiB writes: the write that would cross 1 MiB fails as on a full disk.
    // With --json the guest's stdout goes to stderr.
    let (code, stdout, guest) = run_command(&quota, &["fill:/data/big=3000000"])?;
    assert_eq!(code, 0, "{guest}");
    assert!(guest.contains("wrote 983040 (") && guest.contains("error"), "{guest}");
    let (bytes, _) = on_disk(&root.join("data"))?;
    assert_eq!(bytes, 10 + 983040, "the directory holds what fit in its quota, nothing more");
    let report = stdout.trim();
    assert!(report.contains(r#""guest_path":"/data""#) && report.contains(r#""max_bytes":1048576"#), "{report}");
    assert!(report.contains(r#""refused":1"#), "the report names the refusal: {report}");
    // The next run finds the quota spent: what is on disk counts, not what one run wrote.
    let (_, _, guest) = run_command(&quota, &["fill:/data/more=100000"])?;
    assert!(guest.contains("wrote 0 ("), "{guest}");
    // Removing a file gives its bytes back; work under the quota succeeds.
    let (_, _, guest) = run_command(&quota, &["rm:/data/big", "fill:/data/more=1000"])?;
    assert!(guest.contains("rm:/data/big ok") && guest.contains("fill:/data/more=1000 wrote 1000\n"), "{guest}");
    assert_eq!(on_disk(&root.join("data"))?.0, 10 + 1000);
    Ok(())
}

#[test]
fn a_read_write_grant_holds_no_more_than_its_entry_quota() -> TestResult {
    let root = tree("quota-entries")?;
    let dir = dir_flag(&root, "/data");
    // `a.txt` and `link` are there already: 18 more fit in 20.
    let (_, stdout, _) = run_command(&["--dir", &dir, "--dir-max-entries", "20"], &["files:/data=50", "dirs:/data=5"])?;
    assert!(stdout.contains("files:/data=50 created 18 ("), "{stdout}");
    assert!(stdout.contains("dirs:/data=5 created 0 ("), "{stdout}");
    assert_eq!(on_disk(&root.join("data"))?.1, 20);
    // A quota above the policy's maximum is refused before the guest runs.
    let (code, _, stderr) = run_command(&["--dir", &dir, "--dir-max-entries", "1000000"], &[])?;
    assert_eq!(code, 1);
    assert!(stderr.contains("max-dir-entries"), "{stderr}");
    Ok(())
}

#[test]
fn an_instance_holds_no_more_descriptors_than_its_cap() -> TestResult {
    let root = tree("descriptors")?;
    let dir = dir_flag(&root, "/data");
    let policy = crate::scratch("descriptors-policy.toml", "[grants]\nmax-descriptors = 8\n")?.display().to_string();
    // The preopen is one of the 8; past the cap the guest sees an error, not a trap.
    let (code, stdout, _) = run_command(&["--policy", &policy, "--dir", &dir], &["hold:/data=100", "args"])?;
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("hold:/data=100 opened 7 ("), "{stdout}");
    assert!(stdout.lines().nth(1).is_some_and(|line| line.ends_with("args")), "the guest went on: {stdout}");
    Ok(())
}

#[test]
#[cfg(unix)]
fn a_symlink_a_guest_planted_does_not_widen_the_next_grant() -> TestResult {
    let root = tree("planted")?;
    let dir = dir_flag(&root, "/data");
    // wasmtime-wasi lets a guest create a relative link that climbs out of its preopen.
    let (_, stdout, _) = run_command(&["--dir", &dir], &["symlink:../../../../../../etc=/data/rel"])?;
    assert!(stdout.contains("ok"), "{stdout}");
    // A later host grants a path through it: refused, nothing read.
    let through = format!("{}::/etc", root.join("data/rel").display());
    let (code, stdout, stderr) = run_command(&["--dir-ro", &through], &["read:/etc/passwd"])?;
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("is a symlink") && stderr.contains("symlinked-dirs"), "{stderr}");
    assert!(!stdout.contains("root:"), "{stdout}");
    Ok(())
}

#[test]
fn inherited_output_to_a_stalled_reader_ends_at_the_deadline() -> TestResult {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let wasm = command();
    let limits = ["--memory", "4MiB", "--fuel", "10_000_000_000", "--timeout", "300ms"];
    // stdout is a pipe nobody reads until the process is gone: it fills after 64 KiB.
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasm-runtime"))
        .args(["run", &wasm])
        .args(limits)
        .args(["--", "spam:100000000"])
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stderr = String::new();
    child.stderr.take().ok_or("no stderr")?.read_to_string(&mut stderr)?;
    let status = child.wait()?;
    let mut written = Vec::new();
    child.stdout.take().ok_or("no stdout")?.read_to_end(&mut written)?;
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("deadline-exceeded"), "the guest waited on a pollable its deadline covers: {stderr}");
    // What reached the pipe is what it holds, not the 100 MB the guest tried.
    assert!(written.len() <= 1 << 20, "{} bytes", written.len());
    Ok(())
}

#[test]
#[cfg(target_os = "linux")]
fn one_process_at_a_time_holds_a_read_write_grant() -> TestResult {
    let root = tree("busy")?;
    let dir = dir_flag(&root, "/data");
    let started = root.join("data/started");
    let mut args = vec!["run".to_owned(), command()];
    args.extend(LIMITS.iter().map(|s| (*s).to_owned()));
    args.extend(["--dir".to_owned(), dir.clone(), "--".to_owned(), "write:/data/started".into(), "pause:8000".into()]);
    let mut holder = std::process::Command::new(env!("CARGO_BIN_EXE_wasm-runtime"))
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let result = (|| -> TestResult {
        // Bounded: the holder has loaded once its guest wrote the marker.
        let waited = std::time::Instant::now();
        while !started.exists() {
            assert!(waited.elapsed() < std::time::Duration::from_secs(60), "the holder never started");
            std::thread::park_timeout(std::time::Duration::from_millis(20));
        }
        let (code, _, stderr) = run_command(&["--dir", &dir], &["write:/data/second"])?;
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains("grant_busy") && stderr.contains(&format!("process {}", holder.id())), "{stderr}");
        assert!(!root.join("data/second").exists(), "the refused process wrote nothing");
        // Reading beside the holder is allowed.
        let (code, stdout, _) = run_command(&["--dir-ro", &dir], &["read:/data/a.txt"])?;
        assert_eq!((code, stdout.trim()), (0, "hello data"));
        Ok(())
    })();
    holder.kill()?;
    holder.wait()?;
    result?;
    // Once the holder is gone, the grant is free.
    let (code, stdout, stderr) = run_command(&["--dir", &dir], &["write:/data/second"])?;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(root.join("data/second").exists());
    Ok(())
}

#[test]
fn a_stderr_nobody_reads_does_not_hold_the_command_past_its_deadline() -> TestResult {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let wasm = command();
    let limits = ["--memory", "4MiB", "--fuel", "10_000_000_000", "--timeout", "300ms"];
    // The guest fills stderr, a pipe nobody reads until the process is
    // gone; the command's own crash report, for the same stderr, must not
    // wait on it (it did, forever, when written in line).
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasm-runtime"))
        .args(["run", &wasm])
        .args(limits)
        .args(["--stdio", "inherit", "--", "espam:100000000"])
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let mut stdout = String::new();
    child.stdout.take().ok_or("no stdout")?.read_to_string(&mut stdout)?;
    // Bounded: a command that hung on its stderr is killed after a minute.
    let waited = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if waited.elapsed() > std::time::Duration::from_secs(60) {
            child.kill()?;
            return Err("the command hung on a stderr nobody reads".into());
        }
        std::thread::park_timeout(std::time::Duration::from_millis(20));
    };
    drop(stderr);
    assert_eq!(status.code(), Some(3), "{stdout}");
    Ok(())
}

/// Request heads an origin kept, lowercased.
type Heads = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// An origin that answers `200 OK` to `connections` requests and keeps
/// each request's head.
fn recording_http_server(connections: usize) -> Result<(String, Heads), std::io::Error> {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?.to_string();
    let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = heads.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 4096];
            let read = stream.read(&mut request).unwrap_or(0);
            if let Ok(mut heads) = kept.lock() {
                heads.push(String::from_utf8_lossy(&request[..read]).to_lowercase());
            }
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    Ok((address, heads))
}

#[test]
fn outgoing_requests_carry_the_deadline_and_a_hop_and_stop_at_their_count() -> TestResult {
    let (origin, heads) = recording_http_server(100)?;
    let policy = crate::scratch("http-count-policy.toml", "[grants]\nhttp = true\nmax-outgoing-requests = 5\n")?;
    let policy = policy.display().to_string();
    let get = format!("http:{origin}/");
    let flags = ["--policy", &policy, "--allow-http", &format!("http://{origin}")];
    let (code, stdout, stderr) = run_command(&flags, &[get.as_str(); 7])?;
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    // Work under the count succeeds; past it, the guest gets an error code.
    assert!(lines[..5].iter().all(|line| line.ends_with("status 200, 2 bytes")), "{stdout}");
    assert!(lines[5..7].iter().all(|line| line.contains("ConnectionLimitReached")), "{stdout}");
    let heads = heads.lock().map_err(|_| "poisoned")?.clone();
    assert_eq!(heads.len(), 5, "nothing past the count reached the origin");
    for head in &heads {
        assert!(head.contains("x-wasm-runtime-hops: 1\r\n"), "{head}");
        let left: u64 = head
            .split("x-wasm-runtime-deadline-ms: ")
            .nth(1)
            .and_then(|rest| rest.split("\r\n").next()?.parse().ok())
            .ok_or("no deadline header")?;
        assert!(left <= 10_000, "what is left of the 10 s deadline: {left} ms");
    }
    Ok(())
}

#[test]
fn a_command_s_manifest_decides_its_stdio_unless_a_flag_does() -> TestResult {
    let manifest = |name: &str, wasi: &str| {
        let text = format!(
            "[component]\nname = \"cmd\"\nversion = \"0.1.0\"\n[resources]\nmemory = \"4MiB\"\nfuel = 1_000_000_000\ntimeout = \"10s\"\n{wasi}"
        );
        crate::scratch(name, &text).map(|path| path.display().to_string())
    };
    let captured = manifest("stdio-capture.toml", "[wasi]\nstdio = \"capture\"\n")?;
    let (code, stdout, _) = run_fixture(&command(), &["--manifest", &captured, "--json"], &["args"])?;
    assert_eq!(code, 0);
    let body = crate::run_json(stdout.trim().as_bytes())?;
    assert_eq!(body["report"]["stdout"], "rust-command.wasm args\n", "the manifest's capture: {stdout}");
    // Without the key a command inherits, and --stdio overrides the manifest.
    let plain = manifest("stdio-none.toml", "")?;
    let (_, stdout, _) = run_fixture(&command(), &["--manifest", &plain], &["args"])?;
    assert_eq!(stdout, "rust-command.wasm args\n");
    let (_, stdout, _) = run_fixture(&command(), &["--manifest", &captured, "--stdio", "discard"], &["args"])?;
    assert_eq!(stdout, "", "--stdio discard wins");
    Ok(())
}
