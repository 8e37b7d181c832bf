//! Python's text forms of template values: `str()` / `repr()` (what Jinja prints) and `json.dumps`
//! (transformers' `tojson`), so a rendered prompt matches transformers byte for byte.
use std::fmt::Write;

use minijinja::value::{Value, ValueKind};

/// `str(value)`: strings as they are, everything else as `repr`.
pub fn str(v: &Value) -> String {
    match v.kind() {
        ValueKind::Undefined => String::new(),
        ValueKind::String => v.as_str().unwrap_or_default().to_string(),
        _ => repr(v),
    }
}

/// Python's `a + b + …`, where a `Markup` (`|safe`) string escapes the plain strings it meets.
pub fn add(values: &[Value]) -> Result<Value, String> {
    let mut acc = values.first().cloned().unwrap_or_default();
    for v in &values[1..] {
        acc = match (acc.as_str(), v.as_str()) {
            (Some(a), Some(b)) if acc.is_safe() || v.is_safe() => {
                let esc = |x: &Value, s: &str| if x.is_safe() { s.to_string() } else { escape(s) };
                Value::from_safe_string(esc(&acc, a) + &esc(v, b))
            }
            (Some(a), Some(b)) => Value::from(format!("{a}{b}")),
            _ if acc.is_integer() && v.is_integer() => Value::from(acc.as_i64().unwrap_or(0) + v.as_i64().unwrap_or(0)),
            _ if acc.is_number() && v.is_number() => Value::from(f64::try_from(acc.clone()).unwrap_or(0.0) + f64::try_from(v.clone()).unwrap_or(0.0)),
            _ if acc.kind() == ValueKind::Seq && v.kind() == ValueKind::Seq => Value::from(acc.try_iter().into_iter().flatten().chain(v.try_iter().into_iter().flatten()).collect::<Vec<_>>()),
            _ => return Err(format!("unsupported operand types for +: {} and {}", acc.kind(), v.kind())),
        };
    }
    Ok(acc)
}

/// markupsafe's `escape`.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('\'', "&#39;").replace('"', "&#34;")
}

/// Whether Python's `iter(value)` succeeds (Jinja's Undefined iterates as empty; None does not).
pub fn is_iterable(v: &Value) -> bool {
    matches!(v.kind(), ValueKind::Undefined | ValueKind::String | ValueKind::Bytes | ValueKind::Seq | ValueKind::Map | ValueKind::Iterable)
}

/// Python's message for iterating a value that is not iterable.
pub fn not_iterable(v: &Value) -> String {
    let ty = match v.kind() {
        ValueKind::None => "NoneType",
        ValueKind::Bool => "bool",
        ValueKind::Number if v.is_integer() => "int",
        ValueKind::Number => "float",
        _ => "object",
    };
    format!("'{ty}' object is not iterable")
}

/// `repr(value)` for the types JSON and templates produce.
pub fn repr(v: &Value) -> String {
    let mut out = String::new();
    write_repr(&mut out, v);
    out
}

fn write_repr(out: &mut String, v: &Value) {
    match v.kind() {
        ValueKind::Undefined => {}
        ValueKind::None => out.push_str("None"),
        ValueKind::Bool => out.push_str(if v.is_true() { "True" } else { "False" }),
        ValueKind::Number => out.push_str(&number(v)),
        ValueKind::String => repr_str(out, v.as_str().unwrap_or_default()),
        ValueKind::Seq | ValueKind::Iterable => {
            out.push('[');
            for (i, item) in v.try_iter().into_iter().flatten().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(out, &item);
            }
            out.push(']');
        }
        ValueKind::Map => {
            out.push('{');
            for (i, key) in v.try_iter().into_iter().flatten().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(out, &key);
                out.push_str(": ");
                write_repr(out, &v.get_item(&key).unwrap_or_default());
            }
            out.push('}');
        }
        _ => {
            let _ = write!(out, "{v}");
        }
    }
}

