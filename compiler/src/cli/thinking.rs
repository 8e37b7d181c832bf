//! Reasoning output: text between `<think>` and `</think>` is shown dimmed on a terminal, plainly
//! when piped, or dropped with `--hide-thinking`. Tags split across tokens are held back until
//! whole.
use std::io::Write;

const OPEN: &str = "<think>";
const CLOSE: &str = "</think>";
const DIM: &str = "\x1b[2m";
const UNDIM: &str = "\x1b[22m";

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Show {
    Dimmed,
    Plain,
    Hidden,
}

pub struct ThinkingView {
    show: Show,
    inside: bool,
    pending: String,
    /// Hidden thinking just ended: the blank lines before the answer are dropped too.
    trim_next: bool,
}

impl ThinkingView {
    /// `prompt` is the rendered prompt: templates that open `<think>` themselves start inside.
    pub fn new(show: Show, prompt: &str) -> ThinkingView {
        let tail = prompt.trim_end();
        let inside = tail.rfind(OPEN).is_some_and(|o| tail.rfind(CLOSE).is_none_or(|c| c < o));
        let mut view = ThinkingView { show, inside: false, pending: String::new(), trim_next: false };
        if inside {
            view.pending.push_str(OPEN);
        }
        view
    }

    /// Writes what of `piece` can be shown now.
    pub fn push(&mut self, out: &mut dyn Write, piece: &str) -> std::io::Result<()> {
        self.pending.push_str(piece);
        loop {
            let tag = if self.inside { CLOSE } else { OPEN };
            if let Some(at) = self.pending.find(tag) {
                let text: String = self.pending.drain(..at + tag.len()).collect();
                self.write(out, &text[..at])?;
                self.toggle(out)?;
                continue;
            }
            // hold back a tail that may be the start of the tag
            let keep = (1..tag.len()).rev().find(|&n| self.pending.ends_with(&tag[..n])).unwrap_or(0);
            let text: String = self.pending.drain(..self.pending.len() - keep).collect();
            return self.write(out, &text);
        }
    }

    pub fn finish(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        let rest = std::mem::take(&mut self.pending);
        self.write(out, &rest)?;
        if self.inside && self.show == Show::Dimmed {
            out.write_all(UNDIM.as_bytes())?;
        }
        out.flush()
    }

    fn toggle(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        self.inside = !self.inside;
        self.trim_next = self.show == Show::Hidden && !self.inside;
        match (self.show, self.inside) {
            (Show::Hidden, _) => Ok(()),
            (Show::Dimmed, true) => write!(out, "{DIM}{OPEN}"),
            (Show::Dimmed, false) => write!(out, "{CLOSE}{UNDIM}"),
            (Show::Plain, true) => write!(out, "{OPEN}"),
            (Show::Plain, false) => write!(out, "{CLOSE}"),
        }
    }

    fn write(&mut self, out: &mut dyn Write, text: &str) -> std::io::Result<()> {
        if self.inside && self.show == Show::Hidden {
            return Ok(());
        }
        let text = if self.trim_next { text.trim_start() } else { text };
        self.trim_next &= text.is_empty();
        out.write_all(text.as_bytes())?;
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(show: Show, prompt: &str, pieces: &[&str]) -> String {
        let mut v = ThinkingView::new(show, prompt);
        let mut out = vec![];
        for p in pieces {
            v.push(&mut out, p).unwrap();
        }
        v.finish(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn thinking_shown_dimmed_plain_or_hidden() {
        let pieces = ["<th", "ink>hm", "m</thi", "nk>Yes."];
        assert_eq!(view(Show::Plain, "", &pieces), "<think>hmm</think>Yes.");
        assert_eq!(view(Show::Dimmed, "", &pieces), "\x1b[2m<think>hmm</think>\x1b[22mYes.");
        assert_eq!(view(Show::Hidden, "", &pieces), "Yes.");
        assert_eq!(view(Show::Hidden, "<|im_start|>assistant\n<think>\n", &["hmm", "</think>", "\n\n", "Yes."]), "Yes.");
        assert_eq!(view(Show::Plain, "", &["a < b"]), "a < b");
    }
}
