//! `kiln serve` over real HTTP: the OpenAI routes with the default model (answers equal `kiln
//! run`'s, streamed equal to whole, prefix reuse counted), the `openai` Python client (chat,
//! streaming, logprobs, completions, errors; a real Qwen2.5 calling a tool), errors in
//! OpenAI's shape with their status codes, a vanished client's request cancelled, SIGTERM, two
//! models served side by side by name.
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use kiln_tests::server::{events, Server};
use kiln_tests::*;
use serde_json::{json, Value};

/// The default model, compiled once for all the tests here (they run in parallel).
fn artifact() -> std::path::PathBuf {
    static ARTIFACT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    ARTIFACT.get_or_init(|| real_model::compiled("SmolLM2-135M-Instruct.Q4_1.gguf", "model")).clone()
}

#[test]
fn chat_and_completions_answer_as_kiln_run_does() {
    let artifact = artifact();
    let server = Server::start(&artifact, &[]);
    assert_eq!(server.request("GET", "/health", "", &[]), (200, json!({"status": "ok"}).to_string()));
    let (_, models) = server.request("GET", "/v1/models", "", &[]);
    assert_eq!(serde_json::from_str::<Value>(&models).unwrap()["data"][0]["id"], "model");

    let question = "What is the capital of France?";
    let run = kiln().arg("run").arg(&artifact).args(["--temperature", "0", "--max-tokens", "20", question]).output().unwrap();
    let expected = String::from_utf8(run.stdout).unwrap();
    let request = json!({"model": "model", "messages": [{"role": "user", "content": question}], "temperature": 0, "max_tokens": 20});
    let (status, whole) = server.json("/v1/chat/completions", request.clone());
    assert_eq!(status, 200, "{whole}");
    let content = whole["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(content, expected.trim_end_matches('\n'));
    assert!(content.contains("Paris"), "{content}");

    // streamed: the same text in deltas, a finish reason, usage, [DONE]; the prompt is cached now
    let mut streamed = request.clone();
    streamed["stream"] = true.into();
    streamed["stream_options"] = json!({"include_usage": true});
    let (status, body) = server.request("POST", "/v1/chat/completions", &streamed.to_string(), &[]);
    assert_eq!(status, 200);
    let events = events(&body);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1].iter().map(|e| serde_json::from_str(e).unwrap()).collect();
    let text: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, content);
    assert_eq!(chunks.iter().filter_map(|c| c["choices"][0]["finish_reason"].as_str()).collect::<Vec<_>>(), [whole["choices"][0]["finish_reason"].as_str().unwrap()]);
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(usage["prompt_tokens"], whole["usage"]["prompt_tokens"]);
    assert!(usage["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap() > 10, "{usage}");

    // completions: a text prompt with echo, and the same prompt as token ids
    let (_, done) = server.json("/v1/completions", json!({"prompt": "The capital of France is", "max_tokens": 6, "temperature": 0, "echo": true}));
    let text = done["choices"][0]["text"].as_str().unwrap();
    assert!(text.starts_with("The capital of France is Paris"), "{text}");
    let (_, ids) = server.json("/tokenize", json!({"content": "The capital of France is"}));
    let (_, by_ids) = server.json("/v1/completions", json!({"prompt": ids["tokens"], "max_tokens": 6, "temperature": 0}));
    assert_eq!(format!("The capital of France is{}", by_ids["choices"][0]["text"].as_str().unwrap()), text);
    let (_, back) = server.json("/detokenize", json!({"tokens": ids["tokens"]}));
    assert_eq!(back["content"], "The capital of France is");

    // four requests answered, their tokens and timings in the Prometheus text
    let (status, metrics) = server.request("GET", "/metrics", "", &[]);
    assert_eq!(status, 200);
    let value = |line: &str| metrics.lines().find_map(|l| l.strip_prefix(line)).and_then(|v| v.trim().parse::<f64>().ok()).unwrap_or_else(|| panic!("no {line} in {metrics}"));
    assert_eq!(value("kiln_requests_total{model=\"model\"}"), 4.0);
    assert_eq!(value("kiln_time_to_first_token_seconds_count{model=\"model\"}"), 4.0);
    assert!(value("kiln_generated_tokens_total{model=\"model\"}") >= 20.0);
    assert!(value("kiln_cached_prompt_tokens_total{model=\"model\"}") > 10.0);
    assert_eq!(value("kiln_queue_depth{model=\"model\"}"), 0.0);
}

#[test]
fn the_openai_python_client_talks_to_it() {
    let server = Server::start(&artifact(), &[]);
    let script = r#"
import sys, openai
from openai import OpenAI
c = OpenAI(base_url=f'http://{sys.argv[1]}/v1', api_key='x')
ask = dict(model='model', messages=[{'role': 'user', 'content': 'What is the capital of France?'}], temperature=0, max_tokens=12)
r = c.chat.completions.create(**ask, logprobs=True, top_logprobs=2)
s = ''.join(ch.choices[0].delta.content or '' for ch in c.chat.completions.create(**ask, stream=True))
assert s == r.choices[0].message.content, (s, r)
lp = r.choices[0].logprobs.content
assert ''.join(t.token for t in lp) == s and all(t.logprob <= 0 and len(t.top_logprobs) == 2 for t in lp), lp
assert all(t.top_logprobs[0].logprob == t.logprob for t in lp), 'greedy: each token is the most likely'
done = c.completions.create(model='model', prompt='The capital of France is', temperature=0, max_tokens=4, logprobs=1)
assert done.choices[0].text == ''.join(done.choices[0].logprobs.tokens), done
try:
    c.chat.completions.create(**dict(ask, model='nope'))
    raise SystemExit('no error for an unknown model')
except openai.NotFoundError as e:
    assert 'nope' in str(e)
print(r.choices[0].message.content)
"#;
    let out = std::process::Command::new(root().join(".venv/bin/python")).args(["-c", script, &server.addr]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Paris"));
}

#[test]
fn a_real_model_calls_a_tool_through_the_openai_client() {
    let qwen = real_model::compiled("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", "qwen-model");
    let server = Server::start(&qwen, &["--parallel", "2", "--ctx", "1024"]);
    let script = r#"
import json, sys
from openai import OpenAI
c = OpenAI(base_url=f'http://{sys.argv[1]}/v1', api_key='x')
tools = [{'type': 'function', 'function': {'name': 'get_weather', 'description': 'Get the current weather in a city',
          'parameters': {'type': 'object', 'properties': {'city': {'type': 'string'}}, 'required': ['city']}}}]
ask = dict(model='model', messages=[{'role': 'user', 'content': 'What is the weather like in Paris right now?'}], tools=tools, temperature=0, max_tokens=60)
r = c.chat.completions.create(**ask)
call = r.choices[0].message.tool_calls[0]
assert r.choices[0].finish_reason == 'tool_calls' and call.function.name == 'get_weather', r
assert json.loads(call.function.arguments) == {'city': 'Paris'}, call
streamed = [d for ch in c.chat.completions.create(**ask, stream=True) for d in (ch.choices[0].delta.tool_calls or []) if ch.choices]
assert [(d.function.name, json.loads(d.function.arguments)) for d in streamed] == [('get_weather', {'city': 'Paris'})], streamed
none = c.chat.completions.create(**ask, tool_choice='none')
assert none.choices[0].message.tool_calls is None and 'get_weather' in none.choices[0].message.content, none
"#;
    let out = std::process::Command::new(root().join(".venv/bin/python")).args(["-c", script, &server.addr]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn errors_come_in_openai_shape() {
    let artifact = artifact();
    let server = Server::start(&artifact, &["--ctx", "32", "--max-body", "2000", "--api-key", "secret"]);
    let auth = ["Authorization: Bearer secret"];
    let check = |(status, body): (u16, String), want: u16, needle: &str| {
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(status, want, "{body}");
        assert!(v["error"]["message"].as_str().unwrap().contains(needle), "'{needle}' not in {body}");
    };
    let chat = |body: &str| server.request("POST", "/v1/chat/completions", body, &auth);
    check(server.request("GET", "/v1/models", "", &[]), 401, "API key");
    check(server.request("GET", "/v1/models", "", &["Authorization: Bearer wrong"]), 401, "API key");
    check(chat("{not json"), 400, "invalid JSON");
    check(chat(r#"{"messages": []}"#), 400, "'messages'");
    check(chat(r#"{"model": "other", "messages": [{"role": "user", "content": "hi"}]}"#), 404, "'other'");
    check(chat(r#"{"messages": [{"role": "user", "content": "hi"}], "logprobs": true, "top_logprobs": 50}"#), 400, "top_logprobs");
    check(chat(r#"{"messages": [{"role": "user", "content": "hi"}], "n": 2}"#), 400, "'n'");
    check(chat(r#"{"messages": [{"role": "user", "content": "hi"}], "temperature": 7}"#), 400, "temperature");
    check(chat(&json!({"messages": [{"role": "user", "content": "word ".repeat(40)}]}).to_string()), 400, "context holds 32");
    check(chat(&json!({"messages": [{"role": "user", "content": "x".repeat(3000)}]}).to_string()), 413, "over 2000 bytes");
    check(server.request("GET", "/v2/nothing", "", &auth), 404, "no such route");
}

#[test]
fn a_vanished_client_frees_the_model_and_sigterm_stops_cleanly() {
    let server = Server::start(&artifact(), &["--ctx", "4096", "--parallel", "1", "--grace", "1"]);
    // a long streamed answer, abandoned after its first bytes
    let mut s = TcpStream::connect(&server.addr).unwrap();
    let body = json!({"prompt": "Once upon a time", "max_tokens": 4000, "temperature": 0.8, "seed": 1, "stream": true}).to_string();
    write!(s, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    let mut first = [0u8; 64];
    s.read_exact(&mut first).unwrap();
    drop(s);
    // with one slot, the next request runs as soon as the abandoned one notices (a step), not after 4000 tokens
    let start = Instant::now();
    let (status, _) = server.json("/v1/completions", json!({"prompt": "Hi", "max_tokens": 2}));
    assert_eq!(status, 200);
    assert!(start.elapsed() < Duration::from_secs(30), "the abandoned request kept the model for {:?}", start.elapsed());

    // SIGTERM while a long answer streams: it gets the grace period (1 s), then the server exits 0
    let mut s = TcpStream::connect(&server.addr).unwrap();
    write!(s, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    s.read_exact(&mut first).unwrap();
    let mut server = server;
    let start = Instant::now();
    unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) };
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(start.elapsed() < Duration::from_secs(15), "stopping took {:?} with a grace of 1 s", start.elapsed());
}

#[test]
fn several_models_each_answer_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let (tiny, other) = (compile(&fixture("llama_tied_gqa"), &a), compile(&fixture("qwen2_untied_bias"), &b));
    let (tiny_named, other_named) = (dir.path().join("tiny.kiln"), dir.path().join("other.kiln"));
    std::fs::rename(tiny, &tiny_named).unwrap();
    std::fs::rename(other, &other_named).unwrap();
    let server = Server::start(&tiny_named, &[other_named.to_str().unwrap()]);
    let (_, models) = server.request("GET", "/v1/models", "", &[]);
    let names: Vec<String> = serde_json::from_str::<Value>(&models).unwrap()["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["other", "tiny"]);
    let ask = |model: &str| server.json("/v1/completions", json!({"model": model, "prompt": [5, 17, 3], "max_tokens": 4, "temperature": 0}));
    let (tiny_answer, other_answer) = (ask("tiny"), ask("other"));
    assert_eq!((tiny_answer.0, other_answer.0), (200, 200));
    assert_eq!(tiny_answer.1["model"], "tiny");
    assert_eq!(other_answer.1["model"], "other");
    assert_ne!(tiny_answer.1["choices"][0]["text"], other_answer.1["choices"][0]["text"], "two different models");
    let (status, _) = server.json("/v1/completions", json!({"prompt": [5]}));
    assert_eq!(status, 400, "with two models a request must name one");
}