/// Python's string repr: single quotes unless the text holds a single quote and no double quote.
fn repr_str(out: &mut String, s: &str) {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// An int as digits; a float as Python's shortest round-trip repr (`1.0`, `1e-05`, `1e+16`).
fn number(v: &Value) -> String {
    if v.is_integer() {
        return v.to_string();
    }
    let x = f64::try_from(v.clone()).unwrap_or(f64::NAN);
    float(x)
}

pub fn float(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "-1.2345e-7"
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap();
    let exp: i32 = exp.parse().unwrap();
    let (sign, mantissa) = mantissa.strip_prefix('-').map_or(("", mantissa), |m| ("-", m));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        if point <= 0 {
            format!("{sign}0.{}{digits}", "0".repeat((-point) as usize))
        } else if point as usize >= digits.len() {
            format!("{sign}{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            format!("{sign}{}.{}", &digits[..point as usize], &digits[point as usize..])
        }
    } else {
        let frac = &digits[1..];
        let m = if frac.is_empty() { digits[..1].to_string() } else { format!("{}.{frac}", &digits[..1]) };
        format!("{sign}{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    }
}

/// `json.dumps` options, with transformers' `tojson` defaults.
pub struct JsonStyle {
    pub ensure_ascii: bool,
    pub indent: Option<String>,
    pub item_sep: String,
    pub key_sep: String,
    pub sort_keys: bool,
}

impl JsonStyle {
    /// Python's defaults: `", "` between items unless indenting, then `","`.
    pub fn new(ensure_ascii: bool, indent: Option<String>, separators: Option<(String, String)>, sort_keys: bool) -> JsonStyle {
        let (item_sep, key_sep) = separators.unwrap_or_else(|| (if indent.is_some() { "," } else { ", " }.into(), ": ".into()));
        JsonStyle { ensure_ascii, indent, item_sep, key_sep, sort_keys }
    }
}

/// `json.dumps(value, ...)`; an error for values JSON cannot hold (Undefined, functions).
pub fn json_dumps(v: &Value, style: &JsonStyle) -> Result<String, String> {
    let mut out = String::new();
    write_json(&mut out, v, style, 0)?;
    Ok(out)
}

fn newline(out: &mut String, style: &JsonStyle, depth: usize) {
    if let Some(indent) = &style.indent {
        out.push('\n');
        for _ in 0..depth {
            out.push_str(indent);
        }
    }
}

fn write_json(out: &mut String, v: &Value, style: &JsonStyle, depth: usize) -> Result<(), String> {
    match v.kind() {
        ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
        ValueKind::Number => out.push_str(&number(v)),
        ValueKind::String => json_str(out, v.as_str().unwrap_or_default(), style.ensure_ascii),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = v.try_iter().map_err(|e| e.to_string())?.collect();
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(&style.item_sep);
                }
                newline(out, style, depth + 1);
                write_json(out, item, style, depth + 1)?;
            }
            newline(out, style, depth);
            out.push(']');
        }
        ValueKind::Map => {
            let mut keys: Vec<Value> = v.try_iter().map_err(|e| e.to_string())?.collect();
            if keys.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            if style.sort_keys {
                keys.sort_by_key(str);
            }
            out.push('{');
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(&style.item_sep);
                }
                newline(out, style, depth + 1);
                // json.dumps turns non-string keys into strings: 1 -> "1", True -> "true"
                let k = match key.kind() {
                    ValueKind::String => str(key),
                    ValueKind::None => "null".into(),
                    ValueKind::Bool => if key.is_true() { "true" } else { "false" }.into(),
                    _ => str(key),
                };
                json_str(out, &k, style.ensure_ascii);
                out.push_str(&style.key_sep);
                write_json(out, &v.get_item(key).map_err(|e| e.to_string())?, style, depth + 1)?;
            }
            newline(out, style, depth);
            out.push('}');
        }
        ValueKind::Undefined => return Err("Object of type Undefined is not JSON serializable".into()),
        kind => return Err(format!("Object of type {kind} is not JSON serializable")),
    }
    Ok(())
}

fn json_str(out: &mut String, s: &str, ensure_ascii: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (ensure_ascii && c as u32 > 0x7e) => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_python_does() {
        for (x, want) in [(1.0, "1.0"), (0.5, "0.5"), (1e-5, "1e-05"), (1e16, "1e+16"), (123456.0, "123456.0"), (-0.0001, "-0.0001"), (0.1 + 0.2, "0.30000000000000004"), (2.5e-7, "2.5e-07")] {
            assert_eq!(float(x), want);
        }
    }

    #[test]
    fn json_and_repr_match_python() {
        let v = Value::from_serialize(serde_json::json!({"b": [1, 2.0, "é\"\n"], "a": {"x": null, "y": true}, "e": []}));
        let compact = JsonStyle::new(false, None, None, false);
        assert_eq!(json_dumps(&v, &compact).unwrap(), r#"{"b": [1, 2.0, "é\"\n"], "a": {"x": null, "y": true}, "e": []}"#);
        let pretty = JsonStyle::new(true, Some("  ".into()), None, true);
        assert_eq!(json_dumps(&v, &pretty).unwrap(), "{\n  \"a\": {\n    \"x\": null,\n    \"y\": true\n  },\n  \"b\": [\n    1,\n    2.0,\n    \"\\u00e9\\\"\\n\"\n  ],\n  \"e\": []\n}");
        assert_eq!(repr(&v), r#"{'b': [1, 2.0, 'é"\n'], 'a': {'x': None, 'y': True}, 'e': []}"#);
    }
}
