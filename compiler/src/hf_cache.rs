//! A model named `org/name` is looked up in the local Hugging Face cache, as `huggingface_hub`
//! lays it out: `$HF_HUB_CACHE` or `$HF_HOME/hub` or `~/.cache/huggingface/hub`, then
//! `models--org--name/snapshots/<revision>/` with `refs/main` naming the revision. Nothing is
//! downloaded.
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Whether `spec` reads as a hub id (`org/name`) rather than a path.
pub fn is_hub_id(spec: &str) -> bool {
    let parts: Vec<&str> = spec.split('/').collect();
    parts.len() == 2 && parts.iter().all(|p| !p.is_empty() && !p.starts_with('.') && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
}

pub fn cache_dir() -> PathBuf {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    env("HF_HUB_CACHE")
        .or_else(|| env("HF_HOME").map(|h| h.join("hub")))
        .or_else(|| env("XDG_CACHE_HOME").map(|c| c.join("huggingface/hub")))
        .unwrap_or_else(|| env("HOME").unwrap_or_default().join(".cache/huggingface/hub"))
}

/// The snapshot folder of `org/name` in `cache`.
pub fn resolve(id: &str, cache: &Path) -> Result<PathBuf> {
    let repo = cache.join(format!("models--{}", id.replace('/', "--")));
    let snapshots = repo.join("snapshots");
    let by_ref = std::fs::read_to_string(repo.join("refs/main")).ok().map(|r| snapshots.join(r.trim())).filter(|p| p.is_dir());
    let any = || {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&snapshots).ok()?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect();
        dirs.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        dirs.pop()
    };
    by_ref.or_else(any).ok_or_else(|| {
        Error::Model(format!(
            "{id}: not in the local Hugging Face cache ({}); Kiln does not download models: fetch it with `huggingface-cli download {id}`, or pass a folder or a .gguf file",
            cache.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_snapshot_refs_main_names() {
        let cache = tempfile::tempdir().unwrap();
        let repo = cache.path().join("models--org--tiny");
        std::fs::create_dir_all(repo.join("snapshots/abc123")).unwrap();
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), "abc123\n").unwrap();
        assert_eq!(resolve("org/tiny", cache.path()).unwrap(), repo.join("snapshots/abc123"));
        let err = resolve("org/absent", cache.path()).unwrap_err().to_string();
        assert!(err.starts_with("org/absent: not in the local Hugging Face cache"), "{err}");
        assert!(is_hub_id("HuggingFaceTB/SmolLM2-135M") && !is_hub_id("./model") && !is_hub_id("a/b/c") && !is_hub_id("model.gguf"));
    }
}
