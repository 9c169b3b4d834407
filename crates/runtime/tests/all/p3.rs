//! WASI 0.3 components through the library: refused by a policy that does
//! not run component-model async, called like any other where it does.

use runtime::{HostPolicy, Runtime, Val};

use crate::{FOUR_MIB, TestResult, manifest, tokio};

fn p3_command() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/guests/rust-p3-command.wasm")
}

#[test]
fn a_policy_without_component_model_async_refuses_a_p3_component_naming_the_key() -> TestResult {
    let runtime = Runtime::builder().build()?;
    let error = runtime
        .load_file(p3_command(), &manifest(FOUR_MIB, "")?, ".")
        .err()
        .ok_or("a p3 component loaded without component-model async")?;
    assert_eq!(error.kind(), "component-model-async-disabled", "{error}");
    let help = miette::Diagnostic::help(&error).map(|help| help.to_string()).unwrap_or_default();
    assert!(help.contains("component-model-async = true"), "{help}");
    Ok(())
}

#[test]
fn a_p3_command_s_async_run_is_called_with_its_arguments_and_output_captured() -> TestResult {
    use runtime::wasi::InstanceWasi;
    let policy = HostPolicy::builder().component_model_async(true).build()?;
    let runtime = Runtime::builder().policy(policy).build()?;
    let component = runtime.load_file(p3_command(), &manifest(FOUR_MIB, "[wasi]\nstdio = \"capture\"")?, ".")?;
    let component = component.with_instance_wasi(&InstanceWasi::new().args(["args", "sleep:5"]))?;
    tokio()?.block_on(async {
        let outcome = component.call_async("wasi:cli/run@0.3.0#run", &[]).await?;
        assert_eq!(outcome.results, [Val::Result(Ok(None))]);
        assert_eq!(outcome.report.stdout.as_deref(), Some("rust-p3-command.wasm args sleep:5\nslept 5\n"));
        assert!(outcome.report.host_calls > 0, "p3 calls are counted like p2 ones");
        Ok(())
    })
}

/// A p3 command whose `run` performs `actions`, with output captured, under
/// `timeout`.
fn p3_runner(actions: &[&str], timeout: &str) -> Result<runtime::LoadedComponent, Box<dyn std::error::Error>> {
    use runtime::wasi::InstanceWasi;
    let policy = HostPolicy::builder().component_model_async(true).build()?;
    let runtime = Runtime::builder().policy(policy).build()?;
    let resources = format!("memory = \"4MiB\"\nfuel = 1_000_000_000\ntimeout = \"{timeout}\"");
    let component = runtime.load_file(p3_command(), &manifest(&resources, "[wasi]\nstdio = \"capture\"")?, ".")?;
    Ok(component.with_instance_wasi(&InstanceWasi::new().args(actions.iter().copied()))?)
}

