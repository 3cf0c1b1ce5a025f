//! A small HTTP server on a loopback address, on a runtime of its own, so sync and async tests
//! alike can start one (an async test may not block on another runtime). The test servers (the
//! git server, the hosts' API stand-in) are a handler over a shared state on top of this.
#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};

/// A running server; dropping it stops it.
pub struct Loopback {
    pub addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Loopback {
    /// Serves `handle(state, request)` on a free port of `ip` (`127.0.0.1`, `127.0.0.2`).
    pub fn serve<S, F, Fut>(ip: &str, name: &str, state: Arc<S>, handle: F) -> Loopback
    where
        S: Send + Sync + 'static,
        F: Fn(Arc<S>, Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(name)
            .enable_all()
            .build()
            .expect("a runtime");
        // Bound here, served on the server's own runtime.
        let listener = std::net::TcpListener::bind((ip, 0)).expect("a loopback port");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("its address");
        runtime.spawn(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                return;
            };
            while let Ok((stream, _)) = listener.accept().await {
                let (state, handle) = (state.clone(), handle.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Loopback {
            addr,
            runtime: Some(runtime),
        }
    }
}

impl Drop for Loopback {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
