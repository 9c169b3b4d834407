//! WASI p2 for guests, deny by default: no filesystem preopens, no network,
//! no environment variables, no arguments; clocks and random allowed; stdout
//! and stderr discarded, captured (capped) or inherited as the manifest's
//! `[wasi] stdio` grants. The context is built on the guest's first WASI call,
//! so a component that never calls WASI pays nothing for it.

use runtime_manifest::Stdio;
use wasmtime::component::{HasData, Linker};
use wasmtime_wasi::cli::WasiCli;
use wasmtime_wasi::clocks::WasiClocks;
use wasmtime_wasi::filesystem::WasiFilesystem;
use wasmtime_wasi::p2::bindings;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::random::WasiRandom;
use wasmtime_wasi::sockets::WasiSockets;
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::{HostFunction, StoreState};

// The accessors below (`clocks()`, `cli()`, ...) come from these views,
// which wasmtime-wasi implements for every `WasiView`.
use wasmtime_wasi::{
    cli::WasiCliView as _, clocks::WasiClocksView as _, filesystem::WasiFilesystemView as _,
    random::WasiRandomView as _, sockets::WasiSocketsView as _,
};

/// The most bytes of stdout (and, separately, of stderr) kept per call when
/// output is captured; writes past it fail in the guest.
pub const MAX_CAPTURED_OUTPUT_BYTES: usize = 64 * 1024;

/// One store's WASI context and, when captured, its output pipes.
pub(crate) struct WasiState {
    ctx: WasiCtx,
    table: ResourceTable,
    captured: Option<(MemoryOutputPipe, MemoryOutputPipe)>,
}

impl WasiState {
    /// `stdio` as the manifest grants; `max_random_bytes` caps one
    /// `get-random-bytes` request (the guest could not hold more anyway);
    /// `stdout_to_stderr` sends an inherited stdout to the host's stderr.
    pub(crate) fn new(stdio: Stdio, max_random_bytes: u64, stdout_to_stderr: bool) -> Self {
        let mut builder = WasiCtxBuilder::new();
        builder.allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false).max_random_size(max_random_bytes);
        let captured = match stdio {
            Stdio::Capture => {
                let pipes = (
                    MemoryOutputPipe::new(MAX_CAPTURED_OUTPUT_BYTES),
                    MemoryOutputPipe::new(MAX_CAPTURED_OUTPUT_BYTES),
                );
                builder.stdout(pipes.0.clone()).stderr(pipes.1.clone());
                Some(pipes)
            }
            Stdio::Inherit if stdout_to_stderr => {
                builder.stdout(std::io::stderr()).inherit_stderr();
                None
            }
            Stdio::Inherit => {
                builder.inherit_stdout().inherit_stderr();
                None
            }
            // The builder's default stdout and stderr drop what is written.
            _ => None,
        };
        Self { ctx: builder.build(), table: ResourceTable::new(), captured }
    }

    /// Captured stdout and stderr, as (lossy) UTF-8.
    pub(crate) fn captured(&self) -> Option<(String, String)> {
        let (stdout, stderr) = self.captured.as_ref()?;
        let text = |pipe: &MemoryOutputPipe| String::from_utf8_lossy(&pipe.contents()).into_owned();
        Some((text(stdout), text(stderr)))
    }
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let (stdio, max_random, redirect) = (self.stdio, self.memory_limit_bytes, self.stdout_to_stderr);
        let state = self.wasi.get_or_insert_with(|| Box::new(WasiState::new(stdio, max_random, redirect)));
        WasiCtxView { ctx: &mut state.ctx, table: &mut state.table }
    }
}

/// The resource table of WASI's `wasi:io` interfaces.
struct Io;

impl HasData for Io {
    type Data<'a> = &'a mut ResourceTable;
}

