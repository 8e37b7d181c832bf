//! A chat answer as OpenAI returns it: text inside `<think>…</think>` as `reasoning_content`,
//! tool calls as `tool_calls` entries, the rest as `content` — piece by piece while streaming, or
//! whole. Two tool-call forms are read: Hermes/Qwen's `<tool_call>{"name": …, "arguments": …}</tool_call>`
//! (any number), and, when the request offered tools, an answer that is nothing but one such JSON
//! object naming one of them (Llama 3.x's form, and what small Qwen models write; `parameters`
//! is read as `arguments`). An answer opening with `{` is held back until it ends to tell which.
use serde_json::{json, Value};

use crate::tags::{Segment, TagSplitter};

const PAIRS: [(&str, &str); 2] = [("<think>", "</think>"), ("<tool_call>", "</tool_call>")];
const THINK: usize = 0;

#[derive(Clone, Debug, PartialEq)]
pub enum Delta {
    Content(String),
    Reasoning(String),
    /// `{"index", "id", "type": "function", "function": {"name", "arguments"}}`
    ToolCall(Value),
}

pub struct AnswerParser {
    tags: TagSplitter,
    call: String,
    pub calls: usize,
    /// The names of the tools the request offered.
    tools: Vec<String>,
    /// Content held back while it may be a bare JSON tool call; None once it cannot be.
    held: Option<String>,
}

impl AnswerParser {
    /// `prompt`: the rendered prompt (a template may open `<think>` itself); `tools`: the
    /// request's `tools` list.
    pub fn new(prompt: &str, tools: Option<&Value>) -> AnswerParser {
        let tools: Vec<String> = tools.and_then(Value::as_array).into_iter().flatten().filter_map(|t| t.pointer("/function/name")?.as_str().map(String::from)).collect();
        let held = (!tools.is_empty()).then(String::new);
        AnswerParser { tags: TagSplitter::new(&PAIRS, TagSplitter::ends_inside(prompt, PAIRS[THINK]).then_some(THINK)), call: String::new(), calls: 0, tools, held }
    }

    pub fn push(&mut self, text: &str) -> Vec<Delta> {
        let segments = self.tags.push(text);
        self.deltas(segments)
    }

    pub fn finish(&mut self) -> Vec<Delta> {
        let mut segments = self.tags.finish();
        if self.tags.inside() == Some(1) {
            segments.push(Segment::Close(1)); // an unclosed call: whatever it holds is judged now
        }
        let mut out = self.deltas(segments);
        if let Some(held) = self.held.take().filter(|h| !h.is_empty()) {
            match tool_call(&held, self.calls).filter(|c| self.tools.iter().any(|t| c["function"]["name"] == t.as_str())) {
                Some(call) => {
                    self.calls += 1;
                    out.push(Delta::ToolCall(call));
                }
                None => out.push(Delta::Content(held)),
            }
        }
        out
    }

    /// Content, unless it may still be a bare JSON tool call (then it is held back).
    fn content(&mut self, text: String) -> Option<Delta> {
        let Some(held) = &mut self.held else { return Some(Delta::Content(text)) };
        held.push_str(&text);
        match held.trim_start().chars().next() {
            None | Some('{') => None,
            Some(_) => self.held.take().map(Delta::Content),
        }
    }

    fn deltas(&mut self, segments: Vec<Segment>) -> Vec<Delta> {
        let mut out = vec![];
        for segment in segments {
            match segment {
                Segment::Text(None, t) => out.extend(self.content(t)),
                Segment::Text(Some(THINK), t) => out.push(Delta::Reasoning(t)),
                Segment::Text(Some(_), t) => self.call.push_str(&t),
                Segment::Close(i) if i != THINK => {
                    let raw = std::mem::take(&mut self.call);
                    match tool_call(&raw, self.calls) {
                        Some(call) => {
                            self.calls += 1;
                            out.push(Delta::ToolCall(call));
                        }
                        // not a call after all: keep the text as the model wrote it
                        None => out.extend(self.content(format!("{}{raw}{}", PAIRS[i].0, PAIRS[i].1))),
                    }
                }
                Segment::Open(_) | Segment::Close(_) => {}
            }
        }
        out
    }
}

