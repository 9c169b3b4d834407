//! Sockets under the instance's descriptor cap: creating a socket and
//! accepting a connection both take a descriptor, so at the cap both fail
//! as an OS out of descriptors fails (`new-socket-limit`); a connection not
//! accepted stays in the kernel's backlog. Everything else is
//! wasmtime-wasi's own code, delegated.

pub(crate) mod p3;

use wasmtime::component::{HasData, Resource};
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddressFamily, IpSocketAddress, Network};
use wasmtime_wasi::p2::bindings::sockets::{network, tcp, tcp_create_socket, udp_create_socket};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable, SocketResult, TcpSocket, UdpSocket};
use wasmtime_wasi::sockets::WasiSocketsCtxView;

use crate::fs::DiskState;

/// The `HasData` of the capped socket interfaces.
pub(super) struct CappedSockets;

impl HasData for CappedSockets {
    type Data<'a> = CappedSocketsView<'a>;
}

pub(super) struct CappedSocketsView<'a> {
    pub(super) inner: WasiSocketsCtxView<'a>,
    /// The instance's files, for counting its descriptors.
    pub(super) disk: &'a mut DiskState,
    /// Its outgoing HTTP requests in flight, each a socket.
    pub(super) in_flight: usize,
}

impl CappedSocketsView<'_> {
    /// Counted only where a descriptor is taken: the other socket calls
    /// (`subscribe` in every poll loop among them) pay nothing.
    fn take_descriptor(&mut self) -> SocketResult<()> {
        if self.at_cap() { Err(ErrorCode::NewSocketLimit.into()) } else { Ok(()) }
    }

    fn at_cap(&mut self) -> bool {
        self.disk.at_cap(self.inner.table, self.in_flight)
    }
}

impl network::Host for CappedSocketsView<'_> {
    fn convert_error_code(&mut self, error: wasmtime_wasi::p2::SocketError) -> wasmtime::Result<ErrorCode> {
        network::Host::convert_error_code(&mut self.inner, error)
    }

    fn network_error_code(&mut self, error: Resource<wasmtime::Error>) -> wasmtime::Result<Option<ErrorCode>> {
        network::Host::network_error_code(&mut self.inner, error)
    }
}

impl network::HostNetwork for CappedSocketsView<'_> {
    fn drop(&mut self, network: Resource<Network>) -> wasmtime::Result<()> {
        network::HostNetwork::drop(&mut self.inner, network)
    }
}

impl tcp_create_socket::Host for CappedSocketsView<'_> {
    fn create_tcp_socket(&mut self, family: IpAddressFamily) -> SocketResult<Resource<TcpSocket>> {
        self.take_descriptor()?;
        tcp_create_socket::Host::create_tcp_socket(&mut self.inner, family)
    }
}

impl udp_create_socket::Host for CappedSocketsView<'_> {
    async fn create_udp_socket(&mut self, family: IpAddressFamily) -> SocketResult<Resource<UdpSocket>> {
        self.take_descriptor()?;
        udp_create_socket::Host::create_udp_socket(&mut self.inner, family).await
    }
}

impl tcp::Host for CappedSocketsView<'_> {}

/// Delegates `HostTcpSocket` methods to wasmtime-wasi unchanged.
macro_rules! delegate {
    ($( fn $name:ident(&mut self, this: Resource<TcpSocket> $(, $arg:ident: $ty:ty)*) -> $ret:ty; )*) => {
        $(
            fn $name(&mut self, this: Resource<TcpSocket> $(, $arg: $ty)*) -> $ret {
                tcp::HostTcpSocket::$name(&mut self.inner, this $(, $arg)*)
            }
        )*
    };
}

impl tcp::HostTcpSocket for CappedSocketsView<'_> {
    async fn start_bind(
        &mut self,
        this: Resource<TcpSocket>,
        network: Resource<Network>,
        local_address: IpSocketAddress,
    ) -> SocketResult<()> {
        tcp::HostTcpSocket::start_bind(&mut self.inner, this, network, local_address).await
    }

    async fn start_listen(&mut self, this: Resource<TcpSocket>) -> SocketResult<()> {
        tcp::HostTcpSocket::start_listen(&mut self.inner, this).await
    }

    fn accept(
        &mut self,
        this: Resource<TcpSocket>,
    ) -> SocketResult<(Resource<TcpSocket>, Resource<DynInputStream>, Resource<DynOutputStream>)> {
        self.take_descriptor()?;
        tcp::HostTcpSocket::accept(&mut self.inner, this)
    }

    delegate! {
        fn finish_bind(&mut self, this: Resource<TcpSocket>) -> SocketResult<()>;
        fn start_connect(&mut self, this: Resource<TcpSocket>, network: Resource<Network>, remote: IpSocketAddress) -> SocketResult<()>;
        fn finish_connect(&mut self, this: Resource<TcpSocket>) -> SocketResult<(Resource<DynInputStream>, Resource<DynOutputStream>)>;
        fn finish_listen(&mut self, this: Resource<TcpSocket>) -> SocketResult<()>;
        fn local_address(&mut self, this: Resource<TcpSocket>) -> SocketResult<IpSocketAddress>;
        fn remote_address(&mut self, this: Resource<TcpSocket>) -> SocketResult<IpSocketAddress>;
        fn is_listening(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<bool>;
        fn address_family(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<IpAddressFamily>;
        fn set_listen_backlog_size(&mut self, this: Resource<TcpSocket>, value: u64) -> SocketResult<()>;
        fn keep_alive_enabled(&mut self, this: Resource<TcpSocket>) -> SocketResult<bool>;
        fn set_keep_alive_enabled(&mut self, this: Resource<TcpSocket>, value: bool) -> SocketResult<()>;
        fn keep_alive_idle_time(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64>;
        fn set_keep_alive_idle_time(&mut self, this: Resource<TcpSocket>, value: u64) -> SocketResult<()>;
        fn keep_alive_interval(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64>;
        fn set_keep_alive_interval(&mut self, this: Resource<TcpSocket>, value: u64) -> SocketResult<()>;
        fn keep_alive_count(&mut self, this: Resource<TcpSocket>) -> SocketResult<u32>;
        fn set_keep_alive_count(&mut self, this: Resource<TcpSocket>, value: u32) -> SocketResult<()>;
        fn hop_limit(&mut self, this: Resource<TcpSocket>) -> SocketResult<u8>;
        fn set_hop_limit(&mut self, this: Resource<TcpSocket>, value: u8) -> SocketResult<()>;
        fn receive_buffer_size(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64>;
        fn set_receive_buffer_size(&mut self, this: Resource<TcpSocket>, value: u64) -> SocketResult<()>;
        fn send_buffer_size(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64>;
        fn set_send_buffer_size(&mut self, this: Resource<TcpSocket>, value: u64) -> SocketResult<()>;
        fn subscribe(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<Resource<DynPollable>>;
        fn shutdown(&mut self, this: Resource<TcpSocket>, how: tcp::ShutdownType) -> SocketResult<()>;
        fn drop(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<()>;
    }
}
