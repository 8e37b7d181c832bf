//! The OpenAI API's request fields as Kiln reads them, and its response and error shapes.
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::decoder::TokenLogprob;
use crate::sampler::SamplerConfig;
use crate::tokenizer::Tokenizer;
use crate::session::{Finish, Stats};

/// An error in OpenAI's shape: `{"error": {"message", "type", "code"}}`.
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), retry_after: None }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let kind = match self.status {
            StatusCode::UNAUTHORIZED => "authentication_error",
            StatusCode::NOT_FOUND => "not_found_error",
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => "rate_limit_error",
            s if s.is_server_error() => "server_error",
            _ => "invalid_request_error",
        };
        let body = json!({"error": {"message": self.message, "type": kind, "code": self.status.as_u16()}});
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert("retry-after", secs.into());
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

fn number(body: &Value, key: &str) -> ApiResult<Option<f64>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_f64().map(Some).ok_or_else(|| ApiError::bad_request(format!("'{key}' must be a number"))),
    }
}

/// What a request asks of generation.
pub struct Generation {
    pub sampling: SamplerConfig,
    pub max_tokens: Option<usize>,
    pub stop: Vec<String>,
    pub stream: bool,
    pub include_usage: bool,
    /// Log-probabilities with this many alternatives per token; None: none asked.
    pub top_logprobs: Option<usize>,
}

/// The sampling fields; `chat`: the chat API's logprobs (a bool and `top_logprobs`) rather than
/// the completions API's (a count).
pub fn generation(body: &Value, chat: bool) -> ApiResult<Generation> {
    if number(body, "n")?.is_some_and(|v| v != 1.0) {
        return Err(ApiError::bad_request("'n' other than 1 is not supported by this server"));
    }
    let positive = |key: &str| -> ApiResult<Option<usize>> {
        match number(body, key)? {
            Some(v) if v >= 0.0 && v.fract() == 0.0 => Ok(Some(v as usize)),
            Some(v) => Err(ApiError::bad_request(format!("'{key}' must be a non-negative integer, got {v}"))),
            None => Ok(None),
        }
    };
    let temperature = number(body, "temperature")?.unwrap_or(1.0);
    let top_p = number(body, "top_p")?.unwrap_or(1.0);
    let min_p = number(body, "min_p")?.unwrap_or(0.0);
    if !(0.0..=2.0).contains(&temperature) || !(0.0..=1.0).contains(&top_p) || !(0.0..=1.0).contains(&min_p) {
        return Err(ApiError::bad_request("'temperature' must be in [0, 2], 'top_p' and 'min_p' in [0, 1]"));
    }
    let penalty = |key: &str| -> ApiResult<f32> {
        let v = number(body, key)?.unwrap_or(0.0);
        if !(-2.0..=2.0).contains(&v) {
            return Err(ApiError::bad_request(format!("'{key}' must be in [-2, 2], got {v}")));
        }
        Ok(v as f32)
    };
    let top_logprobs = match (chat, body.get("logprobs")) {
        (true, Some(Value::Bool(true))) => Some(positive("top_logprobs")?.unwrap_or(0)),
        (true, None | Some(Value::Null | Value::Bool(false))) => None,
        (true, Some(_)) => return Err(ApiError::bad_request("'logprobs' must be true or false")),
        (false, _) => positive("logprobs")?,
    };
    if top_logprobs.is_some_and(|n| n > 20) {
        return Err(ApiError::bad_request("at most 20 'top_logprobs' per token"));
    }
    let sampling = SamplerConfig {
        temperature: temperature as f32,
        top_p: top_p as f32,
        top_k: positive("top_k")?.unwrap_or(0),
        min_p: min_p as f32,
        repeat_penalty: number(body, "repetition_penalty")?.unwrap_or(1.0) as f32,
        frequency_penalty: penalty("frequency_penalty")?,
        presence_penalty: penalty("presence_penalty")?,
        seed: positive("seed")?.unwrap_or(0) as u64,
        ..Default::default()
    };
    let stop = match body.get("stop") {
        None | Some(Value::Null) => vec![],
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => a.iter().filter_map(|s| s.as_str().map(String::from)).collect(),
        Some(_) => return Err(ApiError::bad_request("'stop' must be a string or a list of strings")),
    };
    let max_tokens = positive("max_completion_tokens")?.or(positive("max_tokens")?);
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let include_usage = body.pointer("/stream_options/include_usage").and_then(Value::as_bool).unwrap_or(false);
    Ok(Generation { sampling, max_tokens, stop, stream, include_usage, top_logprobs })
}

/// A chat message's text: a string, or the text parts of a content list.
pub fn message_text(content: &Value) -> ApiResult<String> {
    match content {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        Value::Array(parts) => parts
            .iter()
            .map(|p| match (p.get("type").and_then(Value::as_str), p.get("text").and_then(Value::as_str)) {
                (Some("text"), Some(t)) => Ok(t),
                (kind, _) => Err(ApiError::bad_request(format!("content part of type {kind:?} is not supported (text only)"))),
            })
            .collect::<ApiResult<Vec<&str>>>()
            .map(|t| t.concat()),
        _ => Err(ApiError::bad_request("'content' must be a string or a list of content parts")),
    }
}

pub fn finish_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::MaxTokens | Finish::ContextFull => "length",
        _ => "stop",
    }
}

pub fn usage(stats: &Stats) -> Value {
    json!({
        "prompt_tokens": stats.prompt_tokens,
        "completion_tokens": stats.generated,
        "total_tokens": stats.prompt_tokens + stats.generated,
        "prompt_tokens_details": {"cached_tokens": stats.reused_tokens},
    })
}

fn bytes(text: &str) -> Value {
    text.as_bytes().to_vec().into()
}

/// The chat API's `logprobs.content` entries.
pub fn chat_logprobs(tokens: &[(String, TokenLogprob)], tokenizer: &Tokenizer) -> Value {
    let entry = |text: &str, logprob: f32| json!({"token": text, "logprob": logprob, "bytes": bytes(text)});
    let content: Vec<Value> = tokens
        .iter()
        .map(|(text, l)| {
            let mut e = entry(text, l.logprob);
            e["top_logprobs"] = l.top.iter().map(|&(t, lp)| entry(&tokenizer.decode(&[t]).unwrap_or_default(), lp)).collect::<Vec<_>>().into();
            e
        })
        .collect();
    json!({"content": content})
}

/// The completions API's `logprobs` (tokens, token_logprobs, top_logprobs, text_offset), the
/// offsets counted from `offset`.
pub fn completion_logprobs(tokens: &[(String, TokenLogprob)], tokenizer: &Tokenizer, mut offset: usize) -> Value {
    let mut text_offset = vec![];
    for (text, _) in tokens {
        text_offset.push(offset);
        offset += text.len();
    }
    json!({
        "tokens": tokens.iter().map(|t| t.0.clone()).collect::<Vec<_>>(),
        "token_logprobs": tokens.iter().map(|t| t.1.logprob).collect::<Vec<_>>(),
        "top_logprobs": tokens.iter().map(|(_, l)| l.top.iter().map(|&(t, lp)| (tokenizer.decode(&[t]).unwrap_or_default(), Value::from(lp))).collect::<serde_json::Map<_, _>>()).collect::<Vec<_>>(),
        "text_offset": text_offset,
    })
}
