//! Plain HTTP for the auditor: fetching the public tiles and posting
//! monitor alarms, with hyper's client (already in the build through tonic
//! and axum), `http://` only, every exchange bounded in time.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// How long one request and its whole answer may take.
const EXCHANGE_MAX: Duration = Duration::from_secs(30);

/// An HTTP/1.1 client for `http://` URLs.
#[derive(Clone, Debug)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Http {
    pub fn new() -> Self {
        Http {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// GET `url`: the status and the whole body.
    pub async fn get(&self, url: &str) -> Result<(u16, Bytes)> {
        let request = http::Request::get(checked(url)?)
            .header(http::header::USER_AGENT, "aidctl-audit")
            .body(Full::new(Bytes::new()))
            .with_context(|| format!("GET {url}"))?;
        self.exchange(url, request).await
    }

    /// POST `body` as JSON to `url`; anything but a 2xx is an error.
    pub async fn post_json(&self, url: &str, body: &serde_json::Value) -> Result<()> {
        let request = http::Request::post(checked(url)?)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::USER_AGENT, "aidctl-audit-monitor")
            .body(Full::new(Bytes::from(body.to_string())))
            .with_context(|| format!("POST {url}"))?;
        let (status, _) = self.exchange(url, request).await?;
        if !(200..300).contains(&status) {
            bail!("{url} answered HTTP {status}");
        }
        Ok(())
    }

    async fn exchange(
        &self,
        url: &str,
        request: http::Request<Full<Bytes>>,
    ) -> Result<(u16, Bytes)> {
        let exchange = async {
            let response = self.client.request(request).await?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, body))
        };
        tokio::time::timeout(EXCHANGE_MAX, exchange)
            .await
            .with_context(|| format!("{url}: no answer within {EXCHANGE_MAX:?}"))?
            .with_context(|| url.to_owned())
    }
}

fn checked(url: &str) -> Result<http::Uri> {
    if !url.starts_with("http://") {
        bail!("{url:?}: only http:// URLs are supported (put a local relay or proxy in front)");
    }
    url.parse().with_context(|| format!("{url:?} is not a URL"))
}
