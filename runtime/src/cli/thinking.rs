//! Reasoning output: text between `<think>` and `</think>` is shown dimmed on a terminal, plainly
//! when piped, or dropped with `--hide-thinking`. Tags split across tokens are held back until
//! whole.
use std::io::Write;

use crate::tags::{Segment, TagSplitter};

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
    tags: TagSplitter,
    /// Hidden thinking just ended: the blank lines before the answer are dropped too.
    trim_next: bool,
}

const PAIR: [(&str, &str); 1] = [(OPEN, CLOSE)];

impl ThinkingView {
    /// `prompt` is the rendered prompt: templates that open `<think>` themselves start inside.
    pub fn new(show: Show, prompt: &str) -> ThinkingView {
        let inside = TagSplitter::ends_inside(prompt, PAIR[0]).then_some(0);
        ThinkingView { show, tags: TagSplitter::new(&PAIR, inside), trim_next: false }
    }

    /// Writes what of `piece` can be shown now.
    pub fn push(&mut self, out: &mut dyn Write, piece: &str) -> std::io::Result<()> {
        let segments = self.tags.push(piece);
        self.show_all(out, segments)
    }

    pub fn finish(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        let segments = self.tags.finish();
        self.show_all(out, segments)?;
        if self.tags.inside().is_some() && self.show == Show::Dimmed {
            out.write_all(UNDIM.as_bytes())?;
        }
        out.flush()
    }

    fn show_all(&mut self, out: &mut dyn Write, segments: Vec<Segment>) -> std::io::Result<()> {
        for segment in segments {
            match (segment, self.show) {
                (Segment::Text(Some(_), _), Show::Hidden) => {}
                (Segment::Text(_, text), _) => {
                    let text = if self.trim_next { text.trim_start().to_string() } else { text };
                    self.trim_next &= text.is_empty();
                    out.write_all(text.as_bytes())?;
                }
                (Segment::Open(_), Show::Dimmed) => write!(out, "{DIM}{OPEN}")?,
                (Segment::Open(_), Show::Plain) => write!(out, "{OPEN}")?,
                (Segment::Close(_), Show::Dimmed) => write!(out, "{CLOSE}{UNDIM}")?,
                (Segment::Close(_), Show::Plain) => write!(out, "{CLOSE}")?,
                (Segment::Close(_), Show::Hidden) => self.trim_next = true,
                (Segment::Open(_), Show::Hidden) => {}
            }
        }
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
