//! Every template in tests/fixtures/chat-templates renders byte for byte as transformers 5.23 did,
//! or fails where transformers raised.
use runtime::chat_template::{ChatTemplate, DateTime};
use serde_json::{json, Value};

#[test]
fn all_templates_match_transformers() {
    let dir = kiln_tests::fixture("chat-templates");
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let now = DateTime::parse(expected["fixed_now"].as_str().unwrap());
    let mut failures = vec![];
    let mut checked = 0;
    for (name, cases) in expected["expected"].as_object().unwrap() {
        let source = std::fs::read_to_string(dir.join("templates").join(format!("{name}.jinja"))).unwrap();
        for (case, want) in cases.as_object().unwrap() {
            checked += 1;
            let spec = &expected["cases"][case];
            let mut vars = expected["special_tokens"].clone();
            vars["messages"] = spec["messages"].clone();
            vars["add_generation_prompt"] = spec.get("add_generation_prompt").cloned().unwrap_or(json!(true));
            if let Some(tools) = spec.get("tools") {
                vars["tools"] = tools.clone();
            }
            let got = ChatTemplate::new(&source, now).and_then(|t| t.render(&vars));
            match (want["ok"].as_bool().unwrap(), got) {
                (true, Ok(text)) if text == want["text"].as_str().unwrap() => {}
                (false, Err(_)) => {}
                (true, Ok(text)) => {
                    let want = want["text"].as_str().unwrap();
                    let at = text.bytes().zip(want.bytes()).position(|(a, b)| a != b).unwrap_or(text.len().min(want.len()));
                    let from = at.saturating_sub(40);
                    let (g, w) = (text.get(from..(at + 40).min(text.len())), want.get(from..(at + 40).min(want.len())));
                    failures.push(format!("{name}/{case}: differs at byte {at}\n   got: {g:?}\n  want: {w:?}"));
                }
                (true, Err(e)) => failures.push(format!("{name}/{case}: error {e}")),
                (false, Ok(_)) => failures.push(format!("{name}/{case}: rendered, but transformers raised {}", want["error"])),
            }
        }
    }
    assert!(checked >= 264, "only {checked} renders checked");
    assert!(failures.is_empty(), "{} of {checked} renders differ:\n{}", failures.len(), failures.join("\n"));
}
