//! A socket that is either a plain TCP stream or something layered over one (TLS, a proxy
//! tunnel): one type for the three places that need "TCP, or TCP wrapped", with the reads and
//! writes forwarded to whichever it is.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Plain TCP, or `W` over it.
pub(crate) enum TcpOr<W> {
    Tcp(TcpStream),
    Wrapped(W),
}

impl<W: AsyncRead + Unpin> AsyncRead for TcpOr<W> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            TcpOr::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            TcpOr::Wrapped(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for TcpOr<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            TcpOr::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            TcpOr::Wrapped(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            TcpOr::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            TcpOr::Wrapped(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            TcpOr::Tcp(s) => s.is_write_vectored(),
            TcpOr::Wrapped(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            TcpOr::Tcp(s) => Pin::new(s).poll_flush(cx),
            TcpOr::Wrapped(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            TcpOr::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            TcpOr::Wrapped(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
