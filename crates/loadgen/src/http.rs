//! The HTTP/1.1 client side shared by the load modes: one keep-alive connection per
//! client, requests sent back to back.

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::Request;
use hyper_util::rt::TokioIo;

/// Where requests go: the `host:port` to connect to and the base path (no trailing `/`).
#[derive(Debug)]
pub struct Target {
    pub host: String,
    pub path: String,
    /// `Bearer <token>`, sent with every request when given.
    pub authorization: Option<String>,
}

/// The target of `base`, sending `token` (an access token, e.g. from `oxehr token
/// issue`) as a bearer token.
pub fn parse_base(base: &str, token: Option<&str>) -> Result<Target> {
    let rest = base
        .strip_prefix("http://")
        .context("--base must be an http:// URL")?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let path = path.trim_end_matches('/');
    Ok(Target {
        authorization: token.map(|t| format!("Bearer {}", t.trim())),
        host: host.to_string(),
        path: if path.is_empty() {
            String::new()
        } else {
            format!("/{path}")
        },
    })
}

pub type Sender = http1::SendRequest<Full<Bytes>>;

pub async fn connect(host: &str) -> Result<Sender> {
    let stream = tokio::net::TcpStream::connect(host)
        .await
        .with_context(|| format!("connecting to {host}"))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Sends one request and reads the whole answer.
pub async fn send(sender: &mut Sender, req: Request<Full<Bytes>>) -> Result<(u16, Bytes)> {
    let (status, _, body) = send_full(sender, req).await?;
    Ok((status, body))
}

/// Sends one request and reads the whole answer, with its headers.
pub async fn send_full(
    sender: &mut Sender,
    req: Request<Full<Bytes>>,
) -> Result<(u16, hyper::HeaderMap, Bytes)> {
    sender.ready().await?;
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let (parts, body) = resp.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok((status, parts.headers, body))
}

/// A request builder for `method` on `path_and_query` (starting with `/`) below the base
/// path, with the host and the credentials.
pub fn request(
    t: &Target,
    method: hyper::Method,
    path_and_query: &str,
) -> hyper::http::request::Builder {
    let mut b = Request::builder()
        .method(method)
        .uri(format!("{}{}", t.path, path_and_query))
        .header("host", &t.host);
    if let Some(a) = &t.authorization {
        b = b.header("authorization", a);
    }
    b
}

/// A GET of `path_and_query` (starting with `/`) below the base path.
pub fn get(t: &Target, path_and_query: &str) -> Result<Request<Full<Bytes>>> {
    Ok(request(t, hyper::Method::GET, path_and_query)
        .header("accept", "application/fhir+json")
        .body(Full::new(Bytes::new()))?)
}

/// A small xorshift generator: choosing what to request needs no cryptographic
/// randomness.
pub struct Rng(pub u64);

impl Rng {
    pub fn seeded(seed: u64) -> Rng {
        // Never zero (xorshift's fixed point).
        Rng(splitmix(seed) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// SplitMix64's output function: a good 64-bit mixer.
pub fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Latency percentile in milliseconds of sorted microsecond samples (`p` in 0..=1).
pub fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let i = ((sorted_us.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted_us[i]) / 1000.0
}

pub fn micros_since(start: std::time::Instant) -> u32 {
    start.elapsed().as_micros().min(u128::from(u32::MAX)) as u32
}
