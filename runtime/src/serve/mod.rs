//! `kiln serve`: an OpenAI-compatible HTTP server (axum) for one or more artifacts, each model
//! answering from its own engine thread (engine.rs), which batches the requests it holds.
//!
//! Routes: POST /v1/chat/completions, /v1/completions, /tokenize, /detokenize; GET /v1/models,
//! /health, /metrics (Prometheus text, metrics.rs). Errors in OpenAI's shape (openai.rs); chat answers split into reasoning, tool calls
//! and content (answer.rs).
mod answer;
mod engine;
mod metrics;
mod openai;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::future::IntoFuture;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as Sse, KeepAlive};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::mpsc::unbounded_channel;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_stream::StreamExt;

use crate::artifact::Meta;
use crate::decoder::TokenLogprob;
use crate::kv_cache::KvCache;
use crate::error::{Error, Result};
use crate::prompt::PromptOptions;
use crate::tokenizer::Tokenizer;
use crate::session::Finish;
use answer::{AnswerParser, Delta};
use engine::{Engine, Event, Job};
use openai::{ApiError, ApiResult};

pub struct ServeOptions {
    pub artifacts: Vec<PathBuf>,
    pub addr: SocketAddr,
    /// KV-cache positions per sequence; None: the model's context, at most 4096.
    pub ctx: Option<usize>,
    /// Sequences each model decodes together (KV-cache slots); None: from the machine's memory.
    pub parallel: Option<usize>,
    /// Rows of a forward pass while answers are decoding (prompt chunks fill what they leave).
    pub step_tokens: usize,
    /// Requests each model holds (running and waiting) before answering 503.
    pub queue: usize,
    pub api_key: Option<String>,
    /// Largest request body, bytes.
    pub max_body: usize,
    /// After SIGINT/SIGTERM, how long running requests get to finish.
    pub grace: std::time::Duration,
}

/// A served model: its engine, and what the HTTP side needs to build its prompts.
struct Served {
    name: String,
    meta: Meta,
    tokenizer: Tokenizer,
    context: usize,
    engine: Engine,
}

struct App {
    /// Set once every artifact is loaded.
    models: OnceLock<BTreeMap<String, Served>>,
    options: ServeOptions,
    next_id: AtomicU64,
}

/// Loads every artifact, then serves until SIGINT or SIGTERM.
pub fn serve(options: ServeOptions) -> Result<()> {
    for path in &options.artifacts {
        if !crate::artifact::Artifact::is_artifact(path) {
            crate::artifact::Artifact::open(path, false)?; // names what is wrong with it
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(|e| Error::Serve(e.to_string()))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(options.addr).await.map_err(|e| Error::Serve(format!("{}: {e}", options.addr)))?;
        let addr = listener.local_addr().map_err(|e| Error::Serve(e.to_string()))?;
        eprintln!("kiln serve: loading on {addr} (/health answers 503 until ready)");
        let (limit, grace) = (options.max_body, options.grace);
        let app = Arc::new(App { models: OnceLock::new(), options, next_id: AtomicU64::new(1) });
        let router = Router::new()
            .route("/health", get(health))
            .route("/v1/models", get(list_models))
            .route("/metrics", get(metrics))
            .route("/v1/chat/completions", post(chat))
            .route("/v1/completions", post(completions))
            .route("/tokenize", post(tokenize))
            .route("/detokenize", post(detokenize))
            .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route") })
            .layer(DefaultBodyLimit::max(limit))
            .with_state(app.clone());
        let stopping = Arc::new(tokio::sync::Notify::new());
        let serving = tokio::spawn(axum::serve(listener, router).with_graceful_shutdown(shutdown(stopping.clone())).into_future());
        let loaded = tokio::task::spawn_blocking({
            let app = app.clone();
            move || load(&app.options).map(|models| app.models.set(models).ok())
        });
        loaded.await.map_err(|e| Error::Serve(e.to_string()))??;
        let names: Vec<&str> = app.models.get().into_iter().flat_map(|m| m.keys()).map(String::as_str).collect();
        eprintln!("kiln serve: listening on http://{addr} (models: {})", names.join(", "));
        // after SIGINT/SIGTERM, requests still running get `grace` to finish
        let over = async {
            stopping.notified().await;
            tokio::time::sleep(grace).await;
            eprintln!("kiln serve: grace period over, cancelling what still runs");
        };
        tokio::select! {
            served = serving => served.map_err(|e| Error::Serve(e.to_string()))?.map_err(|e| Error::Serve(e.to_string())),
            _ = over => Ok(()),
        }
    })
}

