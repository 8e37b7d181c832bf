//! Sessions on a tiny model: a second request that extends the first reuses its KV cache and
//! produces exactly what a fresh session would; stop strings, token limits and cancelling end
//! generation as they say.
use std::sync::atomic::AtomicBool;

use kiln_tests::*;
use runtime::sampler::{Sampler, SamplerConfig};
use runtime::session::{Finish, Request, Session};
use runtime::tokenizer::Tokenizer;

fn session(artifact: &std::path::Path) -> Session {
    let model = runtime::Model::open(artifact, Some(64)).unwrap();
    let tok = Tokenizer::new(&model.artifact.meta.tokenizer, None, false).unwrap();
    Session::new(model, tok)
}

fn greedy_request(s: &mut Session, req: &Request, emit: &mut dyn FnMut(&str)) -> (Vec<u32>, runtime::session::Stats, Finish) {
    s.generate(&mut Sampler::new(SamplerConfig::default()), req, emit).unwrap()
}

fn greedy(s: &mut Session, prompt: &[u32], max_tokens: usize) -> (Vec<u32>, runtime::session::Stats, Finish) {
    greedy_request(s, &Request { prompt, max_tokens, stop_ids: &[], stop_strings: &[], cancel: None }, &mut |_| {})
}

#[test]
fn later_turns_reuse_the_cache_and_match_a_fresh_session() {
    let dir = tempfile::tempdir().unwrap();
    let art = compile(&fixture("llama_tied_gqa"), dir.path());
    let mut chat = session(&art);
    let turn1: Vec<u32> = (10..30).collect();
    let (answer, stats, finish) = greedy(&mut chat, &turn1, 6);
    assert_eq!((stats.reused_tokens, finish, answer.len()), (0, Finish::MaxTokens, 6));

    // the next turn: everything so far, then new tokens
    let turn2: Vec<u32> = turn1.iter().chain(&answer).chain(&[40, 41, 42, 43]).copied().collect();
    let (continued, stats, _) = greedy(&mut chat, &turn2, 8);
    assert_eq!(stats.reused_tokens, turn1.len() + answer.len() - 1, "all but the unforwarded last answer token come from the cache");
    let (fresh, _, _) = greedy(&mut session(&art), &turn2, 8);
    assert_eq!(continued, fresh);

    // an edited history shares only its prefix with the cache, and is still right
    let edited: Vec<u32> = turn1[..5].iter().chain(&[50, 51]).copied().collect();
    let (a, stats, _) = greedy(&mut chat, &edited, 5);
    assert_eq!(stats.reused_tokens, 5);
    assert_eq!(a, greedy(&mut session(&art), &edited, 5).0);
}

#[test]
fn stop_strings_context_and_cancel_end_generation() {
    let dir = tempfile::tempdir().unwrap();
    let art = compile(&fixture("llama_tied_gqa"), dir.path());
    let mut s = session(&art);
    let prompt: Vec<u32> = (10..20).collect();
    let (ids, _, _) = greedy(&mut s, &prompt, 12);
    let text = s.tokenizer.decode(&ids).unwrap();
    // stop at a piece of the greedy text: what streams out is exactly the text before it
    let stop_at = text.char_indices().map(|(i, _)| i).find(|&i| i >= text.len() / 2 && text.is_char_boundary(i)).unwrap();
    let stop = text[stop_at..].chars().take(2).collect::<String>();
    let before = &text[..text.find(&stop).unwrap()];
    let mut streamed = String::new();
    let req = Request { prompt: &prompt, max_tokens: 12, stop_ids: &[], stop_strings: std::slice::from_ref(&stop), cancel: None };
    let (_, _, finish) = greedy_request(&mut s, &req, &mut |p| streamed.push_str(p));
    assert_eq!((finish, streamed.as_str()), (Finish::StopString, before));

    let (ids, _, finish) = greedy(&mut s, &prompt, 1000);
    assert_eq!((finish, prompt.len() + ids.len()), (Finish::ContextFull, 64 + 1), "fills the 64-token cache, plus the last sampled token");

    let cancel = AtomicBool::new(true);
    let req = Request { prompt: &prompt, max_tokens: 12, stop_ids: &[], stop_strings: &[], cancel: Some(&cancel) };
    let (ids, _, finish) = greedy_request(&mut s, &req, &mut |_| {});
    assert_eq!((finish, ids.len()), (Finish::Cancelled, 0));
}
