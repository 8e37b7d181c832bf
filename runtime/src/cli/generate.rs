//! What `kiln run` and `kiln chat` share: opening a model, the reasoning options, and streaming one
//! answer to standard output.
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::Result;
use clap::{Args, ValueEnum};
use crate::prompt::PromptOptions;
use crate::sampler::Sampler;
use crate::session::{Finish, Request, Session, Stats};
use crate::tokenizer::Tokenizer;

use super::sampling::SamplingArgs;
use super::thinking::{Show, ThinkingView};

#[derive(Args, Clone, Debug)]
pub struct ModelArgs {
    /// A compiled model (`kiln compile`).
    pub artifact: PathBuf,
    /// KV-cache size in tokens [default: the model's context, at most 4096]
    #[arg(long)]
    pub ctx: Option<usize>,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Tell the template to think or not (`enable_thinking`), for models that reason.
    #[arg(long, value_enum)]
    pub thinking: Option<OnOff>,
    /// A chat-template variable, e.g. reasoning_effort=high (VALUE is JSON when it parses).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Drop <think>…</think> from the output.
    #[arg(long)]
    pub hide_thinking: bool,
    /// Timings on standard error.
    #[arg(short, long)]
    pub verbose: bool,
    /// Time every plan step; print where the time went (by kernel, layers summed) at the end.
    #[arg(long)]
    pub profile: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

impl ModelArgs {
    pub fn open(&self) -> Result<Session> {
        if self.ctx == Some(0) {
            anyhow::bail!("--ctx must be at least 1");
        }
        let mut model = crate::Model::open(&self.artifact, Some(self.ctx.unwrap_or(4096)))?;
        if self.profile {
            model.executor.profile = Some(vec![0.0; model.artifact.meta.plan.steps.len()]);
        }
        let meta = &model.artifact.meta;
        let tokenizer = Tokenizer::for_artifact(meta)?;
        Ok(Session::new(model, tokenizer))
    }

    pub fn prompt_options(&self) -> Result<PromptOptions> {
        let mut opts = PromptOptions { vars: super::template::parse_vars(&self.vars)?, ..Default::default() };
        if let Some(t) = self.thinking {
            opts.vars.insert("enable_thinking".into(), matches!(t, OnOff::On).into());
        }
        Ok(opts)
    }

    fn show(&self) -> Show {
        match (self.hide_thinking, std::io::stdout().is_terminal()) {
            (true, _) => Show::Hidden,
            (false, true) => Show::Dimmed,
            (false, false) => Show::Plain,
        }
    }

    /// Generates an answer to `ids` (the tokens of `prompt_text`), streaming it to standard output;
    /// returns its text.
    /// The step times gathered by --profile, summed over layers, on standard error.
    pub fn print_profile(&self, session: &Session) {
        let Some(times) = &session.model.executor.profile else { return };
        let mut by_label: Vec<(String, f64, usize)> = vec![];
        for (step, t) in session.model.artifact.meta.plan.steps.iter().zip(times) {
            // "layer 3: matmul q_proj (…)" and "layer 4: …" are one entry
            let label = step.label.split_once(": ").map_or(step.label.as_str(), |(_, rest)| rest);
            match by_label.iter_mut().find(|(l, _, _)| l == label) {
                Some(e) => (e.1, e.2) = (e.1 + t, e.2 + 1),
                None => by_label.push((label.to_string(), *t, 1)),
            }
        }
        by_label.sort_by(|a, b| b.1.total_cmp(&a.1));
        let total: f64 = times.iter().sum();
        eprintln!("{:>9} {:>6}  {:<5} step", "seconds", "share", "count");
        for (label, t, n) in by_label {
            eprintln!("{t:>9.4} {:>5.1}%  {n:<5} {label}", 100.0 * t / total.max(1e-12));
        }
    }

    /// The sampler, with its settings on standard error when verbose.
    pub fn sampler(&self, session: &Session) -> Result<Sampler> {
        let config = self.sampling.config(&session.model.artifact.meta.generation)?;
        if self.verbose {
            eprintln!(
                "sampling: temperature {}, top-k {}, top-p {}, min-p {}, repeat-penalty {}, seed {}",
                config.temperature, config.top_k, config.top_p, config.min_p, config.repeat_penalty, config.seed
            );
        }
        Ok(Sampler::new(config))
    }

    pub fn answer(&self, session: &mut Session, sampler: &mut Sampler, ids: &[u32], prompt_text: &str, cancel: Option<&AtomicBool>) -> Result<(String, Stats, Finish)> {
        let stop_ids = session.model.artifact.meta.eos_token_ids.clone();
        let mut view = ThinkingView::new(self.show(), prompt_text);
        let mut stdout = std::io::stdout().lock();
        let mut text = String::new();
        let request = Request { prompt: ids, max_tokens: self.sampling.max_tokens, stop_ids: &stop_ids, stop_strings: &self.sampling.stops, cancel };
        let (_, stats, finish) = session.generate(sampler, &request, &mut |piece| {
            text.push_str(piece);
            let _ = view.push(&mut stdout, piece);
        })?;
        view.finish(&mut stdout)?;
        if std::io::stdout().is_terminal() || finish == Finish::ContextFull {
            writeln!(stdout)?;
        }
        if finish == Finish::ContextFull {
            eprintln!("kiln: the context is full ({} tokens); the answer was cut. Raise --ctx.", session.context());
        }
        if self.verbose {
            eprintln!("{}", stats.summary());
        }
        Ok((text, stats, finish))
    }
}
