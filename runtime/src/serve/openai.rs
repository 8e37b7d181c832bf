//! The OpenAI API's request fields as Kiln reads them, and its response and error shapes.
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::sampler::SamplerConfig;
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
}

/// The sampling fields, refusing the ones Kiln does not implement rather than ignoring them.
pub fn generation(body: &Value) -> ApiResult<Generation> {
    for (key, off) in [("frequency_penalty", 0.0), ("presence_penalty", 0.0), ("n", 1.0)] {
        if number(body, key)?.is_some_and(|v| v != off) {
            return Err(ApiError::bad_request(format!("'{key}' other than {off} is not supported by this server yet")));
        }
    }
    if body.get("logprobs").is_some_and(|v| v != &Value::Bool(false) && !v.is_null()) {
        return Err(ApiError::bad_request("'logprobs' is not supported by this server yet"));
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
    let sampling = SamplerConfig {
        temperature: temperature as f32,
        top_p: top_p as f32,
        top_k: positive("top_k")?.unwrap_or(0),
        min_p: min_p as f32,
        repeat_penalty: number(body, "repetition_penalty")?.unwrap_or(1.0) as f32,
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
    Ok(Generation { sampling, max_tokens, stop, stream, include_usage })
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