/// Loads every artifact and starts its engine.
fn load(options: &ServeOptions) -> Result<BTreeMap<String, Served>> {
    let mut models = BTreeMap::new();
    for path in &options.artifacts {
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let meta = crate::artifact::Artifact::open(path, false)?.meta;
        let context = options.ctx.unwrap_or(4096).min(meta.plan.context);
        // every decoding answer takes a row of each pass: at most the artifact's rows per pass
        let slots = options.parallel.unwrap_or_else(|| default_slots(&meta, context)).min(meta.plan.max_rows);
        let mut model = crate::Model::open_slots(path, Some(context), slots)?;
        model.executor.batch_invariant();
        let tokenizer = Tokenizer::for_artifact(&meta)?;
        eprintln!("kiln serve: {name}: {slots} slots × {context} positions, KV cache {} MiB", (slots * context * KvCache::bytes_per_token(&meta.plan.caches)) >> 20);
        let engine = Engine::start(model, tokenizer.clone(), meta.eos_token_ids.clone(), options.step_tokens);
        let served = Served { name: name.clone(), tokenizer, meta, context, engine };
        if models.insert(name.clone(), served).is_some() {
            return Err(Error::Serve(format!("two artifacts are named '{name}'")));
        }
    }
    Ok(models)
}

/// 8 slots, fewer if their KV cache would take more than a quarter of the machine's free memory.
fn default_slots(meta: &Meta, context: usize) -> usize {
    let per_slot = (context * KvCache::bytes_per_token(&meta.plan.caches)).max(1);
    let available = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().find(|l| l.starts_with("MemAvailable:")).and_then(|l| l.split_whitespace().nth(1)?.parse::<usize>().ok()))
        .map_or(usize::MAX, |kib| kib * 1024);
    (available / 4 / per_slot).clamp(1, 8)
}

/// Resolves at SIGINT or SIGTERM (and tells `stopping`).
async fn shutdown(stopping: Arc<tokio::sync::Notify>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (mut int, mut term) = (signal(SignalKind::interrupt()).expect("SIGINT handler"), signal(SignalKind::terminate()).expect("SIGTERM handler"));
    tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
    eprintln!("kiln serve: stopping (requests running get the grace period to finish)");
    stopping.notify_one();
}

/// `{"status": "ok"}` once every model is loaded; 503 `{"status": "loading"}` before.
async fn health(State(app): State<Arc<App>>) -> Response {
    match app.models.get() {
        Some(_) => Json(json!({"status": "ok"})).into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "1")], Json(json!({"status": "loading"}))).into_response(),
    }
}

