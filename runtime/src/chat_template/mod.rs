//! Chat templates, rendered as transformers renders them: Jinja with trim_blocks, lstrip_blocks and
//! loop controls, `raise_exception`, `strftime_now`, `namespace`, Python's `str()` for printed values
//! and `json.dumps` for `tojson` (python.rs), and what minijinja lacks made up by source rewrites
//! (rewrite.rs): `{% generation %}` blocks, loops over None failing, Markup's escaping `+`.
//! Messages are JSON values, so tool calls and multimodal content pass through as they are.
mod python;
mod rewrite;
pub mod strftime;

use minijinja::value::{Kwargs, Rest};
use minijinja::{Environment, Error as JinjaError, ErrorKind, Value};

pub use strftime::DateTime;

use crate::error::{Error, Result};

pub struct ChatTemplate {
    env: Environment<'static>,
}

fn invalid(msg: impl Into<String>) -> JinjaError {
    JinjaError::new(ErrorKind::InvalidOperation, msg.into())
}

impl ChatTemplate {
    /// A template whose `strftime_now` reads `now`, or the local clock when `None`.
    pub fn new(source: &str, now: Option<DateTime>) -> Result<ChatTemplate> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.set_formatter(|out, _state, value| {
            out.write_str(&python::str(value)).map_err(|e| invalid(e.to_string()))
        });
        env.add_function("raise_exception", |msg: String| -> std::result::Result<Value, JinjaError> { Err(invalid(msg)) });
        env.add_function("strftime_now", move |fmt: String| now.unwrap_or_else(DateTime::now).strftime(&fmt));
        env.add_filter("tojson", tojson);
        env.add_filter("string", |v: Value| python::str(&v));
        env.add_filter("py_iterable", |v: Value| if python::is_iterable(&v) { Ok(v) } else { Err(invalid(python::not_iterable(&v))) });
        env.add_function("py_add", |values: Rest<Value>| python::add(&values).map_err(invalid));
        env.add_test("iterable", |v: Value| python::is_iterable(&v));
        env.add_template_owned("chat", rewrite::rewrite(source)).map_err(|e| Error::Template(one_line(&e)))?;
        Ok(ChatTemplate { env })
    }

    /// Renders with `vars`: `messages`, `tools`, `add_generation_prompt`, special tokens, and any
    /// extras; like transformers, `tools` and `documents` are `None` unless given.
    pub fn render(&self, vars: &serde_json::Value) -> Result<String> {
        let mut vars = vars.clone();
        if let Some(map) = vars.as_object_mut() {
            for key in ["tools", "documents"] {
                map.entry(key).or_insert(serde_json::Value::Null);
            }
        }
        let template = self.env.get_template("chat").map_err(|e| Error::Template(one_line(&e)))?;
        template.render(Value::from_serialize(&vars)).map_err(|e| Error::Template(one_line(&e)))
    }
}

/// `raise_exception("...")` reads as its own message; other errors keep minijinja's location.
fn one_line(e: &JinjaError) -> String {
    let mut msg = match (e.kind(), e.detail()) {
        (ErrorKind::InvalidOperation, Some(d)) => d.to_string(),
        _ => e.to_string(),
    };
    if let Some(line) = e.line() {
        msg = format!("{msg} (template line {line})");
    }
    msg.replace('\n', " ")
}

/// transformers' `tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)`.
fn tojson(value: Value, args: Rest<Value>, kwargs: Kwargs) -> std::result::Result<Value, JinjaError> {
    let arg = |i: usize, name: &str| -> std::result::Result<Option<Value>, JinjaError> {
        Ok(match kwargs.get::<Option<Value>>(name)? {
            Some(v) => Some(v),
            None => args.get(i).cloned(),
        })
    };
    let ensure_ascii = arg(0, "ensure_ascii")?.is_some_and(|v| v.is_true());
    let indent = match arg(1, "indent")? {
        Some(v) if v.is_none() || v.is_undefined() => None,
        Some(v) if v.is_integer() => Some(" ".repeat(v.as_usize().unwrap_or(0))),
        Some(v) => Some(v.as_str().ok_or_else(|| invalid("tojson: indent must be an int or a string"))?.to_string()),
        None => None,
    };
    let separators = match arg(2, "separators")? {
        Some(v) if !v.is_none() && !v.is_undefined() => {
            let parts: Vec<String> = v.try_iter()?.map(|p| python::str(&p)).collect();
            let [item, key] = <[String; 2]>::try_from(parts).map_err(|_| invalid("tojson: separators must be a pair"))?;
            Some((item, key))
        }
        _ => None,
    };
    let sort_keys = arg(3, "sort_keys")?.is_some_and(|v| v.is_true());
    kwargs.assert_all_used()?;
    let style = python::JsonStyle::new(ensure_ascii, indent, separators, sort_keys);
    python::json_dumps(&value, &style).map(Value::from).map_err(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_blocks_and_loops_over_none() {
        let t = ChatTemplate::new("{% for m in messages %}{% generation %}{{ m.content }}{% endgeneration %}{% endfor %}", None).unwrap();
        assert_eq!(t.render(&serde_json::json!({"messages": [{"content": "hi"}]})).unwrap(), "hi");
        let tools = ChatTemplate::new("{{ tools is iterable }}{% for t in tools %}{{ t }}{% endfor %}", None).unwrap();
        assert_eq!(tools.render(&serde_json::json!({"tools": ["a"]})).unwrap(), "Truea");
        assert!(tools.render(&serde_json::json!({})).unwrap_err().to_string().contains("'NoneType' object is not iterable"));
    }

    #[test]
    fn python_semantics() {
        let now = DateTime::parse("2026-01-15T09:30:00");
        let t = ChatTemplate::new("{{ x }} {{ x|tojson }} {{ x|tojson(indent=1) }} {{ none }} {{ strftime_now('%d %B') }}{% set ns = namespace(a=1) %}{% set ns.a = 2 %} {{ ns.a }}", now).unwrap();
        let out = t.render(&serde_json::json!({"x": {"k": [true, 1.5, "<&>"]}})).unwrap();
        assert_eq!(out, "{'k': [True, 1.5, '<&>']} {\"k\": [true, 1.5, \"<&>\"]} {\n \"k\": [\n  true,\n  1.5,\n  \"<&>\"\n ]\n} None 15 January 2");
        let err = ChatTemplate::new("{{ raise_exception('System role not supported') }}", None).unwrap().render(&serde_json::json!({})).unwrap_err();
        assert_eq!(err.to_string(), "chat template: System role not supported (template line 1)");
    }
}
