//! Integration tests of the serving layer: the Rust `wasi:http/proxy` guest
//! behind a real listener on 127.0.0.1, driven by a real HTTP client.

mod client;
mod contract;
// `readme` sets the process's directory to the repository's root, as a
// reader's is: every other test names its paths absolutely.
mod readme;
#[path = "../../../runtime/tests/all/readme_blocks.rs"]
mod readme_blocks;
mod server;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use runtime::{ComponentManifest, LoadedComponent, Runtime, RuntimeError};
use runtime_http::{HttpService, ServeOptions, Server};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The committed build of `fixtures/guests/rust-http`.
fn guest_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/guests/rust-http.wasm")
}

/// A manifest with `resources` (TOML lines of `[resources]`).
fn manifest(resources: &str) -> Result<ComponentManifest, RuntimeError> {
    Ok(format!("[component]\nname = \"rust-http\"\nversion = \"0.1.0\"\n[resources]\n{resources}").parse()?)
}

/// The guest under `resources`.
fn guest(runtime: &Runtime, resources: &str) -> Result<LoadedComponent, RuntimeError> {
    runtime.load_file(guest_path(), &manifest(resources)?, ".")
}

/// 4 MiB, enough fuel for every route but `spin`, a one-second deadline.
const LIMITS: &str = "memory = \"4MiB\"\nfuel = 200_000_000\ntimeout = \"1s\"";

/// A server on a free port of 127.0.0.1, stopped when the returned sender
/// is dropped or sent to; its task ends once it has drained.
struct Running {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn start(service: HttpService) -> Result<Self, Box<dyn std::error::Error>> {
        let server = Server::bind(service, "127.0.0.1:0".parse()?, false)?;
        let addr = server.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        Ok(Self { addr, stop: Some(stop), task })
    }

    /// Stops accepting and waits (at most `within`) for the drain.
    async fn stop(mut self, within: Duration) -> Result<(), Box<dyn std::error::Error>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(within, &mut self.task).await??;
        Ok(())
    }
}

/// The guest served under `resources` with `options`, by `runtime`.
async fn serve(
    runtime: &Runtime,
    resources: &str,
    options: ServeOptions,
) -> Result<Running, Box<dyn std::error::Error>> {
    let service = HttpService::new(guest(runtime, resources)?, options)?;
    Running::start(service).await
}
