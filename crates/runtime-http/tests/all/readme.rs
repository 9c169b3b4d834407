//! The README's serving blocks: the newcomer's HTTP component (its source is
//! `fixtures/guests/hello-http`, whose committed build is served here), and
//! the embedding one, compiled and run as written, its ctrl-c stood in for
//! by a future that sends one request first.

use std::sync::{Arc, Mutex};

use crate::TestResult;
use crate::readme_blocks::{assert_block_is_file, assert_holds_block, repository};

#[test]
#[allow(clippy::print_stdout, reason = "the README's block prints where it listens")]
fn the_readme_s_serving_block_runs_as_written() -> TestResult {
    // Its paths are the repository's; the other tests name theirs absolutely.
    std::env::set_current_dir(repository())?;
    let answered = Arc::new(Mutex::new(None));
    let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    tokio.block_on(async {
        // --- README block 4 ---
        let runtime = runtime::Runtime::builder().build()?;
        let manifest = runtime::ComponentManifest::from_path("examples/rust-http/Component.toml")?;
        let component = runtime.load_file("fixtures/guests/rust-http.wasm", &manifest, ".")?;
        let service = runtime_http::HttpService::new(component, runtime_http::ServeOptions::default())?;
        let metrics = service.metrics(); // ServeMetrics: requests(kind), in_flight(), encode() as OpenMetrics text
        let server = runtime_http::Server::bind(service, "127.0.0.1:0".parse()?, false)?; // port 0: any free one
        println!("listening on http://{}", server.local_addr()?);
        // Any future: the server stops when it ends.
        let shutdown = async {
            tokio::signal::ctrl_c().await.ok();
        };
        let shutdown = answer_then_stop(server.local_addr()?, answered.clone(), shutdown); // test only
        server.run(shutdown).await; // stops accepting, drains the requests in flight, returns
        // --- end of block 4 ---
        assert_eq!(metrics.requests("ok"), 1);
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    let answered = answered.lock().map_err(|_| "poisoned")?.take().ok_or("no answer")?;
    assert_eq!(answered.trim_end(), "hello from rust");
    assert_holds_block(include_str!("readme.rs"), 4)
}

/// Sends `GET /hello`, keeps its body in `answered`, then ends; `ctrl_c`
/// (the README's shutdown) is dropped unpolled, so no signal handler is set.
async fn answer_then_stop(
    addr: std::net::SocketAddr,
    answered: Arc<Mutex<Option<String>>>,
    ctrl_c: impl Future<Output = ()>,
) {
    drop(ctrl_c);
    let text = crate::client::get(addr, "/hello").await.map(|answer| answer.text());
    if let Ok(mut slot) = answered.lock() {
        *slot = Some(text.unwrap_or_else(|error| format!("<failed: {error}>")));
    }
}

#[test]
fn the_readme_s_first_http_component_is_the_served_fixture() -> TestResult {
    assert_block_is_file(1, "fixtures/guests/hello-http/src/lib.rs")?;
    let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    tokio.block_on(async {
        let wasm = repository().join("fixtures/guests/hello-http.wasm");
        let manifest = crate::manifest(crate::LIMITS)?;
        let component = runtime::Runtime::builder().build()?.load_file(wasm, &manifest, ".")?;
        let server = crate::Running::start(runtime_http::HttpService::new(component, Default::default())?).await?;
        let answer = crate::client::get(server.addr, "/you").await?;
        assert_eq!((answer.status.as_u16(), answer.text()), (200, "hello from /you\n".to_owned()));
        server.stop(std::time::Duration::from_secs(5)).await
    })
}
