//! Stop strings: text is held back only while it could still be the start of a stop string, so
//! what streams out never contains (a piece of) one.
pub struct StopMatcher {
    stops: Vec<String>,
    pending: String,
}

impl StopMatcher {
    pub fn new(stops: &[String]) -> StopMatcher {
        StopMatcher { stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(), pending: String::new() }
    }

    /// Text safe to show after `piece`, and whether a stop string was reached (the text before it
    /// is returned; the stop string and what follows are dropped).
    pub fn push(&mut self, piece: &str) -> (String, bool) {
        self.pending.push_str(piece);
        if let Some(at) = self.stops.iter().filter_map(|s| self.pending.find(s.as_str())).min() {
            let out = self.pending[..at].to_string();
            self.pending.clear();
            return (out, true);
        }
        // the longest tail of `pending` that begins some stop string is kept back
        let keep = (1..=self.pending.len())
            .rev()
            .filter(|&n| self.pending.is_char_boundary(self.pending.len() - n))
            .find(|&n| self.stops.iter().any(|s| s.starts_with(&self.pending[self.pending.len() - n..])))
            .unwrap_or(0);
        let out = self.pending[..self.pending.len() - keep].to_string();
        self.pending.drain(..self.pending.len() - keep);
        (out, false)
    }

    /// What is still held back, at the end of generation.
    pub fn flush(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::StopMatcher;

    #[test]
    fn holds_back_only_possible_stops() {
        let mut m = StopMatcher::new(&["</s>".into(), "User:".into()]);
        assert_eq!(m.push("Hello <"), ("Hello ".into(), false));
        assert_eq!(m.push("b>"), ("<b>".into(), false));
        assert_eq!(m.push(" Us"), (" ".into(), false));
        assert_eq!(m.push("er: more"), ("".into(), true));
        let mut m = StopMatcher::new(&["end".into()]);
        assert_eq!(m.push("the en"), ("the ".into(), false));
        assert_eq!(m.flush(), "en");
    }
}
