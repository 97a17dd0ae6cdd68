//! The node's HTTP listeners, each hardened for a hostile network:
//! - the **node** listener (`--http`, alias `--metrics-addr`; keep it on loopback or
//!   a private network): `GET /metrics` (Prometheus text), the JSON API under
//!   `/api/` ([`crate::api`]) and the web console that reads it at `/`
//!   ([`crate::console`]);
//! - the **outputs** listener (`--outputs-addr`, meant to be public): `GET
//!   /outputs/0x<keccak256>.png`, the image outputs posted on chain as their hash
//!   ([`crate::serve::outputs`]). A client checks the bytes against the hash on chain
//!   (`oracle request --output --fetch-from` does).
//!
//! Every listener caps its open connections (a connection over the cap is closed at
//! once, so a flood cannot exhaust the process's file descriptors, which the node
//! needs for its RPC connections), gives a client [`Limits::header_timeout`] to send
//! its request head and [`Limits::connection_timeout`] in all, and answers GET only.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::sync::Semaphore;

use crate::api::{Api, API_PATH};
use crate::serve::outputs::{parse_name, OutputStore};

/// Path prefix of the image outputs.
pub const OUTPUTS_PATH: &str = "/outputs/";

/// What one listener tolerates from its clients.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections open at once; more are closed on accept.
    pub max_connections: usize,
    /// Time to send the request head (slow-loris clients are dropped after it).
    pub header_timeout: Duration,
    /// Time a connection may stay open in all (keep-alive included).
    pub connection_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            header_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(30),
        }
    }
}

/// What a listener serves.
#[derive(Clone)]
enum Routes {
    Node {
        metrics: PrometheusHandle,
        api: Option<Arc<Api>>,
    },
    Outputs(OutputStore),
}

/// The process's Prometheus recorder (installed once, on first use).
fn metrics_handle() -> Result<PrometheusHandle> {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// Serve `/metrics` and, given a node's `api`, `/api/` on `addr` in the background
/// (call inside the tokio runtime); returns the bound address (useful with port 0).
pub fn serve_node(addr: SocketAddr, api: Option<Api>, limits: Limits) -> Result<SocketAddr> {
    let with_api = api.is_some();
    let routes = Routes::Node {
        metrics: metrics_handle()?,
        api: api.map(Arc::new),
    };
    let bound = listen(addr, routes, limits)?;
    tracing::info!("metrics on http://{bound}/metrics");
    if with_api {
        tracing::info!("JSON API on http://{bound}{API_PATH}status");
    }
    Ok(bound)
}

/// Serve the image outputs of `store` on `addr` in the background; returns the
/// bound address.
pub fn serve_outputs(addr: SocketAddr, store: OutputStore, limits: Limits) -> Result<SocketAddr> {
    let dir = store.dir().display().to_string();
    let bound = listen(addr, Routes::Outputs(store), limits)?;
    tracing::info!("image outputs from {dir} on http://{bound}{OUTPUTS_PATH}");
    Ok(bound)
}

/// Bind `addr` and run the accept loop with `limits`.
fn listen(addr: SocketAddr, routes: Routes, limits: Limits) -> Result<SocketAddr> {
    let listener =
        std::net::TcpListener::bind(addr).with_context(|| format!("listening on {addr}"))?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    tokio::spawn(async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    // e.g. EMFILE: back off instead of spinning.
                    tracing::warn!("http {bound}: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                metrics::counter!("oracle_http_refused_total").increment(1);
                tracing::debug!(
                    "http {bound}: {peer} refused: {} connections open",
                    limits.max_connections
                );
                drop(stream);
                continue;
            };
            let routes = routes.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let routes = routes.clone();
                    async move { Ok::<_, Infallible>(routes.answer(&req).await) }
                });
                let conn = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(limits.header_timeout)
                    .serve_connection(TokioIo::new(stream), service);
                match tokio::time::timeout(limits.connection_timeout, conn).await {
                    Ok(Err(e)) => tracing::debug!("http: {peer}: {e}"),
                    Err(_) => tracing::debug!("http: {peer}: connection timed out"),
                    Ok(Ok(())) => {}
                }
                drop(slot);
            });
        }
    });
    Ok(bound)
}

