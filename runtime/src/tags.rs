//! Streamed text split at tag pairs (`<think>…</think>`, `<tool_call>…</tool_call>`): each piece
//! becomes text outside or inside a pair, and the tags themselves; a tail that may be the start of
//! a tag is held back until it is whole. Pairs do not nest.

/// What a piece of streamed text holds.
#[derive(Clone, Debug, PartialEq)]
pub enum Segment {
    /// Text outside any pair (None) or inside pair i.
    Text(Option<usize>, String),
    Open(usize),
    Close(usize),
}

pub struct TagSplitter {
    pairs: Vec<(&'static str, &'static str)>,
    inside: Option<usize>,
    pending: String,
}

impl TagSplitter {
    /// `start_inside`: the pair the text starts in (a prompt that opened `<think>` itself).
    pub fn new(pairs: &[(&'static str, &'static str)], start_inside: Option<usize>) -> TagSplitter {
        let pending = start_inside.map(|i| pairs[i].0.to_string()).unwrap_or_default();
        TagSplitter { pairs: pairs.to_vec(), inside: None, pending }
    }

    /// Whether a rendered prompt ends inside pair `i` (its open tag after its last close tag).
    pub fn ends_inside(prompt: &str, (open, close): (&str, &str)) -> bool {
        let tail = prompt.trim_end();
        tail.rfind(open).is_some_and(|o| tail.rfind(close).is_none_or(|c| c < o))
    }

    pub fn push(&mut self, piece: &str) -> Vec<Segment> {
        self.pending.push_str(piece);
        let mut out = vec![];
        loop {
            // the tags that may come next: this pair's close, or any pair's open
            let next: Vec<(usize, &str, bool)> = match self.inside {
                Some(i) => vec![(i, self.pairs[i].1, false)],
                None => self.pairs.iter().enumerate().map(|(i, p)| (i, p.0, true)).collect(),
            };
            if let Some((at, i, tag, open)) = next.iter().filter_map(|&(i, tag, open)| self.pending.find(tag).map(|at| (at, i, tag, open))).min_by_key(|t| t.0) {
                let text: String = self.pending.drain(..at + tag.len()).collect();
                self.text(&mut out, &text[..at]);
                out.push(if open { Segment::Open(i) } else { Segment::Close(i) });
                self.inside = open.then_some(i);
                continue;
            }
            let keep = next.iter().filter_map(|(_, tag, _)| (1..tag.len()).rev().find(|&n| self.pending.ends_with(&tag[..n]))).max().unwrap_or(0);
            let text: String = self.pending.drain(..self.pending.len() - keep).collect();
            self.text(&mut out, &text);
            return out;
        }
    }

    /// The pair the text is inside now.
    pub fn inside(&self) -> Option<usize> {
        self.inside
    }

    /// What was held back, as text where it stands.
    pub fn finish(&mut self) -> Vec<Segment> {
        let rest = std::mem::take(&mut self.pending);
        let mut out = vec![];
        self.text(&mut out, &rest);
        out
    }

    fn text(&self, out: &mut Vec<Segment>, text: &str) {
        if !text.is_empty() {
            out.push(Segment::Text(self.inside, text.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAIRS: [(&str, &str); 2] = [("<think>", "</think>"), ("<tool_call>", "</tool_call>")];

    fn split(pieces: &[&str], start: Option<usize>) -> Vec<Segment> {
        let mut s = TagSplitter::new(&PAIRS, start);
        let mut out: Vec<Segment> = pieces.iter().flat_map(|p| s.push(p)).collect();
        out.extend(s.finish());
        // merge adjacent text of one region, as a reader would
        out.into_iter().fold(vec![], |mut acc: Vec<Segment>, seg| {
            match (acc.last_mut(), &seg) {
                (Some(Segment::Text(r, t)), Segment::Text(r2, t2)) if r == r2 => t.push_str(t2),
                _ => acc.push(seg),
            }
            acc
        })
    }

    #[test]
    fn tags_split_across_pieces_are_found() {
        use Segment::*;
        let t = |r: Option<usize>, s: &str| Text(r, s.to_string());
        assert_eq!(split(&["<th", "ink>hm", "m</thi", "nk>Yes."], None), [Open(0), t(Some(0), "hmm"), Close(0), t(None, "Yes.")]);
        assert_eq!(split(&["hmm</think>", "Yes <tool_", "call>{}</tool_call>"], Some(0)), [Open(0), t(Some(0), "hmm"), Close(0), t(None, "Yes "), Open(1), t(Some(1), "{}"), Close(1)]);
        assert_eq!(split(&["a < b <", "t"], None), [t(None, "a < b <t")]);
        assert_eq!(split(&["</think> is text outside"], None), [t(None, "</think> is text outside")]);
    }

    #[test]
    fn prompts_that_open_a_pair() {
        assert!(TagSplitter::ends_inside("<|im_start|>assistant\n<think>\n", PAIRS[0]));
        assert!(!TagSplitter::ends_inside("<think>\n\n</think>\n\n", PAIRS[0]));
        assert!(!TagSplitter::ends_inside("plain", PAIRS[0]));
    }
}
