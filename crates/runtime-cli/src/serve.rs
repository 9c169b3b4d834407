//! `wasm-runtime serve`: a `wasi:http/proxy` component behind an HTTP/1.1
//! listener, one fresh instance per request under the manifest's limits.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use runtime::{ByteSize, RuntimeError};
use runtime_http::{HttpService, ServeOptions, Server};

use crate::grants::GrantFlags;
use crate::run::{Failure, LimitSource};

/// Arguments of `wasm-runtime serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// The component: it must export `wasi:http/incoming-handler@0.2.x`.
    component: PathBuf,
    #[command(flatten)]
    limits: LimitSource,
    /// The host policy file that manifests and grants are checked against.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    #[command(flatten)]
    grants: GrantFlags,
    /// Where to listen; port 0 picks a free port (printed once listening).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Serve `GET /metrics` (Prometheus text format) on this address too.
    #[arg(long, value_name = "HOST:PORT")]
    metrics_addr: Option<SocketAddr>,
    /// Open connections at most; more wait in the kernel's backlog.
    #[arg(long, value_name = "N", default_value_t = runtime_http::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// The largest request body (e.g. 1MiB); default: the memory budget.
    /// A request declaring a longer one gets 413.
    #[arg(long, value_name = "SIZE")]
    max_request_body: Option<ByteSize>,
    /// Let several processes listen on the same address (SO_REUSEPORT):
    /// the kernel spreads connections among them.
    #[arg(long)]
    reuse_port: bool,
    /// Keep compiled components in this directory between runs (shared
    /// safely by several processes).
    #[arg(long, env = "WASM_RUNTIME_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
}

pub(crate) fn serve(args: &ServeArgs) -> ExitCode {
    crate::run::exit_code(execute(args))
}

fn execute(args: &ServeArgs) -> Result<(), Failure> {
    let policy = crate::load_policy(args.policy.as_deref())?;
    let (mut manifest, grants_dir) = crate::run::manifest(&args.limits, &policy)?;
    args.grants.apply(&mut manifest.wasi, &[], false, &policy).map_err(Failure::Usage)?;
    let build = |policy: runtime::HostPolicy| -> Result<runtime::Runtime, Failure> {
        let mut builder = crate::runtime_builder()
            .policy(policy)
            // A request waits for a slot at most a second, then gets 503; at
            // most one request per connection waits.
            .queue(args.max_connections, std::time::Duration::from_secs(1));
        if let Some(dir) = &args.cache_dir {
            builder = builder.disk_cache(dir);
        }
        Ok(builder.build()?)
    };
    let policy = crate::run::runtime_policy(&policy, &args.grants)?;
    let (_runtime, component) = crate::run::load_turning_on_async(policy, build, |runtime| {
        runtime.load_file(&args.component, &manifest, &grants_dir)
    })?;
    let mut options = ServeOptions::default().with_max_connections(args.max_connections);
    if let Some(size) = args.max_request_body {
        options = options.with_max_request_body(size.as_bytes());
    }
    let service = HttpService::new(component, options).map_err(Failure::Serve)?;
    let executor = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| RuntimeError::Internal { message: format!("cannot start tokio: {e}") })?;
    let served = service.served_interface().to_owned();
    executor.block_on(async {
        let metrics = service.metrics();
        let server = Server::bind(service, args.addr, args.reuse_port).map_err(Failure::Serve)?;
        let local = server.local_addr().map_err(|error| Failure::Usage(error.to_string()))?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        if let Some(addr) = args.metrics_addr {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|error| Failure::Usage(format!("cannot listen on {addr} for metrics: {error}")))?;
            let mut stopped = stopped.clone();
            tokio::spawn(runtime_http::serve_metrics(listener, Arc::clone(&metrics), async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            }));
        }
        crate::print::stderr_text(&format!("listening on http://{local}\n"));
        // After the `listening` line, which tools read as the first line.
        tracing::info!(target: "wasm_runtime::serve", handler = %served, "serving");
        server.run(shutdown_signal()).await;
        let _ = stop.send(true);
        Ok(())
    })
}

/// Completes at SIGTERM or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => std::future::pending().await,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