#[test]
fn several_async_calls_run_at_once_on_one_instance_under_one_deadline() -> TestResult {
    const RUN: &str = "wasi:cli/run@0.3.0#run";
    // Two runs that each await a 700 ms host sleep fit a 1.2 s deadline
    // only if the instance runs them at once.
    let component = p3_runner(&["sleep:700"], "1200ms")?;
    tokio()?.block_on(async {
        let mut instance = component.instantiate_async(()).await?;
        let outcome = instance.call_concurrent_async(&[(RUN, &[]), (RUN, &[])]).await?;
        assert_eq!(outcome.results, [[Val::Result(Ok(None))], [Val::Result(Ok(None))]]);
        assert_eq!(outcome.report.stdout.as_deref(), Some("slept 700\nslept 700\n"), "both ran");
        // The instance is still good for the next call.
        let again = instance.call_async(RUN, &[]).await?;
        assert_eq!(again.results, [Val::Result(Ok(None))]);
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    // Runs that would outlast the one deadline fail together, typed, and
    // leave the instance poisoned.
    let component = p3_runner(&["sleep:5000"], "300ms")?;
    tokio()?.block_on(async {
        let mut instance = component.instantiate_async(()).await?;
        let error = instance.call_concurrent_async(&[(RUN, &[]), (RUN, &[])]).await.err().ok_or("no deadline")?;
        assert_eq!(error.kind(), "deadline-exceeded", "{error}");
        let next = instance.call_async(RUN, &[]).await.err().ok_or("a poisoned instance answered")?;
        assert_eq!(next.kind(), "poisoned", "{next}");
        Ok(())
    })
}

/// The embedder's side of the p3 actor fixture (`fixtures/guests/rust-p3-actor`):
/// `request` answers after as many milliseconds as the question says, or
/// never for `never`; `numbers` streams its numbers one at a time, holding
/// none of them.
mod actor {
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use runtime::wasmtime::StoreContextMut;
    use runtime::wasmtime::component::{Accessor, Destination, StreamProducer, StreamReader, StreamResult};
    use runtime::{HostPolicy, LoadedComponent, Runtime, StoreState, wasmtime};

    use crate::manifest;

    struct Numbers {
        next: u32,
        end: u32,
    }

    impl<D> StreamProducer<D> for Numbers {
        type Item = u32;
        type Buffer = Option<u32>;

        fn poll_produce<'a>(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: StoreContextMut<'a, D>,
            mut destination: Destination<'a, u32, Option<u32>>,
            _: bool,
        ) -> Poll<wasmtime::Result<StreamResult>> {
            if self.next == self.end {
                return Poll::Ready(Ok(StreamResult::Dropped));
            }
            destination.set_buffer(Some(self.next));
            self.next += 1;
            Poll::Ready(Ok(StreamResult::Completed))
        }
    }

    async fn request(accessor: &Accessor<StoreState<()>>, question: String) -> wasmtime::Result<(String,)> {
        // Marks the host's own work: counted, timed, under the deadline.
        accessor.with(|mut access| {
            StoreState::import_host(access.data_mut());
        });
        match question.parse::<u64>() {
            Ok(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            Err(_) => std::future::pending().await,
        }
        Ok((format!("answer to {question}"),))
    }

    /// The actor fixture under `timeout`, its host linked.
    pub(super) fn load(timeout: &str) -> Result<LoadedComponent, Box<dyn std::error::Error>> {
        let policy = HostPolicy::builder().component_model_async(true).build()?;
        let runtime = Runtime::builder()
            .policy(policy)
            .link(|linker| {
                let mut host = linker.instance("example:p3-actor/host")?;
                host.func_wrap_concurrent("request", |accessor, (question,): (String,)| {
                    Box::pin(request(accessor, question))
                })?;
                host.func_wrap_concurrent("numbers", |accessor, (count,): (u32,)| {
                    Box::pin(async move {
                        let numbers = Numbers { next: 0, end: count };
                        let stream = accessor.with(|mut access| {
                            StoreState::import_host(access.data_mut());
                            StreamReader::new(&mut access, numbers)
                        });
                        Ok((stream?,))
                    })
                })
            })
            .build()?;
        let wasm =
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/guests/rust-p3-actor.wasm");
        let resources = format!("memory = \"4MiB\"\nfuel = 1_000_000_000\ntimeout = \"{timeout}\"");
        Ok(runtime.load_file(wasm, &manifest(&resources, "")?, ".")?)
    }
}

#[test]
fn an_actor_s_messages_await_async_host_imports_at_once_under_its_limits() -> TestResult {
    const HANDLE: &str = "handle-message";
    let message = |text: &str| [Val::String(text.into())];
    let (slow, stream) = (message("ask:700"), message("sum:1000"));
    let component = actor::load("1200ms")?;
    tokio()?.block_on(async {
        let mut actor = component.instantiate_async(()).await?;
        // Two messages that each await the host for 700 ms, and one that
        // reads a host stream, all within one 1.2 s deadline.
        let outcome = actor.call_concurrent_async(&[(HANDLE, &slow), (HANDLE, &slow), (HANDLE, &stream)]).await?;
        let answer = message("asked 700: answer to 700");
        assert_eq!(outcome.results, [answer.clone(), answer, message("sum 499500 of 1000")]);
        assert!(outcome.report.host_calls >= 3, "the host's imports are counted: {}", outcome.report.host_calls);
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    // A host future that never resolves, a stream of 4 billion numbers and
    // a spinning message each end typed within the deadline; each call on
    // an instance of its own, since a stopped call poisons its instance.
    let component = actor::load("300ms")?;
    for (text, kinds) in [
        ("ask:never", &["deadline-exceeded"][..]),
        ("sum:4000000000", &["deadline-exceeded", "out-of-fuel"][..]),
        ("spin", &["deadline-exceeded", "out-of-fuel"][..]),
    ] {
        let error = tokio()?.block_on(async {
            let mut actor = component.instantiate_async(()).await?;
            Ok::<_, Box<dyn std::error::Error>>(actor.call_async(HANDLE, &message(text)).await.err())
        })?;
        let error = error.ok_or(format!("{text}: it returned"))?;
        assert!(kinds.contains(&error.kind()), "{text}: {error}");
    }
    Ok(())
}
