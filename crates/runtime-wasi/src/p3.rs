//! WASI 0.3 beside 0.2: the interfaces a p3 component imports, linked from
//! wasmtime-wasi's own p3 bindings with the same accessors as their p2
//! twins, so a p3 call enters the host-call phase, is counted and timed, and
//! is refused `capability-denied` exactly where its p2 twin is. The
//! filesystem and sockets are metered as in p2, by one state over the one
//! table: the filesystem (`fs::p3`) under the grants' quotas and the
//! descriptor cap, sockets (`sockets::p3`) under the network grant and the
//! descriptor cap. `wasi:http` (`types`, `client`) works under an HTTP
//! grant; runtime-http serves `wasi:http/handler@0.3`.

use Capability::Network;
use wasmtime::component::Linker;
use wasmtime_wasi::cli::WasiCli;
use wasmtime_wasi::clocks::WasiClocks;
use wasmtime_wasi::filesystem::WasiFilesystemCtxView;
use wasmtime_wasi::p3::bindings::{cli, clocks, filesystem, random, sockets};
use wasmtime_wasi::random::WasiRandom;
use wasmtime_wasi::sockets::{WasiSockets, WasiSocketsCtxView};
use wasmtime_wasi::{cli::WasiCliView as _, clocks::WasiClocksView as _, random::WasiRandomView as _};
use wasmtime_wasi_http::WasiHttp;
use wasmtime_wasi_http::p3::bindings::http;

use runtime_core::StoreState;

use crate::fs::p3::QuotaFilesystemP3;
use crate::grants::Capability;
use crate::sockets::p3::CappedSocketsP3;
use crate::{enter, gate, wasi_state};

