//! `kiln template` renders any chat template file exactly as transformers would; `kiln prompt`
//! shows what a compiled model receives for a conversation, as text or token ids.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use crate::chat_template::{ChatTemplate, DateTime};
use crate::prompt::PromptOptions;
use serde_json::{Map, Value};

/// The conversation options both commands take.
#[derive(Args, Debug)]
pub struct ConversationArgs {
    /// A JSON list of messages, or an object with "messages" (and optionally "tools").
    #[arg(long, value_name = "CONV.json")]
    pub messages: PathBuf,
    /// A JSON list of tool schemas.
    #[arg(long, value_name = "TOOLS.json")]
    pub tools: Option<PathBuf>,
    /// A template variable; VALUE is read as JSON when it parses (true, 3, "x"), else as text.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Leave out the assistant header that starts the answer.
    #[arg(long)]
    pub no_generation_prompt: bool,
}

#[derive(Args, Debug)]
pub struct TemplateArgs {
    pub template: PathBuf,
    #[command(flatten)]
    pub conversation: ConversationArgs,
    /// The time `strftime_now` sees, e.g. 2026-01-15T09:30:00 [default: now]
    #[arg(long)]
    pub now: Option<String>,
}

#[derive(Args, Debug)]
pub struct PromptArgs {
    pub artifact: PathBuf,
    #[command(flatten)]
    pub conversation: ConversationArgs,
    /// Print the token ids instead of the text.
    #[arg(long)]
    pub ids: bool,
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: invalid JSON", path.display()))
}

impl ConversationArgs {
    /// The messages and the prompt options.
    fn load(&self) -> Result<(Vec<Value>, PromptOptions)> {
        let conv = read_json(&self.messages)?;
        let mut opts = PromptOptions { add_generation_prompt: !self.no_generation_prompt, ..Default::default() };
        let messages = match &conv {
            Value::Array(m) => m.clone(),
            Value::Object(o) if o.get("messages").is_some_and(Value::is_array) => {
                opts.tools = o.get("tools").cloned();
                o["messages"].as_array().cloned().unwrap_or_default()
            }
            _ => bail!("{}: expected a list of messages or an object with \"messages\"", self.messages.display()),
        };
        if let Some(t) = &self.tools {
            opts.tools = Some(read_json(t)?);
        }
        opts.vars = parse_vars(&self.vars)?;
        Ok((messages, opts))
    }
}

/// `--var NAME=VALUE`s: VALUE as JSON when it parses (true, 3, "x"), else as text.
pub fn parse_vars(vars: &[String]) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    for var in vars {
        let Some((name, value)) = var.split_once('=') else { bail!("--var {var}: expected NAME=VALUE") };
        out.insert(name.to_string(), serde_json::from_str(value).unwrap_or_else(|_| Value::from(value)));
    }
    Ok(out)
}

pub fn template(args: TemplateArgs) -> Result<()> {
    let source = std::fs::read_to_string(&args.template).with_context(|| format!("{}", args.template.display()))?;
    let now = match &args.now {
        Some(s) => Some(DateTime::parse(s).with_context(|| format!("--now {s}: expected a date and time like 2026-01-15T09:30:00"))?),
        None => None,
    };
    let (messages, opts) = args.conversation.load()?;
    let mut vars: Map<String, Value> = opts.vars;
    vars.insert("messages".into(), Value::from(messages));
    vars.insert("add_generation_prompt".into(), opts.add_generation_prompt.into());
    if let Some(tools) = opts.tools {
        vars.insert("tools".into(), tools);
    }
    let text = ChatTemplate::new(&source, now)?.render(&Value::Object(vars)).with_context(|| format!("{}", args.template.display()))?;
    print!("{text}");
    Ok(())
}

pub fn prompt(args: PromptArgs) -> Result<()> {
    let artifact = crate::artifact::Artifact::open(&args.artifact, false)?;
    let meta = &artifact.meta;
    let (messages, opts) = args.conversation.load()?;
    let text = crate::prompt::render(meta, &messages, &opts)?;
    if args.ids {
        let tok = crate::tokenizer::Tokenizer::for_artifact(meta)?;
        let ids: Vec<String> = tok.encode(&text)?.iter().map(u32::to_string).collect();
        println!("{}", ids.join(" "));
    } else {
        print!("{text}");
    }
    Ok(())
}
