//! Generation options shared by `kiln run` and `kiln chat`. Precedence: the flag, then its
//! environment variable (TOKENS, TEMP, TOP_K, TOP_P), then the model's generation_config.json,
//! then Kiln's default.
use anyhow::{bail, Result};
use clap::Args;
use crate::artifact::GenerationDefaults;
use crate::sampler::SamplerConfig;

#[derive(Args, Clone, Debug)]
pub struct SamplingArgs {
    /// Most tokens to generate per answer.
    #[arg(long, env = "TOKENS", default_value_t = 256)]
    pub max_tokens: usize,
    /// 0 = greedy [default: the model's generation_config, else 0]
    #[arg(long, env = "TEMP")]
    pub temperature: Option<f32>,
    /// Keep the k most likely tokens; 0 = all.
    #[arg(long, env = "TOP_K")]
    pub top_k: Option<usize>,
    /// Keep the smallest set of tokens whose probability reaches p; 1 = all.
    #[arg(long, env = "TOP_P")]
    pub top_p: Option<f32>,
    /// Drop tokens less likely than min-p × the most likely one; 0 = off.
    #[arg(long, default_value_t = 0.0)]
    pub min_p: f32,
    /// Penalise the last 64 tokens (llama.cpp's rule); 1 = off.
    #[arg(long)]
    pub repeat_penalty: Option<f32>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// End the answer where this text appears (repeatable).
    #[arg(long = "stop", value_name = "STR")]
    pub stops: Vec<String>,
}

impl SamplingArgs {
    /// Checks the values and fills what is unset from the model's generation defaults.
    pub fn config(&self, defaults: &GenerationDefaults) -> Result<SamplerConfig> {
        let temperature = self.temperature.or(defaults.temperature).unwrap_or(0.0);
        let top_p = self.top_p.or(defaults.top_p).unwrap_or(1.0);
        let repeat_penalty = self.repeat_penalty.or(defaults.repetition_penalty).unwrap_or(1.0);
        if !(temperature.is_finite() && temperature >= 0.0) {
            bail!("--temperature must be 0 or more, got {temperature}");
        }
        if !(top_p > 0.0 && top_p <= 1.0) {
            bail!("--top-p must be in (0, 1], got {top_p}");
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            bail!("--min-p must be in [0, 1], got {}", self.min_p);
        }
        if !(repeat_penalty.is_finite() && repeat_penalty > 0.0) {
            bail!("--repeat-penalty must be more than 0, got {repeat_penalty}");
        }
        if self.max_tokens == 0 {
            bail!("--max-tokens must be at least 1");
        }
        Ok(SamplerConfig {
            temperature,
            top_k: self.top_k.or(defaults.top_k).unwrap_or(0),
            top_p,
            min_p: self.min_p,
            repeat_penalty,
            seed: self.seed,
            ..Default::default()
        })
    }
}
