//! WASI 0.3 (component-model async) attacks: the Rust p3 command fixture
//! makes the host hold what p3 adds (streams, futures, subtasks, waits on
//! host futures) and is judged as every held attack is: what the guest saw,
//! the host's peak memory and descriptors, and the wall time. Each limit is
//! shown holding and, beside it, work under it succeeding.

use super::Case;
use super::hold::{Attack, Guest, kind, policy_file, says};

pub(crate) fn cases() -> Vec<Case> {
    let p3 = |name, expected| Attack::new("p3", name, expected).guest(Guest::P3Command);
    let typed = |run: &super::hold::Run, kinds: &[&str]| {
        run.code == Some(3) && kinds.iter().any(|kind| run.stderr.contains(kind))
    };
    let attacks = vec![
        // Handles: every end of a stream or future, every subtask.
        p3("100,000 streams held unread", "handle-limit-exceeded")
            .actions(&["streams:100000"])
            .shows(kind("handle-limit-exceeded")),
        p3("100,000 futures held unresolved", "handle-limit-exceeded")
            .actions(&["futures:100000"])
            .shows(kind("handle-limit-exceeded")),
        p3("100,000 subtasks at once", "a limit, typed")
            .actions(&["spawn:100000"])
            .shows(move |run| typed(run, &["handle-limit-exceeded", "memory-limit-exceeded"])),
        // Two handles a pair, all held until `run` returns: 7,000 of 10,000.
        p3("1,500 streams, 1,500 futures and 500 subtasks at once", "all made, exit 0")
            .actions(&["streams:1500", "futures:1500", "spawn:500"])
            .shows(|run| {
                run.code == Some(0)
                    && run.stdout.contains("streams 1500")
                    && run.stdout.contains("futures 1500")
                    && run.stdout.contains("spawned 500 finished 500")
            }),
        p3("streams to the limit, twice in one run", "handle-limit-exceeded")
            .actions(&["streams:4000", "streams:4000"])
            .shows(kind("handle-limit-exceeded")),
        // Time: one deadline over every task of the call.
        p3("an async run that spins", "deadline-exceeded")
            .flags(&["--timeout", "200ms"])
            .actions(&["spin"])
            .shows(kind("deadline-exceeded")),
        p3("an async run that spins, little fuel", "out-of-fuel")
            .flags(&["--fuel", "10_000_000"])
            .actions(&["spin"])
            .shows(kind("out-of-fuel")),
        p3("awaiting a host sleep past the deadline", "deadline-exceeded")
            .flags(&["--timeout", "200ms"])
            .actions(&["sleep:60000"])
            .shows(kind("deadline-exceeded")),
        p3("1,000 finished subtasks, then a sleep past the deadline", "deadline-exceeded")
            .flags(&["--timeout", "200ms"])
            .actions(&["spawn:1000", "sleep:60000"])
            .shows(kind("deadline-exceeded")),
        p3("a sleep within the deadline", "slept, exit 0")
            .flags(&["--timeout", "2s"])
            .actions(&["sleep:50"])
            .shows(|run| run.code == Some(0) && run.stdout.contains("slept 50")),
        // Buffers: a write nobody reads stays in the guest.
        p3("1 MB written into a stream nobody reads", "nothing accepted, RSS flat")
            .actions(&["write-unread:1000000"])
            .shows(says("accepted 0")),
        p3("2 MB written into an unread stream under 4 MiB, 8 times", "nothing accepted, RSS flat")
            .actions(&["write-unread:2000000"; 8])
            .shows(|run| run.code == Some(0) && run.stdout.matches("accepted 0").count() == 8),
        // Output: WASI 0.3 writes go through the same bounded queue as 0.2's.
        p3("100 MB through p3 stdout nobody reads", "deadline-exceeded")
            .flags(&["--stdio", "inherit", "--timeout", "2s"])
            .actions(&["print:100000000"])
            .stalled()
            .shows(kind("deadline-exceeded")),
        p3("1 MB through p3 stdout, read", "all written, exit 0")
            .flags(&["--stdio", "inherit"])
            .actions(&["print:1000000"])
            .shows(|run| run.code == Some(0) && run.stdout.contains("printed 1000000") && run.stdout.len() > 1_000_000),
        // The guest's own failures stay its own.
        // Its panic message discarded: the suite reads "panicked" on stderr
        // as the host's own.
        p3("a panic in the async run", "unreachable")
            .flags(&["--stdio", "discard"])
            .actions(&["args", "panic"])
            .shows(kind("unreachable")),
        p3("exit-with-code 42 from the async run", "exit 42").actions(&["exit:42"]).shows(|run| run.code == Some(42)),
        p3("the p2 run a p3 command also exports is not the one run", "exit 0, its output")
            .actions(&["args"])
            .shows(|run| run.code == Some(0) && run.stdout.starts_with("rust-p3-command.wasm args")),
    ];
    let mut cases: Vec<Case> = attacks.into_iter().map(Attack::case).collect();
    match host_attacks() {
        Ok(more) => cases.extend(more.into_iter().map(Attack::case)),
        Err(error) => cases
            .push(Case::new("p3", "set up the p3 grant attacks", "set up", move || super::probe::host_failure(error))),
    }
    cases
}

