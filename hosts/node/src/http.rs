//! The node's HTTP endpoint (`--metrics-addr`): `GET /metrics` (Prometheus text)
//! and `GET /outputs/0x<keccak256>.png`, the image outputs posted on chain as their
//! hash ([`crate::outputs`]). A client checks the bytes against the hash on chain
//! (`oracle request --output --fetch-from` does).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::outputs::{parse_name, OutputStore};

/// Path prefix of the image outputs.
pub const OUTPUTS_PATH: &str = "/outputs/";

/// What the endpoint serves.
struct Routes {
    metrics: PrometheusHandle,
    outputs: Option<OutputStore>,
}

/// Install the Prometheus recorder and serve `/metrics` and (with a store)
/// `/outputs/` on `addr`, in the background (call inside the tokio runtime).
/// Returns the bound address (useful with port 0).
pub fn serve(addr: SocketAddr, outputs: Option<OutputStore>) -> Result<SocketAddr> {
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    let listener =
        std::net::TcpListener::bind(addr).with_context(|| format!("listening on {addr}"))?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let upkeep = metrics.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });
    if let Some(store) = &outputs {
        tracing::info!(
            "image outputs from {} on http://{bound}{OUTPUTS_PATH}",
            store.dir().display()
        );
    }
    tracing::info!("metrics on http://{bound}/metrics");
    let routes = Arc::new(Routes { metrics, outputs });
    tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("http: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let routes = routes.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let routes = routes.clone();
                    async move { Ok::<_, Infallible>(routes.answer(&req).await) }
                });
                if let Err(e) = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!("http: connection: {e}");
                }
            });
        }
    });
    Ok(bound)
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
        if path == "/metrics" {
            return reply(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                self.metrics.render(),
            );
        }
        let Some(name) = path.strip_prefix(OUTPUTS_PATH) else {
            return reply(StatusCode::NOT_FOUND, text, "not found\n");
        };
        let (Some(store), Some(hash)) = (&self.outputs, parse_name(name)) else {
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
}
