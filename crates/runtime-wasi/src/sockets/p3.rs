//! `wasi:sockets@0.3` under the descriptor cap of its 0.2 twin: creating a
//! TCP or UDP socket at the cap fails `new-socket-limit`. Accepting is
//! different in 0.3: the listener's stream pushes each connection into the
//! table itself (wasmtime-wasi 48 gives a wrapper no say in it), so a
//! connection accepted at the cap finds a table that holds nothing, and the
//! instance stops `handle-limit-exceeded`: never past its cap. Everything
//! else is wasmtime-wasi's own code, reached through
//! [`Accessor::with_getter`] with the grant's gate on it.

use wasmtime::AsContextMut as _;
use wasmtime::component::{Access, Accessor, FutureReader, HasData, Resource, StreamReader};
use wasmtime_wasi::p3::bindings::sockets::types::{self, Duration, ErrorCode, IpAddressFamily, IpSocketAddress};
use wasmtime_wasi::p3::sockets::{SocketError, SocketResult};
use wasmtime_wasi::sockets::{TcpSocket, UdpSocket, WasiSockets, WasiSocketsCtxView};

use super::CappedSocketsView;
use crate::fs::borrow;
use runtime_core::StoreState;

/// The `HasData` of the capped 0.3 socket interfaces.
pub(crate) struct CappedSocketsP3;

impl HasData for CappedSocketsP3 {
    type Data<'a> = CappedSocketsView<'a>;
}

const AT_CAP: &str = "too many open descriptors: the instance is at its descriptor cap";

type Store<T> = Accessor<StoreState<T>, CappedSocketsP3>;

/// wasmtime-wasi's own 0.3 sockets host, gated like every call.
fn plain<T: 'static>(store: &Store<T>) -> Accessor<StoreState<T>, WasiSockets> {
    store.with_getter::<WasiSockets>(crate::p3::plain_sockets::<T>)
}

fn plain_access<'a, T: 'static>(
    store: &'a mut Access<'_, StoreState<T>, CappedSocketsP3>,
    getter: fn(&mut StoreState<T>) -> WasiSocketsCtxView<'_>,
) -> Access<'a, StoreState<T>, WasiSockets> {
    Access::<StoreState<T>, WasiSockets>::new(store.as_context_mut(), getter)
}

/// The loopback address an unbound `socket` that listens is bound to first
/// under a loopback-only grant ([`crate::implicit_listen_address`]).
fn implicit_bind<T: 'static>(
    store: &mut Access<'_, StoreState<T>, CappedSocketsP3>,
    socket: &Resource<TcpSocket>,
) -> Option<std::net::SocketAddr> {
    let network = &store.data_mut().capabilities().layer::<crate::WasiGrants>()?.config().network.clone();
    let mut view = store.get();
    let unbound = types::HostTcpSocket::get_local_address(&mut view.inner, borrow(socket)).is_err();
    let family = types::HostTcpSocket::get_address_family(&mut view.inner, borrow(socket)).ok()?;
    let ipv6 = matches!(family, IpAddressFamily::Ipv6);
    unbound.then(|| crate::implicit_listen_address(network, ipv6)).flatten()
}

impl CappedSocketsView<'_> {
    /// 0.3 has no `new-socket-limit`: an OS out of descriptors (`EMFILE`)
    /// is `other` there, so the cap says so, and why.
    fn take_descriptor_p3(&mut self) -> SocketResult<()> {
        match self.at_cap() {
            true => Err(ErrorCode::Other(Some(AT_CAP.to_owned())).into()),
            false => Ok(()),
        }
    }
}

impl types::Host for CappedSocketsView<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        error.downcast()
    }
}

impl<T: Send + 'static> types::HostTcpSocketWithStore<StoreState<T>> for CappedSocketsP3 {
    async fn connect(store: &Store<T>, socket: Resource<TcpSocket>, remote: IpSocketAddress) -> SocketResult<()> {
        WasiSockets::connect(&plain(store), socket, remote).await
    }

    async fn listen(
        mut store: Access<'_, StoreState<T>, Self>,
        socket: Resource<TcpSocket>,
    ) -> SocketResult<StreamReader<Resource<TcpSocket>>> {
        // At the cap a listener would have nowhere to put a connection.
        store.get().take_descriptor_p3()?;
        if let Some(loopback) = implicit_bind(&mut store, &socket) {
            types::HostTcpSocket::bind(&mut store.get().inner, borrow(&socket), loopback.into()).await?;
        }
        let rep = socket.rep();
        let accepts = WasiSockets::listen(plain_access(&mut store, crate::p3::accepting_sockets::<T>), socket).await?;
        store.get().disk.socket_streamed(rep);
        Ok(accepts)
    }

    fn send(
        mut store: Access<'_, StoreState<T>, Self>,
        socket: Resource<TcpSocket>,
        data: StreamReader<u8>,
    ) -> wasmtime::Result<FutureReader<Result<(), ErrorCode>>> {
        store.get().disk.socket_streamed(socket.rep());
        <WasiSockets as types::HostTcpSocketWithStore<StoreState<T>>>::send(
            plain_access(&mut store, crate::p3::plain_sockets::<T>),
            socket,
            data,
        )
    }

    fn receive(
        mut store: Access<'_, StoreState<T>, Self>,
        socket: Resource<TcpSocket>,
    ) -> wasmtime::Result<(StreamReader<u8>, FutureReader<Result<(), ErrorCode>>)> {
        store.get().disk.socket_streamed(socket.rep());
        <WasiSockets as types::HostTcpSocketWithStore<StoreState<T>>>::receive(
            plain_access(&mut store, crate::p3::plain_sockets::<T>),
            socket,
        )
    }
}