/// What a p3 guest makes the host hold through its grants: disk through
/// write streams, descriptors through opens, listings and sockets.
fn host_attacks() -> Result<Vec<Attack>, String> {
    let p3 = |name, expected| Attack::new("p3", name, expected).guest(Guest::P3Command);
    let few_fds = policy_file("p3-few-fds", "[grants]\nmax-descriptors = 4\nnetwork = true\n")?;
    let rw = ["--dir", "{data}::/data", "--dir-max-bytes", "1MiB", "--dir-max-entries", "100"];
    let capped = ["--policy", few_fds.as_str(), "--dir", "{data}::/data"];
    let bind = ["--allow-tcp-bind", "127.0.0.1:*"];
    let mib = 1 << 20;
    Ok(vec![
        p3("3 MB through a p3 write stream into a 1 MiB grant", "insufficient-space")
            .flags(&rw)
            .actions(&["write:big:3000000"])
            .disk(mib, 100)
            .shows(says("ErrorCode::InsufficientSpace")),
        p3("three p3 appends of 400 KB into a 1 MiB grant", "the third refused")
            .flags(&rw)
            .actions(&["append:a:400000", "append:b:400000", "append:c:400000"])
            .disk(mib, 100)
            .shows(|run| run.stdout.contains("wrote b 400000") && run.stdout.contains("InsufficientSpace")),
        p3("10,000 p3 files held open", "3 opened, then refused")
            .flags(&capped)
            .actions(&["open:10000"])
            .shows(says("opened 3: ErrorCode::InsufficientMemory")),
        p3("10,000 p3 listings held open", "3 held, then refused")
            .flags(&capped)
            // A listing is held once its first entry is read.
            .actions(&["write:seed:1", "listings:10000"])
            .shows(says("listings 3: Err(ErrorCode::InsufficientMemory)")),
        p3("10,000 p3 sockets held open", "4 made, then refused")
            .flags(&capped)
            .flags(&bind)
            .actions(&["sockets:10000"])
            .shows(says("sockets 4: ErrorCode::Other")),
        // Each listener's stream holds its socket after the handle is gone.
        p3("10,000 p3 listeners whose sockets are dropped", "refused at the cap")
            .flags(&capped)
            .flags(&bind)
            .actions(&["listeners:10000"])
            .shows(says("too many open descriptors")),
        p3("a p3 write stream through a read-only descriptor", "bad-descriptor, nothing held")
            .flags(&capped)
            .actions(&["write:f:10", "write-ro:f", "write-ro:f", "write-ro:f", "write-ro:f", "open:1"])
            .shows(|run| run.stdout.matches("BadDescriptor").count() == 4 && run.stdout.contains("opened 1")),
        p3("a p3 listener under a loopback grant", "on loopback only")
            .flags(&capped)
            .flags(&bind)
            .actions(&["listen"])
            .shows(says("listening 127.0.0.1:")),
    ])
}