/// Shared bytes served without a copy.
struct Shared(Arc<Vec<u8>>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

impl Routes {
    async fn answer<B>(&self, req: &Request<B>) -> Response<Full<Bytes>> {
        let text = "text/plain; charset=utf-8";
        if req.method() != Method::GET {
            return reply(StatusCode::METHOD_NOT_ALLOWED, text, "GET only\n");
        }
        let path = req.uri().path();
        if let Routes::Node { api: Some(api), .. } = self {
            if let Some((content_type, body)) = crate::console::asset(path) {
                let mut r = reply(StatusCode::OK, content_type, body);
                if let Ok(csp) = hyper::header::HeaderValue::from_str(&api.csp()) {
                    r.headers_mut()
                        .insert(hyper::header::CONTENT_SECURITY_POLICY, csp);
                }
                return r;
            }
            if path == crate::console::ASK_PATH {
                return match &api.ask {
                    Some(module) => reply(
                        StatusCode::OK,
                        "text/javascript; charset=utf-8",
                        Bytes::from_owner(Shared(module.clone())),
                    ),
                    None => reply(
                        StatusCode::NOT_FOUND,
                        "application/json",
                        serde_json::json!({ "error": "this node has no chain module (build it: bash hosts/node/console/build.sh, or give --console-ask)" })
                        .to_string(),
                    ),
                };
            }
            if path == crate::console::WASM_PATH {
                return match &api.wasm {
                    Some(wasm) => reply(
                        StatusCode::OK,
                        "application/wasm",
                        Bytes::from_owner(Shared(wasm.clone())),
                    ),
                    None => reply(
                        StatusCode::NOT_FOUND,
                        "application/json",
                        serde_json::json!({ "error": "this node has no WebAssembly module (build it: cargo build -p oracle-wasm --release --target wasm32-unknown-unknown, or give --console-wasm)" })
                        .to_string(),
                    ),
                };
            }
            if let Some(bytes) = api.model_file(path) {
                return reply(
                    StatusCode::OK,
                    "application/octet-stream",
                    Bytes::from_owner(Shared(bytes)),
                );
            }
        }
        match self {
            Routes::Node { metrics, .. } if path == "/metrics" => reply(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                metrics.render(),
            ),
            Routes::Node { api: Some(api), .. } if path.starts_with(API_PATH) => {
                let api = api.clone();
                let (path, query) = (path.to_string(), req.uri().query().map(str::to_string));
                let answer =
                    tokio::task::spawn_blocking(move || api.answer(&path, query.as_deref())).await;
                let (status, body) = answer.unwrap_or_else(|_| {
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        serde_json::json!({ "error": "the API task failed" }),
                    )
                });
                let mut r = reply(status, "application/json", body.to_string());
                r.headers_mut().insert(
                    hyper::header::CACHE_CONTROL,
                    hyper::header::HeaderValue::from_static("no-store"),
                );
                r
            }
            Routes::Node { api: Some(api), .. }
                if path.starts_with(OUTPUTS_PATH) && api.outputs.is_some() =>
            {
                match &api.outputs {
                    Some(store) => serve_output(store, path).await,
                    None => reply(StatusCode::NOT_FOUND, text, "no such output\n"),
                }
            }
            Routes::Outputs(store) => serve_output(store, path).await,
            Routes::Node { .. } => reply(StatusCode::NOT_FOUND, text, "not found\n"),
        }
    }
}

/// `GET /outputs/0x<keccak256>.png` from `store`.
async fn serve_output(store: &OutputStore, path: &str) -> Response<Full<Bytes>> {
    let text = "text/plain; charset=utf-8";
    let Some(hash) = path.strip_prefix(OUTPUTS_PATH).and_then(parse_name) else {
        return reply(StatusCode::NOT_FOUND, text, "no such output\n");
    };
    let store = store.clone();
    let found = tokio::task::spawn_blocking(move || store.get(&hash)).await;
    match found {
        Ok(Ok(Some(png))) => reply(StatusCode::OK, "image/png", png),
        Ok(Ok(None)) => reply(StatusCode::NOT_FOUND, text, "no such output\n"),
        Ok(Err(e)) => {
            tracing::warn!("http: {path}: {e:#}");
            reply(StatusCode::INTERNAL_SERVER_ERROR, text, "read error\n")
        }
        Err(_) => reply(StatusCode::INTERNAL_SERVER_ERROR, text, "read error\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// 600 clients that open a connection and send half a request head cannot take
    /// the listener down: connections over the cap are closed at once (the process
    /// keeps its file descriptors), the slow ones are dropped after the header
    /// timeout, and a real client is answered again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_of_half_open_connections_is_capped_and_timed_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = OutputStore::new(dir.path().to_path_buf());
        let png = b"\x89PNG fake".to_vec();
        let hash = store.put(&png).unwrap();
        let limits = Limits {
            max_connections: 64,
            header_timeout: Duration::from_millis(500),
            connection_timeout: Duration::from_secs(3),
        };
        let addr = serve_outputs("127.0.0.1:0".parse().unwrap(), store, limits).unwrap();
        let fds_before = open_fds();
        let mut slow = Vec::new();
        for _ in 0..600 {
            if let Ok(mut s) = tokio::net::TcpStream::connect(addr).await {
                let _ = s.write_all(b"GET /outputs/").await;
                slow.push(s);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        // Our side holds at most the cap (plus the listener's own), not 600.
        let held = open_fds()
            .saturating_sub(fds_before)
            .saturating_sub(slow.len());
        assert!(
            held <= 64 + 8,
            "the server holds {held} descriptors for 600 clients"
        );
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let path = format!("{OUTPUTS_PATH}{}", crate::serve::outputs::file_name(&hash));
        let answer = get(addr, &path).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("PNG fake"), "{answer}");
        let missing = get(addr, "/outputs/../../etc/passwd").await.unwrap();
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
        drop(slow);
    }

    /// File descriptors open in this process.
    fn open_fds() -> usize {
        std::fs::read_dir("/proc/self/fd")
            .map(|d| d.count())
            .unwrap_or(0)
    }
}
