//! `kiln serve` under load, over real HTTP: greedy answers (log-probabilities included) are the
//! same bytes whether a request runs alone or among 15 others; 64 clients × 4 requests all get
//! their own right answers; a full queue answers 503 and loses nothing it accepted; a 10 MB body
//! is refused without the server keeping it.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use kiln_tests::server::Server;
use kiln_tests::*;
use serde_json::{json, Value};

fn smollm2() -> std::path::PathBuf {
    static ARTIFACT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    ARTIFACT.get_or_init(|| real_model::compiled("SmolLM2-135M-Instruct.Q4_1.gguf", "model")).clone()
}

fn tiny() -> std::path::PathBuf {
    static ARTIFACT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    ARTIFACT.get_or_init(|| compile_fast(&fixture("llama_tied_gqa"), &test_dir("serve_load_tiny"))).clone()
}

/// What must not differ between two runs of a request: its choice (text, log-probabilities,
/// finish reason) and its token count (ids, times and cached tokens may).
fn answer(v: &Value) -> Value {
    json!({"choice": v["choices"][0], "completion_tokens": v["usage"]["completion_tokens"]})
}

/// `f(i)` for i in 0..n, each on its own thread, all started together.
fn concurrently<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let barrier = std::sync::Barrier::new(n);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n).map(|i| {
            let (f, barrier) = (&f, &barrier);
            s.spawn(move || {
                barrier.wait();
                f(i)
            })
        }).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn sixteen_greedy_requests_together_equal_each_alone() {
    let server = Server::start(&smollm2(), &["--parallel", "16", "--ctx", "512"]);
    let questions = ["What is the capital of France?", "Name three colours.", "Write a haiku about the sea.", "What is 2 + 2?", "Who wrote Hamlet?", "Describe a cat in one sentence.", "List the days of the week.", "Why is the sky blue?"];
    // 16 requests of different lengths: chat and completions, streamed or not, logprobs throughout
    let request = |i: usize| -> (&'static str, Value) {
        let q = questions[i % 8];
        let max_tokens = 8 + 5 * i;
        if i % 2 == 0 {
            ("/v1/chat/completions", json!({"messages": [{"role": "user", "content": q}], "temperature": 0, "max_tokens": max_tokens, "logprobs": true, "top_logprobs": 3}))
        } else {
            ("/v1/completions", json!({"prompt": format!("Question: {q}\nAnswer:"), "temperature": 0, "max_tokens": max_tokens, "logprobs": 2}))
        }
    };
    let ask = |i: usize| {
        let (path, body) = request(i);
        let (status, v) = server.json(path, body);
        assert_eq!(status, 200, "{v}");
        answer(&v)
    };
    let alone: Vec<Value> = (0..16).map(ask).collect();
    let together = concurrently(16, ask);
    for (i, (a, t)) in alone.iter().zip(&together).enumerate() {
        assert_eq!(a, t, "request {i} differs when run beside the others");
    }
    assert!(alone.iter().filter(|a| a["completion_tokens"].as_u64().unwrap() > 5).count() >= 10, "answers of some length: {alone:?}");
    // they did run together: passes decoding several answers at once
    let (_, metrics) = server.request("GET", "/metrics", "", &[]);
    let batched: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("kiln_batch_size_bucket{model=\"model\",le=\"1\"} "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    let total: f64 = metrics.lines().find_map(|l| l.strip_prefix("kiln_batch_size_count{model=\"model\"} ")).and_then(|v| v.parse().ok()).unwrap();
    assert!(total - batched > 20.0, "few passes decoded more than one answer:\n{metrics}");
}

/// A completion request for prompt `p` of the tiny model: distinct token ids per prompt.
fn tiny_request(p: usize) -> Value {
    json!({"prompt": [(p % 50 + 3) as u32, (p / 50 + 60) as u32, 7, (p * 7 % 80 + 2) as u32], "max_tokens": 6 + p % 5, "temperature": 0})
}

/// POSTs until accepted: a 503 is retried after its Retry-After.
fn until_accepted(server: &Server, body: &Value) -> (Value, usize) {
    let mut refused = 0;
    loop {
        let (status, text) = server.request("POST", "/v1/completions", &body.to_string(), &[]);
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        match status {
            200 => return (v, refused),
            503 => {
                assert_eq!(v["error"]["type"], "rate_limit_error", "{v}");
                refused += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            other => panic!("status {other}: {v}"),
        }
    }
}

#[test]
fn sixty_four_clients_get_their_own_answers_and_a_full_queue_loses_nothing() {
    let server = Server::start(&tiny(), &["--parallel", "4", "--queue", "24", "--ctx", "64"]);
    let expected: Vec<Value> = (0..64).map(|p| server.json("/v1/completions", tiny_request(p)).1["choices"][0]["text"].clone()).collect();
    assert!(expected.iter().collect::<std::collections::HashSet<_>>().len() > 16, "prompts with distinct answers");
    // 64 clients × 4 requests, each a different prompt; the queue holds 24, so some are refused
    let results = concurrently(64, |c| {
        (0..4)
            .map(|k| {
                let p = (c * 4 + k) % 64;
                let (v, refused) = until_accepted(&server, &tiny_request(p));
                assert_eq!(v["choices"][0]["text"], expected[p], "client {c}, prompt {p}: someone else's answer");
                refused
            })
            .sum::<usize>()
    });
    assert!(results.iter().sum::<usize>() > 0, "a queue of 24 refused none of 64 clients");
    let (_, metrics) = server.request("GET", "/metrics", "", &[]);
    assert!(metrics.contains(&format!("kiln_requests_total{{model=\"model\"}} {}", 64 + 256)), "every accepted request answered:\n{metrics}");
    assert!(metrics.contains("kiln_queue_depth{model=\"model\"} 0"), "{metrics}");
}

/// The server's resident memory, KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap()
}

#[test]
fn ten_megabyte_bodies_are_refused_without_being_kept() {
    let server = Server::start(&tiny(), &["--ctx", "64"]);
    let body = format!(r#"{{"prompt": "{}"}}"#, "x".repeat(10 << 20));
    let send = || {
        let mut s = TcpStream::connect(&server.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let head = format!("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
        s.write_all(head.as_bytes()).unwrap();
        let _ = s.write_all(body.as_bytes()); // the server may answer and close before reading it all
        let mut response = String::new();
        let _ = s.read_to_string(&mut response);
        response
    };
    let first = send();
    assert!(first.starts_with("HTTP/1.1 413"), "{}", &first[..first.len().min(200)]);
    let before = rss_kib(server.child.id());
    for _ in 0..10 {
        assert!(send().starts_with("HTTP/1.1 413"));
    }
    let grown = rss_kib(server.child.id()).saturating_sub(before);
    assert!(grown < 10 << 10, "10 bodies of 10 MB grew the server by {grown} KiB");
    let (status, _) = server.json("/v1/completions", json!({"prompt": [3, 4], "max_tokens": 2}));
    assert_eq!(status, 200, "still serving");
}