impl<T: Send + 'static> types::HostUdpSocketWithStore<StoreState<T>> for CappedSocketsP3 {
    async fn send(
        store: &Store<T>,
        socket: Resource<UdpSocket>,
        data: Vec<u8>,
        remote: Option<IpSocketAddress>,
    ) -> SocketResult<()> {
        <WasiSockets as types::HostUdpSocketWithStore<StoreState<T>>>::send(&plain(store), socket, data, remote).await
    }

    async fn receive(store: &Store<T>, socket: Resource<UdpSocket>) -> SocketResult<(Vec<u8>, IpSocketAddress)> {
        <WasiSockets as types::HostUdpSocketWithStore<StoreState<T>>>::receive(&plain(store), socket).await
    }
}

/// Delegates socket methods to wasmtime-wasi unchanged.
macro_rules! delegate {
    ($trait:ident, $socket:ty; $( fn $name:ident(&mut self, socket $(, $arg:ident: $ty:ty)*) -> $ret:ty; )*) => {
        $(
            fn $name(&mut self, socket: Resource<$socket> $(, $arg: $ty)*) -> $ret {
                types::$trait::$name(&mut self.inner, socket $(, $arg)*)
            }
        )*
    };
}

impl types::HostTcpSocket for CappedSocketsView<'_> {
    fn create(&mut self, family: IpAddressFamily) -> SocketResult<Resource<TcpSocket>> {
        self.take_descriptor_p3()?;
        types::HostTcpSocket::create(&mut self.inner, family)
    }

    async fn bind(&mut self, socket: Resource<TcpSocket>, local: IpSocketAddress) -> SocketResult<()> {
        types::HostTcpSocket::bind(&mut self.inner, socket, local).await
    }

    delegate! { HostTcpSocket, TcpSocket;
        fn get_local_address(&mut self, socket) -> SocketResult<IpSocketAddress>;
        fn get_remote_address(&mut self, socket) -> SocketResult<IpSocketAddress>;
        fn get_is_listening(&mut self, socket) -> wasmtime::Result<bool>;
        fn get_address_family(&mut self, socket) -> wasmtime::Result<IpAddressFamily>;
        fn set_listen_backlog_size(&mut self, socket, value: u64) -> SocketResult<()>;
        fn get_keep_alive_enabled(&mut self, socket) -> SocketResult<bool>;
        fn set_keep_alive_enabled(&mut self, socket, value: bool) -> SocketResult<()>;
        fn get_keep_alive_idle_time(&mut self, socket) -> SocketResult<Duration>;
        fn set_keep_alive_idle_time(&mut self, socket, value: Duration) -> SocketResult<()>;
        fn get_keep_alive_interval(&mut self, socket) -> SocketResult<Duration>;
        fn set_keep_alive_interval(&mut self, socket, value: Duration) -> SocketResult<()>;
        fn get_keep_alive_count(&mut self, socket) -> SocketResult<u32>;
        fn set_keep_alive_count(&mut self, socket, value: u32) -> SocketResult<()>;
        fn get_hop_limit(&mut self, socket) -> SocketResult<u8>;
        fn set_hop_limit(&mut self, socket, value: u8) -> SocketResult<()>;
        fn get_receive_buffer_size(&mut self, socket) -> SocketResult<u64>;
        fn set_receive_buffer_size(&mut self, socket, value: u64) -> SocketResult<()>;
        fn get_send_buffer_size(&mut self, socket) -> SocketResult<u64>;
        fn set_send_buffer_size(&mut self, socket, value: u64) -> SocketResult<()>;
    }

    /// A socket whose stream the guest took is kept, still counted, until
    /// the instance ends: the stream may hold the OS socket open.
    fn drop(&mut self, socket: Resource<TcpSocket>) -> wasmtime::Result<()> {
        if !self.disk.socket_outlives_handle(socket.rep()) {
            return types::HostTcpSocket::drop(&mut self.inner, socket);
        }
        let kept = self.inner.table.delete(socket)?;
        self.disk.keep_socket(kept);
        Ok(())
    }
}

impl types::HostUdpSocket for CappedSocketsView<'_> {
    async fn create(&mut self, family: IpAddressFamily) -> SocketResult<Resource<UdpSocket>> {
        self.take_descriptor_p3()?;
        types::HostUdpSocket::create(&mut self.inner, family).await
    }

    async fn bind(&mut self, socket: Resource<UdpSocket>, local: IpSocketAddress) -> SocketResult<()> {
        types::HostUdpSocket::bind(&mut self.inner, socket, local).await
    }

    async fn connect(&mut self, socket: Resource<UdpSocket>, remote: IpSocketAddress) -> SocketResult<()> {
        types::HostUdpSocket::connect(&mut self.inner, socket, remote).await
    }

    delegate! { HostUdpSocket, UdpSocket;
        fn disconnect(&mut self, socket) -> SocketResult<()>;
        fn get_local_address(&mut self, socket) -> SocketResult<IpSocketAddress>;
        fn get_remote_address(&mut self, socket) -> SocketResult<IpSocketAddress>;
        fn get_address_family(&mut self, socket) -> wasmtime::Result<IpAddressFamily>;
        fn get_unicast_hop_limit(&mut self, socket) -> SocketResult<u8>;
        fn set_unicast_hop_limit(&mut self, socket, value: u8) -> SocketResult<()>;
        fn get_receive_buffer_size(&mut self, socket) -> SocketResult<u64>;
        fn set_receive_buffer_size(&mut self, socket, value: u64) -> SocketResult<()>;
        fn get_send_buffer_size(&mut self, socket) -> SocketResult<u64>;
        fn set_send_buffer_size(&mut self, socket, value: u64) -> SocketResult<()>;
        fn drop(&mut self, socket) -> wasmtime::Result<()>;
    }
}
