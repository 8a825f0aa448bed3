//! Per-connection deadlines: a connection idle between requests longer than the idle timeout,
//! or whose writes stay blocked longer than the write timeout (a client that sends requests but
//! does not read the answers), is closed. hyper's own header timeout bounds a slow request head.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// Requests of one connection being answered (their response bodies not yet finished); the
/// idle deadline applies only while it is zero.
#[derive(Clone, Debug, Default)]
pub struct Busy(Arc<AtomicUsize>);

impl Busy {
    /// Marks one request as being answered until the returned guard is dropped.
    pub fn enter(&self) -> BusyGuard {
        self.0.fetch_add(1, Ordering::Relaxed);
        BusyGuard(Arc::clone(&self.0))
    }

    fn idle(&self) -> bool {
        self.0.load(Ordering::Relaxed) == 0
    }
}

/// Held while one request is being answered.
#[derive(Debug)]
pub struct BusyGuard(Arc<AtomicUsize>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A stream with an idle deadline on reads and a deadline on blocked writes.
#[derive(Debug)]
pub struct Deadlines<T> {
    io: T,
    busy: Busy,
    idle: Duration,
    write: Duration,
    read_timer: Option<Pin<Box<Sleep>>>,
    write_timer: Option<Pin<Box<Sleep>>>,
}

impl<T> Deadlines<T> {
    /// Wraps `io`.
    pub fn new(io: T, busy: Busy, idle: Duration, write: Duration) -> Deadlines<T> {
        Deadlines {
            io,
            busy,
            idle,
            write,
            read_timer: None,
            write_timer: None,
        }
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what.to_owned())
}

/// Polls the write timer (armed on first use); `Err` once it has expired.
fn check_write(
    timer: &mut Option<Pin<Box<Sleep>>>,
    limit: Duration,
    cx: &mut Context<'_>,
) -> io::Result<()> {
    let t = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
    if t.as_mut().poll(cx).is_ready() {
        return Err(timed_out("write timeout: the client is not reading"));
    }
    Ok(())
}

impl<T: AsyncRead + Unpin> AsyncRead for Deadlines<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = &mut *self;
        match Pin::new(&mut me.io).poll_read(cx, buf) {
            Poll::Ready(r) => {
                me.read_timer = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let idle = me.idle;
                loop {
                    let t = me
                        .read_timer
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                    if t.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    if me.busy.idle() {
                        return Poll::Ready(Err(timed_out("idle timeout")));
                    }
                    // A request is being answered: not idle. Start over.
                    me.read_timer = None;
                }
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Deadlines<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = &mut *self;
        match Pin::new(&mut me.io).poll_write(cx, buf) {
            Poll::Ready(r) => {
                me.write_timer = None;
                Poll::Ready(r)
            }
            Poll::Pending => match check_write(&mut me.write_timer, me.write, cx) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let me = &mut *self;
        match Pin::new(&mut me.io).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                me.write_timer = None;
                Poll::Ready(r)
            }
            Poll::Pending => match check_write(&mut me.write_timer, me.write, cx) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = &mut *self;
        match Pin::new(&mut me.io).poll_flush(cx) {
            Poll::Ready(r) => {
                me.write_timer = None;
                Poll::Ready(r)
            }
            Poll::Pending => match check_write(&mut me.write_timer, me.write, cx) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = &mut *self;
        match Pin::new(&mut me.io).poll_shutdown(cx) {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending => match check_write(&mut me.write_timer, me.write, cx) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }
}