impl App {
    fn authorize(&self, headers: &HeaderMap) -> ApiResult<()> {
        let Some(key) = &self.options.api_key else { return Ok(()) };
        let given = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(key.as_str()) {
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "missing or wrong API key (Authorization: Bearer …)"));
        }
        Ok(())
    }

    /// The loaded models (503 while loading).
    fn models(&self) -> ApiResult<&BTreeMap<String, Served>> {
        self.models.get().ok_or_else(|| ApiError { retry_after: Some(1), ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the server is loading its models") })
    }

    /// The model a request names; with one model served, an absent name means it.
    fn model(&self, body: &Value) -> ApiResult<&Served> {
        let models = self.models()?;
        match body.get("model").and_then(Value::as_str).filter(|m| !m.is_empty()) {
            Some(name) => models.get(name).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("model '{name}' is not served here (see /v1/models)"))),
            None if models.len() == 1 => Ok(models.values().next().expect("one model")),
            None => Err(ApiError::bad_request("'model' is required when several models are served")),
        }
    }

    fn request(&self, headers: &HeaderMap, body: std::result::Result<Bytes, BytesRejection>) -> ApiResult<Value> {
        self.authorize(headers)?;
        let body = body.map_err(|e| match e {
            BytesRejection::FailedToBufferBody(_) => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("the request body is over {} bytes", self.options.max_body)),
            other => ApiError::bad_request(other.to_string()),
        })?;
        let value: Value = serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
        if !value.is_object() {
            return Err(ApiError::bad_request("the request body must be a JSON object"));
        }
        Ok(value)
    }

    fn id(&self, prefix: &str) -> String {
        format!("{prefix}-{}", self.next_id.fetch_add(1, Ordering::Relaxed))
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

async fn metrics(State(app): State<Arc<App>>, headers: HeaderMap) -> ApiResult<Response> {
    app.authorize(&headers)?;
    let mut text = metrics::Metrics::header();
    for (name, m) in app.models()? {
        m.engine.metrics.write(&mut text, name, m.engine.pending.load(Ordering::Relaxed));
    }
    Ok(([("content-type", "text/plain; version=0.0.4")], text).into_response())
}

async fn list_models(State(app): State<Arc<App>>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    app.authorize(&headers)?;
    let data: Vec<Value> = app.models()?.keys().map(|name| json!({"id": name, "object": "model", "created": now(), "owned_by": "kiln"})).collect();
    Ok(Json(json!({"object": "list", "data": data})))
}

async fn chat(State(app): State<Arc<App>>, headers: HeaderMap, body: std::result::Result<Bytes, BytesRejection>) -> Response {
    let run = || -> ApiResult<(Value, Vec<u32>, String)> {
        let body = app.request(&headers, body)?;
        let model = app.model(&body)?;
        let messages = body.get("messages").and_then(Value::as_array).filter(|m| !m.is_empty()).ok_or_else(|| ApiError::bad_request("'messages' must be a non-empty list"))?;
        let messages: Vec<Value> = messages
            .iter()
            .map(|m| {
                let mut m = m.clone();
                if m.get("role").and_then(Value::as_str).is_none() {
                    return Err(ApiError::bad_request("every message needs a 'role'"));
                }
                m["content"] = openai::message_text(m.get("content").unwrap_or(&Value::Null))?.into();
                Ok(m)
            })
            .collect::<ApiResult<_>>()?;
        let vars = body.get("chat_template_kwargs").and_then(Value::as_object).cloned().unwrap_or_default();
        let opts = PromptOptions { tools: body.get("tools").filter(|t| !t.is_null()).cloned(), add_generation_prompt: true, vars };
        let text = crate::prompt::render(&model.meta, &messages, &opts).map_err(|e| ApiError::bad_request(e.to_string()))?;
        let ids = model.tokenizer.encode(&text).map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok((body, ids, text))
    };
    match run() {
        Ok((body, ids, prompt)) => {
            // `tool_choice: "none"`: the tools stay in the prompt, but nothing is read as a call
            let tools = body.get("tools").filter(|_| body.get("tool_choice").and_then(Value::as_str) != Some("none")).cloned();
            respond(&app, &body, ids, String::new(), Kind::Chat { prompt, tools }).await
        }
        Err(e) => e.into_response(),
    }
}

async fn completions(State(app): State<Arc<App>>, headers: HeaderMap, body: std::result::Result<Bytes, BytesRejection>) -> Response {
    let run = || -> ApiResult<(Value, Vec<u32>, String)> {
        let body = app.request(&headers, body)?;
        let model = app.model(&body)?;
        let ids = match body.get("prompt") {
            Some(Value::String(s)) => model.tokenizer.encode(s).map_err(|e| ApiError::bad_request(e.to_string()))?,
            Some(Value::Array(a)) if !a.is_empty() && a.iter().all(Value::is_u64) => token_ids(model, a)?,
            _ => return Err(ApiError::bad_request("'prompt' must be a string or a list of token ids")),
        };
        let echo = if body.get("echo").and_then(Value::as_bool).unwrap_or(false) { model.tokenizer.decode(&ids).map_err(|e| ApiError::bad_request(e.to_string()))? } else { String::new() };
        Ok((body, ids, echo))
    };
    match run() {
        Ok((body, ids, echo)) => respond(&app, &body, ids, echo, Kind::Completion).await,
        Err(e) => e.into_response(),
    }
}

fn token_ids(model: &Served, list: &[Value]) -> ApiResult<Vec<u32>> {
    let vocab = model.tokenizer.vocab_size();
    list.iter()
        .map(|v| v.as_u64().filter(|&id| (id as usize) < vocab).map(|id| id as u32).ok_or_else(|| ApiError::bad_request(format!("token {v} is outside the vocabulary ({vocab})"))))
        .collect()
}

#[derive(Clone)]
enum Kind {
    /// With the rendered prompt (a template may open `<think>` itself) and the tools offered.
    Chat { prompt: String, tools: Option<Value> },
    Completion,
}

impl Kind {
    fn prefix(&self) -> &'static str {
        match self {
            Kind::Chat { .. } => "chatcmpl",
            Kind::Completion => "cmpl",
        }
    }

    fn object(&self, stream: bool) -> &'static str {
        match (self, stream) {
            (Kind::Chat { .. }, false) => "chat.completion",
            (Kind::Chat { .. }, true) => "chat.completion.chunk",
            (Kind::Completion, _) => "text_completion",
        }
    }

    /// The whole answer's one choice.
    fn choice(&self, text: &str, finish: Finish, logprobs: Value) -> Value {
        let reason = openai::finish_reason(finish);
        match self {
            Kind::Chat { prompt, tools } => {
                let (message, called) = answer::message(prompt, tools.as_ref(), text);
                json!({"index": 0, "message": message, "logprobs": logprobs, "finish_reason": if called { "tool_calls" } else { reason }})
            }
            Kind::Completion => json!({"index": 0, "text": text, "logprobs": logprobs, "finish_reason": reason}),
        }
    }
}

