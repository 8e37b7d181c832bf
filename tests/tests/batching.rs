//! Batch invariance: rows of several sequences in one pass (each in its own cache slot, at its own
//! position, prefill chunks beside single decode rows) give every row exactly — bit for bit — the
//! logits it gets when its sequence runs alone, whatever the slot, the chunking and the neighbours,
//! on the kernels `kiln serve` keeps every row on (`Executor::batch_invariant`: no AMX tiles).
use kiln_tests::*;
use runtime::executor::Row;

/// Four sequences of different lengths (token ids valid in every fixture's vocabulary).
fn sequences() -> Vec<Vec<u32>> {
    [(5, 3), (23, 7), (11, 5), (37, 2)].iter().map(|&(len, mul)| (0..len).map(|i| (i * mul + len) as u32 % 90 + 3).collect()).collect()
}

/// Each sequence alone in a one-slot model: its prompt (all but the last 3 tokens) in one pass,
/// then token by token. Logits of every row: [len, vocab].
fn alone(artifact: &std::path::Path, seq: &[u32]) -> Vec<f32> {
    let mut model = runtime::Model::open(artifact, Some(64)).unwrap();
    model.executor.batch_invariant();
    let prompt = seq.len() - 3;
    let mut out = model.forward(&seq[..prompt], 0, true).unwrap();
    for (i, &t) in seq.iter().enumerate().skip(prompt) {
        out.extend(model.forward(&[t], i, true).unwrap());
    }
    out
}

/// splitmix64
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let z = (*state ^ (*state >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB) >> 1
}

/// All sequences together in a four-slot model (sequence i in slot 3 - i): each pass takes from
/// every unfinished sequence, in a shuffled order, a random chunk of its next tokens.
fn together(artifact: &std::path::Path, seqs: &[Vec<u32>], seed: u64) -> Vec<Vec<f32>> {
    let mut model = runtime::Model::open_slots(artifact, Some(64), 4).unwrap();
    model.executor.batch_invariant();
    let vocab = model.vocab();
    let mut done = vec![0usize; seqs.len()];
    let mut out: Vec<Vec<f32>> = seqs.iter().map(|s| vec![0.0; s.len() * vocab]).collect();
    let mut state = seed;
    while done.iter().zip(seqs).any(|(d, s)| *d < s.len()) {
        let mut rows: Vec<(usize, usize)> = vec![]; // (sequence, position)
        let mut order: Vec<usize> = (0..seqs.len()).collect();
        order.sort_by_key(|_| next(&mut state));
        for s in order {
            let take = (1 + next(&mut state) as usize % 9).min(seqs[s].len() - done[s]);
            rows.extend((done[s]..done[s] + take).map(|p| (s, p)));
            done[s] += take;
        }
        let all: Vec<usize> = (0..rows.len()).collect();
        let logits = model.executor.forward_rows(rows.len(), |i| Row { token: seqs[rows[i].0][rows[i].1], slot: 3 - rows[i].0, pos: rows[i].1 }, &all).unwrap();
        for (i, &(s, p)) in rows.iter().enumerate() {
            out[s][p * vocab..(p + 1) * vocab].copy_from_slice(&logits[i * vocab..(i + 1) * vocab]);
        }
    }
    out
}

fn check(fixture_name: &str, artifact: &std::path::Path) {
    let seqs = sequences();
    let reference: Vec<Vec<f32>> = seqs.iter().map(|s| alone(artifact, s)).collect();
    for seed in [1, 2, 3] {
        let got = together(artifact, &seqs, seed);
        for (s, (g, r)) in got.iter().zip(&reference).enumerate() {
            let differ = g.iter().zip(r).position(|(a, b)| a.to_bits() != b.to_bits());
            assert!(differ.is_none(), "{fixture_name}, seed {seed}: sequence {s} differs from its run alone at value {differ:?}");
        }
    }
}

#[test]
fn rows_of_several_sequences_equal_each_sequence_alone() {
    // full attention, a sliding window (5 < the sequences), local/global layers with soft-caps, biases
    for name in ["llama_tied_gqa", "mistral_sliding_window", "gemma3_local_global", "gemma2_softcap", "qwen2_untied_bias"] {
        let dir = tempfile::tempdir().unwrap();
        check(name, &compile_fast(&fixture(name), dir.path()));
    }
}

#[test]
fn quantised_weights_are_batch_invariant_too() {
    for dtype in ["Q4_0", "Q8_0", "Q4_K", "Q6_K"] {
        let dir = tempfile::tempdir().unwrap();
        let source = if dtype.ends_with("_K") { kiln_tests::reencode::random_k_quant(dtype) } else { kiln_tests::reencode::reencoded("llama_tied_gqa", dtype) };
        let art = kiln_tests::reencode::compile_with(&source, &dir.path().join("model.kiln"), &Default::default());
        check(dtype, &art);
    }
}
