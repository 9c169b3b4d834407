//! The reference host functions of `wit/host.wit`: log, sleep, and a
//! per-instance key-value store.

use std::collections::BTreeMap;
use std::time::Duration;

use runtime_manifest::HostInterface;
use wasmtime::component::{ComponentType, Lift, Lower};

use crate::AsyncHostRegistry;

/// The WIT interfaces, as components import them.
pub const LOG_INTERFACE: &str = "wasm-runtime:host/log@0.1.0";
/// See [`LOG_INTERFACE`].
pub const TIME_INTERFACE: &str = "wasm-runtime:host/time@0.1.0";
/// See [`LOG_INTERFACE`].
pub const KV_INTERFACE: &str = "wasm-runtime:host/kv@0.1.0";

/// The longest log message kept; longer ones are truncated.
pub const MAX_LOG_MESSAGE_BYTES: usize = 4 * 1024;
/// The most bytes (keys plus values) one instance's key-value store holds.
pub const KV_CAPACITY_BYTES: usize = 64 * 1024;
/// The longest key.
pub const MAX_KV_KEY_BYTES: usize = 256;

/// `wasm-runtime:host/log.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ComponentType, Lift, Lower)]
#[component(enum)]
#[repr(u8)]
pub enum Level {
    /// `trace`
    #[component(name = "trace")]
    Trace,
    /// `debug`
    #[component(name = "debug")]
    Debug,
    /// `info`
    #[component(name = "info")]
    Info,
    /// `warn`
    #[component(name = "warn")]
    Warn,
    /// `error`
    #[component(name = "error")]
    Error,
}

/// One instance's key-value store, kept in its store's extensions.
#[derive(Debug, Default)]
struct KvStore {
    entries: BTreeMap<String, String>,
    bytes: usize,
}

impl KvStore {
    fn set(&mut self, key: String, value: String) -> Result<(), String> {
        if key.len() > MAX_KV_KEY_BYTES {
            return Err(format!("key is {} bytes; the limit is {MAX_KV_KEY_BYTES}", key.len()));
        }
        let old = self.entries.get(&key).map_or(0, |v| key.len() + v.len());
        let new = key.len() + value.len();
        let total = self.bytes - old + new;
        if total > KV_CAPACITY_BYTES {
            return Err(format!("the store would hold {total} bytes; the limit is {KV_CAPACITY_BYTES}"));
        }
        self.bytes = total;
        self.entries.insert(key, value);
        Ok(())
    }
}

impl<T: Send + 'static> AsyncHostRegistry<T> {
    /// A registry with the reference functions of `wit/host.wit`. Each
    /// interface answers only a component whose manifest names it in
    /// `[wasi] host-functions`; for any other, a call does nothing and fails
    /// `capability-denied`.
    pub fn with_reference_functions() -> Self {
        Self::new()
            .func_async(LOG_INTERFACE, "log", |mut store, (level, message): (Level, String)| {
                if store.data_mut().grants_host_interface(HostInterface::Log, LOG_INTERFACE) {
                    log(level, &message);
                }
                Box::new(async { Ok(()) })
            })
            .func_async(TIME_INTERFACE, "sleep", |mut store, (ms,): (u32,)| {
                let granted = store.data_mut().grants_host_interface(HostInterface::Time, TIME_INTERFACE);
                Box::new(async move {
                    if granted {
                        tokio::time::sleep(Duration::from_millis(u64::from(ms))).await;
                    }
                    Ok(())
                })
            })
            .func_async(KV_INTERFACE, "get", |mut store, (key,): (String,)| {
                let state = store.data_mut();
                let value = if state.grants_host_interface(HostInterface::Kv, KV_INTERFACE) {
                    state.with_extension(|kv: &mut KvStore| kv.entries.get(&key).cloned())
                } else {
                    None
                };
                Box::new(async move { Ok((Ok::<_, String>(value),)) })
            })
            .func_async(KV_INTERFACE, "set", |mut store, (key, value): (String, String)| {
                let state = store.data_mut();
                let result = if state.grants_host_interface(HostInterface::Kv, KV_INTERFACE) {
                    state.with_extension(|kv: &mut KvStore| kv.set(key, value))
                } else {
                    Ok(())
                };
                Box::new(async move { Ok((result,)) })
            })
    }
}

fn log(level: Level, message: &str) {
    let mut end = message.len().min(MAX_LOG_MESSAGE_BYTES);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let message = &message[..end];
    match level {
        Level::Trace => tracing::trace!(target: "guest", "{message}"),
        Level::Debug => tracing::debug!(target: "guest", "{message}"),
        Level::Info => tracing::info!(target: "guest", "{message}"),
        Level::Warn => tracing::warn!(target: "guest", "{message}"),
        Level::Error => tracing::error!(target: "guest", "{message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_value_store_holds_up_to_its_cap_and_refuses_past_it() {
        let mut kv = KvStore::default();
        let half = "v".repeat(KV_CAPACITY_BYTES / 2 - 1);
        assert_eq!(kv.set("a".into(), half.clone()), Ok(()));
        assert_eq!(kv.set("b".into(), half.clone()), Ok(()));
        assert_eq!(kv.bytes, KV_CAPACITY_BYTES);
        assert!(kv.set("c".into(), "x".into()).is_err());
        // Replacing a value counts the new size, not both.
        assert_eq!(kv.set("a".into(), "small".into()), Ok(()));
        assert_eq!(kv.bytes, 1 + 5 + 1 + half.len());
        assert!(kv.set("k".repeat(MAX_KV_KEY_BYTES + 1), String::new()).is_err());
        assert_eq!(kv.entries.get("b"), Some(&half));
    }
}