/// Log-probabilities in the shape of the request's API, or null when not asked for (`tokenizer`
/// None); `offset`: where the tokens' text starts in the completion (its text_offset).
fn logprobs_value(kind: &Kind, tokenizer: Option<&Tokenizer>, tokens: &[(String, TokenLogprob)], offset: usize) -> Value {
    match (tokenizer, kind) {
        (None, _) => Value::Null,
        (Some(t), Kind::Chat { .. }) => openai::chat_logprobs(tokens, t),
        (Some(t), Kind::Completion) => openai::completion_logprobs(tokens, t, offset),
    }
}

/// A streamed choice: a delta (chat) or a piece of text (completions), or the closing one.
fn chunk_choice(chat: bool, delta: Option<Delta>, finish: Option<&str>, logprobs: Value) -> Value {
    if !chat {
        let text = match delta {
            Some(Delta::Content(t)) => t,
            _ => String::new(),
        };
        return json!({"index": 0, "text": text, "logprobs": logprobs, "finish_reason": finish});
    }
    let delta = match delta {
        Some(Delta::Content(t)) => json!({"content": t}),
        Some(Delta::Reasoning(t)) => json!({"reasoning_content": t}),
        Some(Delta::ToolCall(c)) => json!({"tool_calls": [c]}),
        None => json!({}),
    };
    json!({"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish})
}

/// Queues the request on its model and answers: a whole response, or server-sent events.
async fn respond(app: &App, body: &Value, prompt: Vec<u32>, echo: String, kind: Kind) -> Response {
    let result: ApiResult<Response> = async {
        let model = app.model(body)?;
        let chat = matches!(kind, Kind::Chat { .. });
        let generation = openai::generation(body, chat)?;
        if prompt.len() >= model.context {
            return Err(ApiError::bad_request(format!("the prompt has {} tokens; this server's context holds {} (--ctx), leaving none to generate", prompt.len(), model.context)));
        }
        let (events, receiver) = unbounded_channel();
        let max_tokens = generation.max_tokens.unwrap_or(usize::MAX);
        let (cancel, arrived, top_logprobs) = (Arc::new(AtomicBool::new(false)), std::time::Instant::now(), generation.top_logprobs);
        let job = Job { prompt, sampling: generation.sampling, max_tokens, stop: generation.stop, top_logprobs, cancel, events, arrived };
        if model.engine.submit(job, app.options.queue).is_err() {
            return Err(ApiError { retry_after: Some(1), ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("'{}' has {} requests queued; try again", model.name, app.options.queue)) });
        }
        let (id, created, name) = (app.id(kind.prefix()), now(), model.name.clone());
        let object = [kind.object(false), kind.object(true)];
        let envelope = move |choices: Value, usage: Option<Value>, stream: bool| {
            let mut v = json!({"id": id, "object": object[usize::from(stream)], "created": created, "model": name, "choices": choices});
            if let Some(u) = usage {
                v["usage"] = u;
            }
            v
        };
        let logprobs_tokenizer = top_logprobs.map(|_| model.tokenizer.clone());
        if !generation.stream {
            return Ok(Json(collect(receiver, echo, kind, envelope, logprobs_tokenizer).await).into_response());
        }
        let include_usage = generation.include_usage;
        let mut parser = match &kind {
            Kind::Chat { prompt, tools } => Some(AnswerParser::new(prompt, tools.as_ref())),
            Kind::Completion => None,
        };
        let chat = parser.is_some();
        let first = chat.then(|| json!({"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}));
        let head = first.map(|c| envelope(json!([c]), None, true)).into_iter().chain((!echo.is_empty()).then(|| envelope(json!([chunk_choice(false, Some(Delta::Content(echo.clone())), None, Value::Null)]), None, true)));
        let head: Vec<Value> = head.collect();
        // a task turns engine events into SSE payloads; when the client goes, its sends fail, it
        // drops the engine's channel, and the engine cancels the request at its next token
        let (payloads, out) = unbounded_channel::<String>();
        tokio::spawn(async move {
            let mut receiver = receiver;
            let mut send = |v: Value| payloads.send(v.to_string()).is_ok();
            if !head.into_iter().all(&mut send) {
                return;
            }
            let deltas = |parser: &mut Option<AnswerParser>, text: Option<&str>| -> Vec<Delta> {
                match (parser.as_mut(), text) {
                    (Some(p), Some(t)) => p.push(t),
                    (Some(p), None) => p.finish(),
                    (None, t) => t.map(|t| vec![Delta::Content(t.to_string())]).unwrap_or_default(),
                }
            };
            let mut offset = echo.len();
            while let Some(event) = receiver.recv().await {
                let sent = match event {
                    Event::Text(t, tokens) => {
                        // the tokens' log-probabilities ride on the first chunk of their text
                        let mut logprobs = if tokens.is_empty() { Value::Null } else { logprobs_value(&kind, logprobs_tokenizer.as_ref(), &tokens, offset) };
                        offset += tokens.iter().map(|t| t.0.len()).sum::<usize>();
                        let mut deltas = deltas(&mut parser, Some(&t));
                        if deltas.is_empty() && !logprobs.is_null() {
                            deltas.push(Delta::Content(String::new()));
                        }
                        deltas.into_iter().all(|d| send(envelope(json!([chunk_choice(chat, Some(d), None, logprobs.take())]), None, true)))
                    }
                    Event::Done { finish, stats } => {
                        let called = parser.as_ref().is_some_and(|p| p.calls > 0);
                        let rest = deltas(&mut parser, None);
                        let called = called || rest.iter().any(|d| matches!(d, Delta::ToolCall(_)));
                        let reason = if called { "tool_calls" } else { openai::finish_reason(finish) };
                        rest.into_iter().all(|d| send(envelope(json!([chunk_choice(chat, Some(d), None, Value::Null)]), None, true)))
                            && send(envelope(json!([chunk_choice(chat, None, Some(reason), Value::Null)]), None, true))
                            && (!include_usage || send(envelope(json!([]), Some(openai::usage(&stats)), true)))
                    }
                    Event::Failed(e) => send(json!({"error": {"message": e, "type": "server_error", "code": 500}})),
                };
                if !sent {
                    return;
                }
            }
            let _ = payloads.send("[DONE]".into());
        });
        let stream = UnboundedReceiverStream::new(out).map(|data| Ok::<_, Infallible>(Sse::default().data(data)));
        Ok(axum::response::Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// A whole (non-streamed) response from the engine's events.
async fn collect(mut receiver: tokio::sync::mpsc::UnboundedReceiver<Event>, echo: String, kind: Kind, envelope: impl Fn(Value, Option<Value>, bool) -> Value, logprobs: Option<Tokenizer>) -> Value {
    let (offset, mut text, mut tokens) = (echo.len(), echo, vec![]);
    while let Some(event) = receiver.recv().await {
        match event {
            Event::Text(t, more) => {
                text.push_str(&t);
                tokens.extend(more);
            }
            Event::Done { finish, stats } => {
                let logprobs = logprobs_value(&kind, logprobs.as_ref(), &tokens, offset);
                return envelope(json!([kind.choice(&text, finish, logprobs)]), Some(openai::usage(&stats)), false);
            }
            Event::Failed(e) => return json!({"error": {"message": e, "type": "server_error", "code": 500}}),
        }
    }
    json!({"error": {"message": "the engine stopped", "type": "server_error", "code": 500}})
}

async fn tokenize(State(app): State<Arc<App>>, headers: HeaderMap, body: std::result::Result<Bytes, BytesRejection>) -> ApiResult<Json<Value>> {
    let body = app.request(&headers, body)?;
    let model = app.model(&body)?;
    let text = body.get("content").and_then(Value::as_str).ok_or_else(|| ApiError::bad_request("'content' must be a string"))?;
    let ids = model.tokenizer.encode(text).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(Json(json!({"tokens": ids})))
}

async fn detokenize(State(app): State<Arc<App>>, headers: HeaderMap, body: std::result::Result<Bytes, BytesRejection>) -> ApiResult<Json<Value>> {
    let body = app.request(&headers, body)?;
    let model = app.model(&body)?;
    let ids = token_ids(model, body.get("tokens").and_then(Value::as_array).ok_or_else(|| ApiError::bad_request("'tokens' must be a list of token ids"))?)?;
    Ok(Json(json!({"content": model.tokenizer.decode(&ids).map_err(|e| ApiError::bad_request(e.to_string()))?})))
}

/// The options of `kiln serve` (and `kiln-rt serve`).
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Compiled models (`kiln compile`); each is served under its file name without `.kiln`.
    #[arg(required = true)]
    pub artifacts: Vec<PathBuf>,
    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// KV-cache positions per sequence [default: the model's context, at most 4096]
    #[arg(long)]
    pub ctx: Option<usize>,
    /// Sequences each model decodes together, each with its own KV-cache slot [default: 8, fewer if
    /// their cache would take over a quarter of the free memory; at most the artifact's rows per pass, 128]
    #[arg(long)]
    pub parallel: Option<usize>,
    /// Rows of one forward pass while answers are decoding; prompts are prefilled in chunks that
    /// fill what the answers leave
    #[arg(long, default_value_t = 64)]
    pub step_tokens: usize,
    /// Requests per model, running and waiting, before the server answers 503
    #[arg(long, default_value_t = 256)]
    pub queue: usize,
    /// Require `Authorization: Bearer KEY` on every request
    #[arg(long, env = "KILN_API_KEY")]
    pub api_key: Option<String>,
    /// Largest request body, bytes
    #[arg(long, default_value_t = 4 << 20)]
    pub max_body: usize,
    /// After SIGINT/SIGTERM, seconds running requests get to finish before they are cut off
    #[arg(long, default_value_t = 10.0)]
    pub grace: f64,
}

impl ServeArgs {
    pub fn options(self) -> ServeOptions {
        ServeOptions { artifacts: self.artifacts, addr: SocketAddr::new(self.host, self.port), ctx: self.ctx, parallel: self.parallel.map(|p| p.max(1)), step_tokens: self.step_tokens.max(1), queue: self.queue.max(1), api_key: self.api_key, max_body: self.max_body, grace: std::time::Duration::from_secs_f64(self.grace.max(0.0)) }
    }
}
