//! A compiled model's prompt: its chat template (the `tool_use` one when tools are given) rendered
//! with the variables transformers passes: messages, tools, add_generation_prompt, the special
//! tokens, and extras such as `enable_thinking`.
use serde_json::{Map, Value};

use crate::artifact::Meta;
use crate::chat_template::ChatTemplate;
use crate::error::{Error, Result};

#[derive(Clone, Debug)]
pub struct PromptOptions {
    pub tools: Option<Value>,
    pub add_generation_prompt: bool,
    /// Extra template variables (`enable_thinking`, …).
    pub vars: Map<String, Value>,
}

impl Default for PromptOptions {
    fn default() -> Self {
        PromptOptions { tools: None, add_generation_prompt: true, vars: Map::new() }
    }
}

/// The template transformers would pick: `tool_use` for a request with tools if the model has
/// one, else `default`, else the only one.
pub fn template_for(meta: &Meta, with_tools: bool) -> Result<&str> {
    let t = &meta.chat_templates;
    let chosen = if with_tools { t.get("tool_use").or(t.get("default")) } else { t.get("default") };
    chosen.or_else(|| (t.len() == 1).then(|| t.values().next()).flatten()).map(String::as_str).ok_or(Error::NoChatTemplate)
}

pub fn render(meta: &Meta, messages: &[Value], opts: &PromptOptions) -> Result<String> {
    let template = ChatTemplate::new(template_for(meta, opts.tools.is_some())?, None)?;
    let mut vars: Map<String, Value> = meta.special_tokens.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect();
    vars.extend(opts.vars.clone());
    vars.insert("messages".into(), Value::from(messages.to_vec()));
    vars.insert("add_generation_prompt".into(), opts.add_generation_prompt.into());
    if let Some(tools) = &opts.tools {
        vars.insert("tools".into(), tools.clone());
    }
    template.render(&Value::Object(vars))
}
