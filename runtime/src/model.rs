//! A loaded model: the mapped artifact, its kernels and an executor with its KV cache.
use std::path::Path;

use crate::artifact::Artifact;
use crate::error::Result;
use crate::executor::Executor;
use crate::kernels::Kernels;

pub struct Model {
    pub executor: Executor,
    _kernels: Kernels,
    // Declared last: dropped after the executor whose pointers point into it.
    pub artifact: Artifact,
}

impl Model {
    /// Opens an artifact for one sequence; `context` caps the KV cache (None: the model's full context).
    pub fn open(path: &Path, context: Option<usize>) -> Result<Model> {
        Model::open_slots(path, context, 1)
    }

    /// Opens an artifact with a KV cache for `slots` sequences of `context` positions each.
    pub fn open_slots(path: &Path, context: Option<usize>, slots: usize) -> Result<Model> {
        let artifact = Artifact::open(path, true)?;
        let mut names: Vec<&str> = artifact.meta.plan.steps.iter().map(|s| s.kernel.as_str()).collect();
        names.sort();
        names.dedup();
        let kernels = Kernels::load(artifact.code(), &names)?;
        let executor = Executor::new(&artifact, &kernels, context.unwrap_or(artifact.meta.plan.context), slots);
        Ok(Model { executor, _kernels: kernels, artifact })
    }

    pub fn vocab(&self) -> usize {
        self.executor.vocab
    }

    /// Runs `tokens` from position `start` in chunks of at most `max_rows`; returns the logits of
    /// every token when `all`, else of the last one only.
    pub fn forward(&mut self, tokens: &[u32], start: usize, all: bool) -> Result<Vec<f32>> {
        let chunk = self.executor.max_rows;
        let mut out = vec![];
        for (i, part) in tokens.chunks(chunk).enumerate() {
            let last_chunk = (i + 1) * chunk >= tokens.len();
            let rows: Vec<usize> = if all { (0..part.len()).collect() } else if last_chunk { vec![part.len() - 1] } else { vec![] };
            let logits = self.executor.forward(part, start + i * chunk, &rows)?;
            out.extend_from_slice(logits);
        }
        Ok(out)
    }
}
