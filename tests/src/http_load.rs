//! An HTTP/1.1 load generator for the benchmarks: keep-alive connections
//! on plain TCP, so the client's own cost stays small beside the server's.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// One keep-alive connection's GET, returning the status and body length.
pub async fn get(
    stream: &mut BufReader<TcpStream>,
    request: &[u8],
    body: &mut Vec<u8>,
) -> std::io::Result<u16> {
    stream.get_mut().write_all(request).await?;
    let mut line = String::new();
    stream.read_line(&mut line).await?;
    let status: u16 = line
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut length = None;
    loop {
        line.clear();
        stream.read_line(&mut line).await?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse::<usize>().ok();
        }
    }
    let length = length.ok_or_else(|| std::io::Error::other("the answer has no content-length"))?;
    body.resize(length, 0);
    stream.read_exact(body).await?;
    Ok(status)
}

/// What a load round measured.
#[derive(Debug)]
pub struct Load {
    /// Answers received.
    pub requests: u64,
    pub elapsed: Duration,
    /// Each answer's latency, sorted.
    pub latencies: Vec<Duration>,
    /// Body bytes received.
    pub bytes: u64,
}

impl Load {
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

/// `readers` concurrent keep-alive connections each ask for `path` as fast
/// as they are answered, for `duration`; every answer must be 200.
pub async fn load(addr: SocketAddr, path: &str, readers: usize, duration: Duration) -> Load {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").into_bytes();
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for _ in 0..readers {
        let request = request.clone();
        let path = path.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut stream = BufReader::new(TcpStream::connect(addr).await.unwrap());
            let mut latencies = Vec::new();
            let mut body = Vec::new();
            let mut bytes = 0u64;
            while Instant::now() < deadline {
                let sent = Instant::now();
                let status = get(&mut stream, &request, &mut body).await.unwrap();
                assert_eq!(status, 200, "GET {path}");
                latencies.push(sent.elapsed());
                bytes += body.len() as u64;
            }
            (latencies, bytes)
        }));
    }
    let mut latencies = Vec::new();
    let mut bytes = 0;
    for task in tasks {
        let (mine, b) = task.await.unwrap();
        latencies.extend(mine);
        bytes += b;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Load {
        requests: latencies.len() as u64,
        elapsed,
        latencies,
        bytes,
    }
}

/// The `p` quantile (0 to 1) of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One GET on a fresh connection: its status and body.
pub async fn get_once(addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
    let mut stream = BufReader::new(TcpStream::connect(addr).await.unwrap());
    let mut body = Vec::new();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let status = get(&mut stream, request.as_bytes(), &mut body)
        .await
        .unwrap();
    (status, body)
}

/// One GET on a fresh connection, its body read as JSON; panics unless the
/// answer is 200.
pub async fn get_json(addr: SocketAddr, path: &str) -> serde_json::Value {
    let (status, body) = get_once(addr, path).await;
    assert_eq!(status, 200, "GET {path}");
    serde_json::from_slice(&body).unwrap()
}

/// The code of the commune with the most deliveries, by the feed's API:
/// its page is the biggest.
pub async fn busiest_commune(addr: SocketAddr) -> String {
    let communes = get_json(addr, "/api/v1/communes").await;
    communes["items"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|c| c["deliveries"].as_u64())
        .unwrap()["commune_code"]
        .as_str()
        .unwrap()
        .to_owned()
}