/// `{"name": …, "arguments": {…}}` as an OpenAI tool call (arguments as a JSON string).
fn tool_call(raw: &str, index: usize) -> Option<Value> {
    let v: Value = serde_json::from_str(raw.trim()).ok()?;
    let name = v.get("name")?.as_str()?;
    let arguments = match v.get("arguments").or(v.get("parameters")) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => "{}".into(),
    };
    Some(json!({"index": index, "id": format!("call_{index}"), "type": "function", "function": {"name": name, "arguments": arguments}}))
}

/// The whole answer as a chat message.
pub fn message(prompt: &str, tools: Option<&Value>, text: &str) -> (Value, bool) {
    let mut parser = AnswerParser::new(prompt, tools);
    let mut deltas = parser.push(text);
    deltas.extend(parser.finish());
    let (mut content, mut reasoning, mut calls) = (String::new(), String::new(), vec![]);
    for d in deltas {
        match d {
            Delta::Content(t) => content.push_str(&t),
            Delta::Reasoning(t) => reasoning.push_str(&t),
            Delta::ToolCall(mut c) => {
                c.as_object_mut().map(|o| o.remove("index"));
                calls.push(c);
            }
        }
    }
    let mut m = json!({"role": "assistant", "content": if calls.is_empty() || !content.trim().is_empty() { Value::from(content.trim_start()) } else { Value::Null }});
    if !reasoning.is_empty() {
        m["reasoning_content"] = reasoning.trim().into();
    }
    let called = !calls.is_empty();
    if called {
        m["tool_calls"] = calls.into();
    }
    (m, called)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasoning_tool_calls_and_content_are_told_apart() {
        let (m, called) = message("<|im_start|>assistant\n", None, "<think>\nThe user wants weather.\n</think>\n\nLet me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>");
        assert!(called);
        assert_eq!(m["reasoning_content"], "The user wants weather.");
        assert_eq!(m["content"].as_str().unwrap().trim(), "Let me check.");
        assert_eq!(m["tool_calls"][0]["function"], json!({"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}));
        // a prompt that opened <think> itself; a tool_call that is not JSON stays text
        let (m, called) = message("<think>\n", None, "hmm</think>Answer <tool_call>oops</tool_call>");
        assert!(!called);
        assert_eq!(m["reasoning_content"], "hmm");
        assert_eq!(m["content"], "Answer <tool_call>oops</tool_call>");
    }

    #[test]
    fn streamed_deltas_add_up_to_the_whole() {
        let text = "<think>a</think>b<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>";
        let mut p = AnswerParser::new("", None);
        let mut deltas: Vec<Delta> = text.chars().flat_map(|c| p.push(&c.to_string())).collect();
        deltas.extend(p.finish());
        let reasoning: String = deltas.iter().filter_map(|d| if let Delta::Reasoning(t) = d { Some(t.as_str()) } else { None }).collect();
        let content: String = deltas.iter().filter_map(|d| if let Delta::Content(t) = d { Some(t.as_str()) } else { None }).collect();
        assert_eq!((reasoning.as_str(), content.as_str()), ("a", "b"));
        assert_eq!(deltas.iter().filter(|d| matches!(d, Delta::ToolCall(_))).count(), 1);
    }

    #[test]
    fn a_bare_json_call_of_an_offered_tool_is_a_call() {
        let tools = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]);
        let (m, called) = message("", Some(&tools), " {\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}");
        assert!(called);
        assert_eq!(m["tool_calls"][0]["function"], json!({"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}));
        assert!(m["content"].is_null());
        // JSON naming no offered tool, JSON without tools offered, and text are content
        for (tools, text) in [(Some(&tools), "{\"name\": \"other\"}"), (None, "{\"name\": \"get_weather\"}"), (Some(&tools), "Sunny {\"name\": \"get_weather\"}")] {
            let (m, called) = message("", tools, text);
            assert!(!called);
            assert_eq!(m["content"], text);
        }
        // streamed: held back until the end, then one call
        let mut p = AnswerParser::new("", Some(&tools));
        let text = "{\"name\": \"get_weather\", \"arguments\": {}}";
        assert!(text.chars().all(|c| p.push(&c.to_string()).is_empty()));
        assert!(matches!(p.finish().as_slice(), [Delta::ToolCall(_)]));
    }
}
