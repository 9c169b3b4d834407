//! WASI p2 for guests, deny by default: no filesystem preopens, no network,
//! no environment variables, no arguments; clocks and random allowed; stdout
//! and stderr discarded, captured (capped) or inherited as the manifest's
//! `[wasi] stdio` grants. The context is built on the guest's first WASI call,
//! so a component that never calls WASI pays nothing for it.

use runtime_manifest::Stdio;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::StoreState;

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
    pub(crate) fn new(stdio: Stdio) -> Self {
        let mut builder = WasiCtxBuilder::new();
        builder.allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false);
        let captured = match stdio {
            Stdio::Capture => {
                let pipes = (
                    MemoryOutputPipe::new(MAX_CAPTURED_OUTPUT_BYTES),
                    MemoryOutputPipe::new(MAX_CAPTURED_OUTPUT_BYTES),
                );
                builder.stdout(pipes.0.clone()).stderr(pipes.1.clone());
                Some(pipes)
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
        let stdio = self.stdio;
        let state = self.wasi.get_or_insert_with(|| Box::new(WasiState::new(stdio)));
        WasiCtxView { ctx: &mut state.ctx, table: &mut state.table }
    }
}