/// Adds WASI 0.3 (`wasi:cli`, `wasi:clocks`, `wasi:random`,
/// `wasi:filesystem`, `wasi:sockets` at 0.3.x) to `linker`, beside the p2
/// interfaces [`add_wasi_to_linker`](crate::add_wasi_to_linker) adds. The
/// linker's engine needs component-model async
/// (`HostPolicy::component_model_async`); without it this fails.
pub fn add_to_linker<T: Send + 'static>(l: &mut Linker<StoreState<T>>) -> wasmtime::Result<()> {
    cli::exit::add_to_linker::<_, WasiCli>(l, |t| wasi_state(enter(t, "wasi:cli/exit@0.3")).cli())?;
    cli::environment::add_to_linker::<_, WasiCli>(l, |t| wasi_state(enter(t, "wasi:cli/environment@0.3")).cli())?;
    cli::stdin::add_to_linker::<_, WasiCli>(l, |t| wasi_state(enter(t, "wasi:cli/stdin@0.3")).cli())?;
    cli::stdout::add_to_linker::<_, WasiCli>(l, |t| wasi_state(enter(t, "wasi:cli/stdout@0.3")).cli())?;
    cli::stderr::add_to_linker::<_, WasiCli>(l, |t| wasi_state(enter(t, "wasi:cli/stderr@0.3")).cli())?;
    cli::terminal_input::add_to_linker::<_, WasiCli>(l, |t| wasi_state(enter(t, "wasi:cli/terminal-input@0.3")).cli())?;
    cli::terminal_output::add_to_linker::<_, WasiCli>(l, |t| {
        wasi_state(enter(t, "wasi:cli/terminal-output@0.3")).cli()
    })?;
    cli::terminal_stdin::add_to_linker::<_, WasiCli>(l, |t| wasi_state(enter(t, "wasi:cli/terminal-stdin@0.3")).cli())?;
    cli::terminal_stdout::add_to_linker::<_, WasiCli>(l, |t| {
        wasi_state(enter(t, "wasi:cli/terminal-stdout@0.3")).cli()
    })?;
    cli::terminal_stderr::add_to_linker::<_, WasiCli>(l, |t| {
        wasi_state(enter(t, "wasi:cli/terminal-stderr@0.3")).cli()
    })?;
    clocks::types::add_to_linker::<_, WasiClocks>(l, |t| wasi_state(enter(t, "wasi:clocks/types@0.3")).clocks())?;
    clocks::monotonic_clock::add_to_linker::<_, WasiClocks>(l, |t| {
        wasi_state(enter(t, "wasi:clocks/monotonic-clock@0.3")).clocks()
    })?;
    clocks::system_clock::add_to_linker::<_, WasiClocks>(l, |t| {
        wasi_state(enter(t, "wasi:clocks/system-clock@0.3")).clocks()
    })?;
    random::random::add_to_linker::<_, WasiRandom>(l, |t| wasi_state(enter(t, "wasi:random/random@0.3")).random())?;
    random::insecure::add_to_linker::<_, WasiRandom>(l, |t| wasi_state(enter(t, "wasi:random/insecure@0.3")).random())?;
    random::insecure_seed::add_to_linker::<_, WasiRandom>(l, |t| {
        wasi_state(enter(t, "wasi:random/insecure-seed@0.3")).random()
    })?;
    filesystem::preopens::add_to_linker::<_, QuotaFilesystemP3>(l, |t| {
        wasi_state(enter(t, "wasi:filesystem/preopens@0.3")).filesystem()
    })?;
    filesystem::types::add_to_linker::<_, QuotaFilesystemP3>(l, |t| {
        wasi_state(enter(t, FILESYSTEM_TYPES)).filesystem()
    })?;
    sockets::types::add_to_linker::<_, CappedSocketsP3>(l, |t| gate(t, SOCKETS_TYPES, Network).capped_sockets())?;
    sockets::ip_name_lookup::add_to_linker::<_, WasiSockets>(l, |t| {
        gate(t, "wasi:sockets/ip-name-lookup@0.3", Network).sockets()
    })?;
    // `wasi:http`, gated like its p2 twins: `types` under an HTTP grant or
    // while serving, `client` under an HTTP grant, its requests through the
    // same hook as p2's (the allowed origins, the instance's request count
    // and descriptor cap, the process's in-flight cap, the deadline).
    http::types::add_to_linker::<_, WasiHttp>(l, |t| gate(t, "wasi:http/types@0.3", Capability::HttpTypes).http())?;
    http::client::add_to_linker::<_, WasiHttp>(l, |t| {
        gate(t, "wasi:http/client@0.3", Capability::Http).outgoing_http()
    })?;
    Ok(())
}

const FILESYSTEM_TYPES: &str = "wasi:filesystem/types@0.3";

/// wasmtime-wasi's own filesystem view over the instance's table, through
/// which the metered 0.3 filesystem does its I/O.
pub(crate) fn plain_filesystem<T>(state: &mut StoreState<T>) -> WasiFilesystemCtxView<'_> {
    let wasi = wasi_state(enter(state, FILESYSTEM_TYPES));
    WasiFilesystemCtxView { ctx: wasi.ctx.filesystem(), table: &mut wasi.table }
}

const SOCKETS_TYPES: &str = "wasi:sockets/types@0.3";

/// wasmtime-wasi's own sockets view, gated by the network grant, through
/// which the capped 0.3 sockets do their I/O.
pub(crate) fn plain_sockets<T>(state: &mut StoreState<T>) -> WasiSocketsCtxView<'_> {
    gate(state, SOCKETS_TYPES, Capability::Network).sockets()
}

/// The view a 0.3 listener pushes each accepted connection into: at the
/// descriptor cap, the table that holds nothing.
pub(crate) fn accepting_sockets<T>(state: &mut StoreState<T>) -> WasiSocketsCtxView<'_> {
    let wasi = wasi_state(enter(state, SOCKETS_TYPES));
    let in_flight = wasi.http_hooks.in_flight.load(std::sync::atomic::Ordering::Acquire);
    let room = !wasi.disk.at_cap(&mut wasi.table, in_flight);
    wasi.sockets(room)
}
