//! Pass time and per-step profile of batched decode: one row from each of N slots per pass (as
//! `kiln serve` runs N streams), every slot's cache filled to DEPTH positions first.
//!   cargo run --release -p kiln-runtime --example rows_profile -- ARTIFACT [DEPTH]
//! Env: NS (row counts, default 1,2,4,8,16), REPS (passes per count, default 40).
use runtime::executor::Row;
use runtime::model::Model;
use std::time::Instant;

const SLOTS: usize = 16;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = std::path::Path::new(args.get(1).expect("usage: rows_profile ARTIFACT [DEPTH]"));
    let depth: usize = args.get(2).map_or(64, |s| s.parse().expect("DEPTH is a number"));
    let ns: Vec<usize> = std::env::var("NS").map_or(vec![1, 2, 4, 8, 16], |s| s.split(',').map(|x| x.parse().expect("NS: numbers")).collect());
    let reps: usize = std::env::var("REPS").map_or(40, |s| s.parse().expect("REPS is a number"));
    assert!(ns.iter().all(|&n| n <= SLOTS), "at most {SLOTS} rows");
    let mut m = Model::open_slots(path, Some(depth + reps + 1), SLOTS).unwrap();
    m.executor.batch_invariant();
    let max_rows = m.artifact.meta.plan.max_rows;
    for s in 0..SLOTS {
        let rows: Vec<Row> = (0..depth).map(|p| Row { token: ((100 + p * 7 + s * 13) % 1000) as u32, slot: s, pos: p }).collect();
        for chunk in rows.chunks(max_rows) {
            m.executor.forward_rows(chunk.len(), |i| chunk[i], &[]).unwrap();
        }
    }
    let steps = &m.artifact.meta.plan.steps;
    let labels: Vec<String> = steps.iter().map(|st| st.label.split_once(": ").map_or(st.label.as_str(), |(_, r)| r).split(" (").next().unwrap().to_string()).collect();
    for n in ns {
        m.executor.profile = Some(vec![0.0; steps.len()]);
        let mut times: Vec<f64> = (0..reps)
            .map(|r| {
                let rows: Vec<Row> = (0..n).map(|s| Row { token: 5 + r as u32, slot: s, pos: depth + r }).collect();
                let logit_rows: Vec<usize> = (0..n).collect();
                let t = Instant::now();
                m.executor.forward_rows(n, |i| rows[i], &logit_rows).unwrap();
                t.elapsed().as_secs_f64()
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let median = times[reps / 2];
        let profile = m.executor.profile.take().unwrap();
        let mut by_label: Vec<(&str, f64)> = vec![];
        for (label, t) in labels.iter().zip(&profile) {
            match by_label.iter_mut().find(|e| e.0 == label) {
                Some(e) => e.1 += t,
                None => by_label.push((label, *t)),
            }
        }
        by_label.sort_by(|a, b| b.1.total_cmp(&a.1));
        let total: f64 = profile.iter().sum();
        println!("{n} rows: median pass {:.3} ms, {:.1} rows/s", median * 1e3, n as f64 / median);
        for (label, t) in by_label.iter().take(8) {
            println!("  {:7.3} ms {:5.1}% {label}", t / reps as f64 * 1e3, 100.0 * t / total);
        }
    }
}
