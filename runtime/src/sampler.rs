//! Choosing the next token: penalties (llama.cpp's repetition penalty; OpenAI's frequency and
//! presence penalties over the tokens this sampler chose), then greedy, or temperature with
//! top-k / top-p / min-p, seeded.
use std::collections::HashMap;

#[derive(Clone, Debug)]
pub struct SamplerConfig {
    /// 0 = greedy
    pub temperature: f32,
    /// 0 = off
    pub top_k: usize,
    /// 1 = off
    pub top_p: f32,
    /// Drop tokens less likely than min_p × the most likely one; 0 = off.
    pub min_p: f32,
    /// llama.cpp's: logits of the last `repeat_last_n` tokens are divided (if > 0) or multiplied
    /// (if < 0) by it; 1 = off.
    pub repeat_penalty: f32,
    pub repeat_last_n: usize,
    /// OpenAI's: each token's logit minus frequency_penalty × its count in the answer so far,
    /// minus presence_penalty if it occurs there at all; 0 = off.
    pub frequency_penalty: f32,
    pub presence_penalty: f32,
    pub seed: u64,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig { temperature: 0.0, top_k: 0, top_p: 1.0, min_p: 0.0, repeat_penalty: 1.0, repeat_last_n: 64, frequency_penalty: 0.0, presence_penalty: 0.0, seed: 0 }
    }
}

pub struct Sampler {
    config: SamplerConfig,
    state: u64,
    /// How often each token was chosen so far (for the frequency and presence penalties).
    chosen: HashMap<u32, u32>,
}

impl Sampler {
    pub fn new(config: SamplerConfig) -> Sampler {
        let state = config.seed ^ 0x9E37_79B9_7F4A_7C15;
        Sampler { config, state, chosen: HashMap::new() }
    }

    /// splitmix64 -> uniform in [0, 1)
    fn uniform(&mut self) -> f32 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32
    }

    /// The next token after `history` (the tokens so far, for the repetition penalty).
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> u32 {
        let token = self.choose(logits, history);
        *self.chosen.entry(token).or_default() += 1;
        token
    }

    fn choose(&mut self, logits: &[f32], history: &[u32]) -> u32 {
        let c = &self.config;
        let mut penalised;
        let logits = if c.repeat_penalty != 1.0 || c.frequency_penalty != 0.0 || c.presence_penalty != 0.0 {
            penalised = logits.to_vec();
            let mut recent = history[history.len().saturating_sub(c.repeat_last_n)..].to_vec();
            recent.sort_unstable();
            recent.dedup();
            for &t in recent.iter().filter(|_| c.repeat_penalty != 1.0) {
                if let Some(l) = penalised.get_mut(t as usize) {
                    *l = if *l > 0.0 { *l / c.repeat_penalty } else { *l * c.repeat_penalty };
                }
            }
            for (&t, &n) in &self.chosen {
                if let Some(l) = penalised.get_mut(t as usize) {
                    *l -= c.frequency_penalty * n as f32 + c.presence_penalty;
                }
            }
            &penalised[..]
        } else {
            logits
        };
        let greedy = || logits.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &x)| if x > b.1 { (i, x) } else { b }).0 as u32;
        if self.config.temperature <= 0.0 {
            return greedy();
        }
        let mut cand: Vec<(u32, f32)> = logits.iter().enumerate().map(|(i, &x)| (i as u32, x / self.config.temperature)).collect();
        cand.sort_unstable_by(|a, b| b.1.total_cmp(&a.1));
        if self.config.top_k > 0 {
            cand.truncate(self.config.top_k);
        }
        let max = cand[0].1;
        let mut probs: Vec<f32> = cand.iter().map(|c| (c.1 - max).exp()).collect();
        let sum: f32 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= sum);
        if self.config.min_p > 0.0 {
            let floor = probs[0] * self.config.min_p;
            let n = probs.iter().take_while(|&&p| p >= floor).count();
            probs.truncate(n);
        }
        if self.config.top_p < 1.0 {
            let mut acc = 0.0;
            let keep = probs.iter().position(|p| {
                acc += p;
                acc >= self.config.top_p
            });
            let n = keep.map_or(probs.len(), |i| i + 1);
            probs.truncate(n);
        }
        let s: f32 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= s);
        let r = self.uniform();
        let mut acc = 0.0;
        for (i, p) in probs.iter().enumerate() {
            acc += p;
            if r < acc {
                return cand[i].0;
            }
        }
        cand[probs.len() - 1].0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_top_k_and_seeds() {
        let logits = [0.0, 3.0, 1.0, 2.9];
        assert_eq!(Sampler::new(SamplerConfig::default()).sample(&logits, &[]), 1);
        let top1 = SamplerConfig { temperature: 1.0, top_k: 1, ..Default::default() };
        assert_eq!(Sampler::new(top1).sample(&logits, &[]), 1);
        let hot = SamplerConfig { temperature: 5.0, seed: 7, ..Default::default() };
        let a: Vec<u32> = { let mut s = Sampler::new(hot.clone()); (0..20).map(|_| s.sample(&logits, &[])).collect() };
        let b: Vec<u32> = { let mut s = Sampler::new(hot); (0..20).map(|_| s.sample(&logits, &[])).collect() };
        assert_eq!(a, b, "same seed, same tokens");
        assert!(a.iter().any(|&t| t != 1), "high temperature explores");
        let nucleus = SamplerConfig { temperature: 1.0, top_p: 0.5, seed: 3, ..Default::default() };
        let mut s = Sampler::new(nucleus);
        assert!((0..50).all(|_| [1, 3].contains(&s.sample(&logits, &[]))));
        let min_p = SamplerConfig { temperature: 1.0, min_p: 0.5, seed: 3, ..Default::default() };
        let mut s = Sampler::new(min_p);
        assert!((0..50).all(|_| [1, 3].contains(&s.sample(&logits, &[]))), "2 and 0 are under half as likely as 1");
        let penalty = SamplerConfig { repeat_penalty: 1.5, ..Default::default() };
        assert_eq!(Sampler::new(penalty.clone()).sample(&logits, &[1]), 3, "3.0 / 1.5 < 2.9");
        assert_eq!(Sampler::new(penalty).sample(&logits, &[3; 100]), 1);
        // OpenAI's penalties count what this sampler chose: 1 (3.0), then 3 (2.9 > 3.0 - 0.2)
        let presence = SamplerConfig { presence_penalty: 0.2, ..Default::default() };
        let mut s = Sampler::new(presence);
        assert_eq!([s.sample(&logits, &[]), s.sample(&logits, &[]), s.sample(&logits, &[])], [1, 3, 1]);
        let frequency = SamplerConfig { frequency_penalty: 0.06, ..Default::default() };
        let mut s = Sampler::new(frequency);
        assert_eq!((0..4).map(|_| s.sample(&logits, &[])).collect::<Vec<_>>(), [1, 1, 3, 1], "3.0 - 2 × 0.06 < 2.9, then 2.9 - 0.06 < 2.88");
    }
}
