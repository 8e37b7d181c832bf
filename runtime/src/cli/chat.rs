//! `kiln chat`: an interactive conversation. Every turn renders the whole conversation with the
//! chat template, and the session prefills only the tokens that differ from its KV cache — in
//! practice just the new turn. When the context fills, the oldest turns slide out.
use std::io::{BufRead, IsTerminal};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Result};
use clap::Args;
use crate::session::{Finish, Session, Stats};
use serde_json::{json, Value};

use super::generate::ModelArgs;

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
pub struct ChatArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The system prompt.
    #[arg(short, long)]
    pub system: Option<String>,
}

const HELP: &str = "commands: /reset (new conversation), /system TEXT (new system prompt, new conversation), /stats, /exit; \"\"\" starts and ends a message of several lines; Ctrl-C stops an answer";

pub fn chat(args: ChatArgs) -> Result<()> {
    let m = &args.model;
    let mut session = m.open()?;
    let mut sampler = m.sampler(&session)?;
    let opts = m.prompt_options()?;
    let mut system = args.system.clone();
    let mut messages: Vec<Value> = vec![];
    let mut last: Option<Stats> = None;

    // Ctrl-C while answering stops the answer; at the prompt it ends the session.
    let answering = Arc::new(AtomicBool::new(false));
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let (answering, cancel) = (answering.clone(), cancel.clone());
        ctrlc::set_handler(move || {
            if answering.load(Ordering::SeqCst) {
                cancel.store(true, Ordering::SeqCst);
            } else {
                eprintln!();
                std::process::exit(130);
            }
        })?;
    }

    let mut input = Input::new()?;
    if matches!(input, Input::Editor(_)) {
        eprintln!("kiln chat — {} ({} tokens of context). {HELP}", session.model.artifact.meta.source, session.context());
    }
    while let Some(line) = input.next()? {
        let line = match line.trim_start().strip_prefix(r#"""""#) {
            Some(first) => match input.message_of_lines(first)? {
                Some(text) => text,
                None => break,
            },
            None => line,
        };
        let line = line.trim_end();
        match line.split_once(' ').map_or((line, ""), |(c, rest)| (c, rest.trim())) {
            ("", _) => continue,
            ("/exit" | "/quit" | "/bye", _) => break,
            ("/reset", _) => {
                messages.clear();
                session.reset();
                eprintln!("[new conversation]");
                continue;
            }
            ("/system", text) => {
                system = (!text.is_empty()).then(|| text.to_string());
                messages.clear();
                session.reset();
                eprintln!("[system prompt {}; new conversation]", if system.is_some() { "set" } else { "cleared" });
                continue;
            }
            ("/stats", _) => {
                eprintln!("context: {} of {} tokens cached", session.cached_tokens(), session.context());
                if let Some(s) = &last {
                    eprintln!("last answer: {}", s.summary());
                }
                continue;
            }
            (c, _) if c.len() > 1 && c.starts_with('/') && c[1..].chars().all(char::is_alphabetic) => {
                eprintln!("unknown command {c}; {HELP}");
                continue;
            }
            _ => {}
        }
        messages.push(json!({"role": "user", "content": line}));
        let (text, ids) = match fit(&session, system.as_deref(), &mut messages, &opts, m.sampling.max_tokens) {
            Ok(fitted) => fitted,
            Err(e) => {
                eprintln!("kiln: {e:#}");
                messages.pop();
                continue;
            }
        };
        cancel.store(false, Ordering::SeqCst);
        answering.store(true, Ordering::SeqCst);
        let result = m.answer(&mut session, &mut sampler, &ids, &text, Some(&cancel));
        answering.store(false, Ordering::SeqCst);
        let (answer, stats, finish) = result?;
        if !std::io::stdout().is_terminal() {
            println!(); // piped: one answer per line block
        }
        if finish == Finish::Cancelled {
            eprintln!("[stopped]");
        }
        messages.push(json!({"role": "assistant", "content": answer}));
        last = Some(stats);
    }
    m.print_profile(&session);
    Ok(())
}

/// The user's lines: a line editor with history on a terminal, plain lines from a pipe.
enum Input {
    Editor(rustyline::DefaultEditor),
    Lines(std::io::Lines<std::io::StdinLock<'static>>),
}

impl Input {
    fn new() -> Result<Input> {
        Ok(if std::io::stdin().is_terminal() { Input::Editor(rustyline::DefaultEditor::new()?) } else { Input::Lines(std::io::stdin().lock().lines()) })
    }

    /// The rest of a `"""` message: lines up to the one ending in `"""` (None at end of input).
    fn message_of_lines(&mut self, first: &str) -> Result<Option<String>> {
        let mut text = first.to_string();
        loop {
            if let Some(done) = text.trim_end().strip_suffix(r#"""""#) {
                return Ok(Some(done.trim().to_string()));
            }
            let Some(line) = self.next_with_prompt(". ")? else { return Ok(None) };
            text.push('\n');
            text.push_str(&line);
        }
    }

    fn next(&mut self) -> Result<Option<String>> {
        self.next_with_prompt("> ")
    }

    /// The next line; None at end of input (Ctrl-D, or Ctrl-C at the prompt).
    fn next_with_prompt(&mut self, prompt: &str) -> Result<Option<String>> {
        match self {
            Input::Editor(editor) => match editor.readline(prompt) {
                Ok(line) => {
                    editor.add_history_entry(line.as_str())?;
                    Ok(Some(line))
                }
                Err(rustyline::error::ReadlineError::Eof | rustyline::error::ReadlineError::Interrupted) => Ok(None),
                Err(e) => Err(e.into()),
            },
            Input::Lines(lines) => Ok(lines.next().transpose()?),
        }
    }
}

/// Renders the conversation; while it leaves less than `reserve` tokens for the answer, drops the
/// oldest turn (a user message and the replies up to the next one).
fn fit(session: &Session, system: Option<&str>, messages: &mut Vec<Value>, opts: &crate::prompt::PromptOptions, max_tokens: usize) -> Result<(String, Vec<u32>)> {
    let context = session.context();
    let reserve = max_tokens.min(context / 2);
    let meta = &session.model.artifact.meta;
    let mut dropped = 0;
    loop {
        let mut all: Vec<Value> = system.map(|s| json!({"role": "system", "content": s})).into_iter().collect();
        all.extend(messages.iter().cloned());
        let text = crate::prompt::render(meta, &all, opts)?;
        let ids = session.tokenizer.encode(&text)?;
        if ids.len() + reserve <= context {
            if dropped > 0 {
                eprintln!("[context full: the oldest {dropped} message(s) slid out]");
            }
            return Ok((text, ids));
        }
        let next_user = messages.iter().skip(1).position(|m| m["role"] == "user").map(|i| i + 1);
        match next_user {
            Some(j) => {
                messages.drain(..j);
                dropped += j;
            }
            None => bail!("this message needs {} tokens with the template, but the context holds {context} (with {reserve} kept for the answer); shorten it or raise --ctx", ids.len()),
        }
    }
}
