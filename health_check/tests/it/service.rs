//! `--url` against a local HTTP server answering like the service's `/health`: ok,
//! degraded, down, malformed, unreachable, no answer in time.

use crate::common::{MARKET_OPEN_NOW, StubServer, run, unused_url};

fn health(status: u16, body: &'static str) -> StubServer {
    StubServer::start(move |req| {
        if req.target == "/health" {
            Some((status, body.to_string()))
        } else {
            Some((404, r#"{"error":"not found"}"#.to_string()))
        }
    })
}

#[test]
fn ok_is_exit_0_and_the_health_path_is_added() {
    let server = health(
        200,
        r#"{"status":"ok","stream":{"state":"streaming","last_frame_age_secs":0.4},
            "writer":{"last_commit_age_secs":1.2,"buffered_rows":3},"market":{"open":true,"phase":"regular"}}"#,
    );
    let out = run(&["--url", &server.url, "--now", MARKET_OPEN_NOW]);
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with("OK: service ok; market open"),
        "{}",
        out.stdout
    );
    assert_eq!(
        lines[1],
        format!(
            "OK        service   {}/health: status ok, stream streaming, last frame 0.4 s ago, last commit 1.2 s ago, 3 rows buffered",
            server.url
        )
    );
    let requests = server.received();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "GET");
    assert_eq!(requests[0].target, "/health");
}

#[test]
fn degraded_is_a_warning() {
    let server = health(
        200,
        r#"{"status":"degraded","reasons":["database write failing, retrying"]}"#,
    );
    let out = run(&["--url", &server.url]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout
            .contains("status degraded, database write failing, retrying")
    );
}

#[test]
fn down_with_503_is_critical_and_the_body_is_kept_in_json() {
    let server = health(503, r#"{"status":"down","stream":{"state":"needs_login"}}"#);
    let out = run(&["--url", &format!("{}/health", server.url), "--json"]);
    assert_eq!(out.code, 2, "{out:?}");
    let json = out.json();
    assert_eq!(json["status"], "critical");
    assert_eq!(json["exit_code"], 2);
    let check = &json["checks"][0];
    assert_eq!(check["check"], "service");
    assert_eq!(check["status"], "critical");
    assert_eq!(check["response"]["stream"]["state"], "needs_login");
    assert!(check["elapsed_ms"].is_u64());
}

#[test]
fn malformed_answers_are_unknown() {
    for body in [
        "<html>It works!</html>",
        r#"{"healthy":true}"#,
        r#"{"status":"fine"}"#,
    ] {
        let server = health(200, body);
        let out = run(&["--url", &server.url]);
        assert_eq!(out.code, 3, "{body}: {out:?}");
        assert!(
            out.stdout.starts_with("UNKNOWN: service unknown"),
            "{}",
            out.stdout
        );
    }
    // Some other server on the port: 404 without a health body.
    let server = StubServer::start(|_| Some((404, "Not Found".to_string())));
    assert_eq!(run(&["--url", &server.url]).code, 3);
}

#[test]
fn unreachable_is_critical_with_the_tunnel_hint() {
    let out = run(&["--url", &unused_url()]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stdout.contains("unreachable"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("ssh -N -L 8080:127.0.0.1:8080 user@host")
    );
}

#[test]
fn no_answer_within_the_timeout_is_critical() {
    let server = StubServer::start(|_| None);
    let out = run(&["--url", &server.url, "--timeout", "0.5"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stdout.contains("no answer within"), "{}", out.stdout);
}

#[test]
fn a_bad_url_is_unknown() {
    let out = run(&["--url", "127.0.0.1:8080"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stdout.contains("is not a URL"), "{}", out.stdout);
}
