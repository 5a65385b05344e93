//! `market-streamer probe`: the container's health check without a second binary. One plain
//! HTTP/1.1 `GET /health` over a TCP socket (no TLS, no client library: the endpoint is on
//! the container's loopback), mapped like `health_check --url`: `ok` → `OK` (exit 0),
//! `degraded` → `WARNING` (1), `down`, unreachable or no answer in time → `CRITICAL` (2), an
//! answer that is not health JSON → `UNKNOWN` (3). The first output line starts with the
//! level; the reasons follow, one per line.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// The outcome: exit code and the text to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    pub exit_code: u8,
    pub text: String,
}

impl ProbeResult {
    fn new(level: &str, code: u8, text: String) -> Self {
        Self {
            exit_code: code,
            text: format!("{level} {text}"),
        }
    }
}

/// Why a probe could not get an answer.
#[derive(Debug, thiserror::Error)]
enum ProbeError {
    #[error("--url must look like http://HOST:PORT (plain http), not {0}")]
    BadUrl(String),
    #[error("unreachable ({0})")]
    Io(#[from] std::io::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// Asks `url` (`http://HOST:PORT`, `/health` added when there is no path) within `timeout`.
pub fn probe(url: &str, timeout: Duration) -> ProbeResult {
    match fetch(url, timeout) {
        Ok((code, body)) => judge(code, &body),
        Err(e @ ProbeError::BadUrl(_)) => ProbeResult::new("UNKNOWN", 3, e.to_string()),
        Err(e) => ProbeResult::new("CRITICAL", 2, format!("service at {url}: {e}")),
    }
}

fn fetch(url: &str, timeout: Duration) -> Result<(u16, String), ProbeError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| ProbeError::BadUrl(url.to_string()))?;
    let (host, path) = match rest.find('/') {
        Some(i) if rest.len() > i + 1 => (&rest[..i], &rest[i..]),
        Some(i) => (&rest[..i], "/health"),
        None => (rest, "/health"),
    };
    let started = Instant::now();
    let addr = host
        .to_socket_addrs()
        .map_err(|_| ProbeError::BadUrl(url.to_string()))?
        .next()
        .ok_or_else(|| ProbeError::BadUrl(url.to_string()))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    let left = timeout
        .checked_sub(started.elapsed())
        .filter(|d| !d.is_zero())
        .ok_or(ProbeError::Timeout(timeout))?;
    stream.set_read_timeout(Some(left))?;
    stream.set_write_timeout(Some(left))?;
    // One write: `write!` on a socket sends each formatted piece as its own segment, and a
    // server that answers after the first one would see the rest as a broken pipe.
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAccept: application/json\r\n\r\n"
    );
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    match stream.read_to_end(&mut raw) {
        Ok(_) => {}
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            return Err(ProbeError::Timeout(timeout));
        }
        Err(e) => return Err(e.into()),
    }
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((code, body))
}

/// The body of a chunked response.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Maps an answer to a level.
fn judge(code: u16, body: &str) -> ProbeResult {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(body) else {
        return ProbeResult::new(
            "UNKNOWN",
            3,
            format!("HTTP {code}: the answer is not market-streamer's /health JSON"),
        );
    };
    let reasons: Vec<&str> = json["reasons"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r.as_str()).collect())
        .unwrap_or_default();
    let state = json["stream"]["state"].as_str().unwrap_or("unknown");
    let (level, exit) = match json["status"].as_str() {
        Some("ok") => ("OK", 0),
        Some("degraded") => ("WARNING", 1),
        Some("down") => ("CRITICAL", 2),
        _ => {
            return ProbeResult::new(
                "UNKNOWN",
                3,
                format!("HTTP {code}: no status in the /health answer"),
            );
        }
    };
    let mut text = format!(
        "service: {} (stream {state})",
        json["status"].as_str().unwrap_or("")
    );
    for r in reasons {
        text.push_str("\n  ");
        text.push_str(r);
    }
    ProbeResult::new(level, exit, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_levels() {
        let ok = judge(
            200,
            r#"{"status":"ok","reasons":[],"stream":{"state":"connected"}}"#,
        );
        assert_eq!(ok.exit_code, 0);
        assert!(ok.text.starts_with("OK"), "{}", ok.text);
        let warn = judge(
            200,
            r#"{"status":"degraded","reasons":["run `market-streamer login`"]}"#,
        );
        assert_eq!(warn.exit_code, 1);
        assert!(warn.text.starts_with("WARNING") && warn.text.contains("login"));
        assert_eq!(judge(503, r#"{"status":"down"}"#).exit_code, 2);
        assert_eq!(judge(200, "<html>").exit_code, 3);
        assert_eq!(dechunk("5\r\nhello\r\n1\r\n!\r\n0\r\n\r\n"), "hello!");
    }

    #[test]
    fn unreachable_is_critical_and_a_bad_url_unknown() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr());
        if let Ok(addr) = free {
            let r = probe(&format!("http://{addr}"), Duration::from_secs(2));
            assert_eq!(r.exit_code, 2, "{}", r.text);
        }
        assert_eq!(probe("https://x", Duration::from_secs(1)).exit_code, 3);
    }
}
