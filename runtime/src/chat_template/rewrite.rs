//! Source rewrites that give minijinja three behaviours of Python's Jinja that it lacks:
//! `{% generation %}` blocks (transformers' extension: the body renders unchanged); loops over
//! `None` failing (`for t in tools` with no tools raises in Python, iterates nothing in
//! minijinja); and `+` on a `|safe` string escaping the other operand (markupsafe's `Markup`),
//! for output tags that are plain `+` chains. Each tag keeps its whitespace control.

/// Applies the rewrites to every `{% … %}` tag of `source`.
pub fn rewrite(source: &str) -> String {
    let mut out = String::with_capacity(source.len() + 64);
    let mut rest = source;
    while let Some(at) = rest.find('{') {
        let kind = rest[at..].get(..2).unwrap_or("");
        let close = match kind {
            "{#" => "#}",
            "{{" => "}}",
            "{%" => "%}",
            _ => {
                out.push_str(&rest[..at + 1]);
                rest = &rest[at + 1..];
                continue;
            }
        };
        out.push_str(&rest[..at]);
        let body_start = at + 2;
        let end = if kind == "{#" { rest[body_start..].find(close).map(|i| body_start + i) } else { find_outside_strings(&rest[body_start..], close).map(|i| body_start + i) };
        let Some(end) = end else {
            out.push_str(&rest[at..]);
            return out;
        };
        let body = &rest[body_start..end];
        match kind {
            "{%" => out.push_str(&format!("{{%{}%}}", rewrite_tag(body))),
            "{{" => out.push_str(&format!("{{{{{}}}}}", rewrite_output(body))),
            _ => out.push_str(&rest[at..end + 2]),
        }
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

/// A tag's inside as (leading `-`/`+` markers, the rest, trailing markers).
fn markers(body: &str) -> (&str, &str, &str) {
    let rest = body.trim_start_matches(['-', '+']);
    let inner = rest.trim_end_matches(['-', '+']);
    (&body[..body.len() - rest.len()], inner, &rest[inner.len()..])
}

/// Rewrites the inside of one statement tag, keeping its `-`/`+` markers.
fn rewrite_tag(body: &str) -> String {
    let (l, inner, t) = markers(body);
    let words = inner.trim();
    let new = match words {
        "generation" => "if true".to_string(),
        "endgeneration" => "endif".to_string(),
        _ if words.starts_with("for ") => guard_for(words),
        _ => return body.to_string(),
    };
    format!("{l} {new} {t}")
}

/// `{{ a|safe + b + c }}` -> `{{ py_add(a|safe, b, c) }}`, so `+` follows Markup's rules.
fn rewrite_output(body: &str) -> String {
    let (l, inner, t) = markers(body);
    let words = top_level_words(inner);
    let keywords = ["if", "else", "and", "or", "not", "in", "is"];
    let operators = top_level_chars(inner);
    let plain_chain = operators.iter().all(|&(_, c)| c == b'+') && !operators.is_empty() && !words.iter().any(|(_, w)| keywords.contains(w));
    let uses_safe = inner.split(|c: char| !(c.is_alphanumeric() || c == '_')).any(|w| w == "safe");
    if !(plain_chain && uses_safe) {
        return body.to_string();
    }
    let mut operands = vec![];
    let mut start = 0;
    for &(i, _) in &operators {
        operands.push(inner[start..i].trim());
        start = i + 1;
    }
    operands.push(inner[start..].trim());
    format!("{l} py_add({}) {t}", operands.join(", "))
}

/// Operator characters at bracket depth 0, outside string literals.
fn top_level_chars(s: &str) -> Vec<(usize, u8)> {
    let bytes = s.as_bytes();
    let (mut ops, mut depth, mut i) = (vec![], 0i32, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\'' | b'"' => i = skip_string(bytes, i),
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            c @ (b'+' | b'-' | b'*' | b'/' | b'%' | b'~' | b'<' | b'>' | b'=' | b'!') if depth == 0 => ops.push((i, c)),
            _ => {}
        }
        i += 1;
    }
    ops
}

/// `for x in EXPR [if c] [recursive]` -> `for x in (EXPR)|py_iterable [if c] [recursive]`.
fn guard_for(tag: &str) -> String {
    let words = top_level_words(tag);
    let Some(&(in_at, _)) = words.iter().find(|(_, w)| *w == "in") else { return tag.to_string() };
    let expr_start = in_at + 2;
    let expr_end = words.iter().find(|(i, w)| *i > in_at && (*w == "if" || *w == "recursive")).map_or(tag.len(), |(i, _)| *i);
    let expr = tag[expr_start..expr_end].trim();
    format!("{} ({expr})|py_iterable {}", &tag[..expr_start], &tag[expr_end..]).trim_end().to_string()
}

/// Identifier-like words at bracket depth 0, outside string literals, with their byte offsets.
fn top_level_words(s: &str) -> Vec<(usize, &str)> {
    let bytes = s.as_bytes();
    let (mut words, mut depth, mut i) = (vec![], 0i32, 0);
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'\'' | b'"' => i = skip_string(bytes, i),
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                let preceded_by_dot = start > 0 && bytes[start - 1] == b'.';
                if depth == 0 && !preceded_by_dot {
                    words.push((start, &s[start..i]));
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    words
}

/// Index of the closing quote of the string literal starting at `i`.
fn skip_string(bytes: &[u8], i: usize) -> usize {
    let quote = bytes[i];
    let mut j = i + 1;
    while j < bytes.len() && bytes[j] != quote {
        j += if bytes[j] == b'\\' { 2 } else { 1 };
    }
    j.min(bytes.len())
}

fn find_outside_strings(s: &str, needle: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' | b'"' => i = skip_string(bytes, i) + 1,
            _ if bytes[i..].starts_with(needle.as_bytes()) => return Some(i),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::rewrite;

    #[test]
    fn rewrites_keep_whitespace_control() {
        assert_eq!(rewrite("a{%- generation %}b{% endgeneration -%} c{{ x }}"), "a{%- if true %}b{% endif -%} c{{ x }}");
        assert_eq!(rewrite("{%- for m in messages[1:] if m.role != 'x %}' -%}"), "{%- for m in (messages[1:])|py_iterable if m.role != 'x %}' -%}");
        assert_eq!(rewrite("{{- 'a'|safe + x|tojson -}}{{ 'b' + c }}{{ 'c'|safe ~ d }}"), "{{- py_add('a'|safe, x|tojson) -}}{{ 'b' + c }}{{ 'c'|safe ~ d }}");
        assert_eq!(rewrite("{% for k, v in d.items() %}{{ '{%' }}{# {% for #}"), "{% for k, v in (d.items())|py_iterable %}{{ '{%' }}{# {% for #}");
    }
}