/// Adds WASI p2 to `linker` as `wasmtime_wasi::p2::add_to_linker_async`
/// does, interface by interface from wasmtime-wasi's own bindings, with one
/// difference: each interface's accessor first tells the store which
/// interface is called. That is how WASI calls enter the host-call phase
/// (so the deadline covers a guest blocked in `poll`), are counted and timed
/// in the report, and how a WASI failure is reported as `host-error` naming
/// its interface rather than as a guest's fault.
pub fn add_wasi_to_linker(linker: &mut Linker<StoreState>) -> wasmtime::Result<()> {
    use bindings::{cli, clocks, filesystem, io, random, sockets};

    fn enter<'a>(state: &'a mut StoreState, interface: &'static str) -> &'a mut StoreState {
        state.enter_host_function(HostFunction::Wasi(interface));
        state
    }
    let l = linker;
    io::error::add_to_linker::<_, Io>(l, |t| enter(t, "wasi:io/error").ctx().table)?;
    io::poll::add_to_linker::<_, Io>(l, |t| enter(t, "wasi:io/poll").ctx().table)?;
    io::streams::add_to_linker::<_, Io>(l, |t| enter(t, "wasi:io/streams").ctx().table)?;
    clocks::wall_clock::add_to_linker::<_, WasiClocks>(l, |t| enter(t, "wasi:clocks/wall-clock").clocks())?;
    clocks::monotonic_clock::add_to_linker::<_, WasiClocks>(l, |t| enter(t, "wasi:clocks/monotonic-clock").clocks())?;
    filesystem::preopens::add_to_linker::<_, WasiFilesystem>(l, |t| enter(t, "wasi:filesystem/preopens").filesystem())?;
    filesystem::types::add_to_linker::<_, WasiFilesystem>(l, |t| enter(t, "wasi:filesystem/types").filesystem())?;
    random::random::add_to_linker::<_, WasiRandom>(l, |t| enter(t, "wasi:random/random").random())?;
    random::insecure::add_to_linker::<_, WasiRandom>(l, |t| enter(t, "wasi:random/insecure").random())?;
    random::insecure_seed::add_to_linker::<_, WasiRandom>(l, |t| enter(t, "wasi:random/insecure-seed").random())?;
    cli::exit::add_to_linker::<_, WasiCli>(l, |t| enter(t, "wasi:cli/exit").cli())?;
    cli::environment::add_to_linker::<_, WasiCli>(l, |t| enter(t, "wasi:cli/environment").cli())?;
    cli::stdin::add_to_linker::<_, WasiCli>(l, |t| enter(t, "wasi:cli/stdin").cli())?;
    cli::stdout::add_to_linker::<_, WasiCli>(l, |t| enter(t, "wasi:cli/stdout").cli())?;
    cli::stderr::add_to_linker::<_, WasiCli>(l, |t| enter(t, "wasi:cli/stderr").cli())?;
    cli::terminal_input::add_to_linker::<_, WasiCli>(l, |t| enter(t, "wasi:cli/terminal-input").cli())?;
    cli::terminal_output::add_to_linker::<_, WasiCli>(l, |t| enter(t, "wasi:cli/terminal-output").cli())?;
    cli::terminal_stdin::add_to_linker::<_, WasiCli>(l, |t| enter(t, "wasi:cli/terminal-stdin").cli())?;
    cli::terminal_stdout::add_to_linker::<_, WasiCli>(l, |t| enter(t, "wasi:cli/terminal-stdout").cli())?;
    cli::terminal_stderr::add_to_linker::<_, WasiCli>(l, |t| enter(t, "wasi:cli/terminal-stderr").cli())?;
    sockets::tcp_create_socket::add_to_linker::<_, WasiSockets>(l, |t| {
        enter(t, "wasi:sockets/tcp-create-socket").sockets()
    })?;
    sockets::instance_network::add_to_linker::<_, WasiSockets>(l, |t| {
        enter(t, "wasi:sockets/instance-network").sockets()
    })?;
    sockets::network::add_to_linker::<_, WasiSockets>(l, &Default::default(), |t| {
        enter(t, "wasi:sockets/network").sockets()
    })?;
    sockets::ip_name_lookup::add_to_linker::<_, WasiSockets>(l, |t| enter(t, "wasi:sockets/ip-name-lookup").sockets())?;
    sockets::tcp::add_to_linker::<_, WasiSockets>(l, |t| enter(t, "wasi:sockets/tcp").sockets())?;
    sockets::udp::add_to_linker::<_, WasiSockets>(l, |t| enter(t, "wasi:sockets/udp").sockets())?;
    sockets::udp_create_socket::add_to_linker::<_, WasiSockets>(l, |t| {
        enter(t, "wasi:sockets/udp-create-socket").sockets()
    })?;
    Ok(())
}
