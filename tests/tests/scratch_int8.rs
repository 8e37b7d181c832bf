use runtime::executor::Row;
#[test]
fn prof() {
    for art in ["/tmp/ex.kiln", "/tmp/i8.kiln"] {
    let mut model = runtime::Model::open_slots(std::path::Path::new(art), Some(512), 16).unwrap();
    let steps: Vec<String> = model.artifact.meta.plan.steps.iter().map(|s| s.label.clone()).collect();
    for n in [1usize, 8, 64] {
        for s in 0..n.min(16) { model.executor.forward_rows(64, |i| Row { token: (i * 7 + s) as u32 % 1000 + 5, slot: s, pos: i }, &[63]).unwrap(); }
        model.executor.profile = Some(vec![0.0; steps.len()]);
        let t = std::time::Instant::now();
        let iters = 20;
        for it in 0..iters {
            let rows: Vec<usize> = (0..n).collect();
            model.executor.forward_rows(n, |i| Row { token: 100 + i as u32, slot: i % 16, pos: 64 + it + 20 * (i / 16) }, &rows[..n.min(16)]).unwrap();
        }
        let per = t.elapsed().as_secs_f64() / iters as f64;
        println!("{art} n={n}: {:.2} ms/step, {:.1} tok/s", per * 1e3, n as f64 / per);
        let p = model.executor.profile.take().unwrap();
        let mut by: std::collections::BTreeMap<String, f64> = Default::default();
        for (l, t) in steps.iter().zip(&p) { let k = l.split(": ").last().unwrap().split(' ').take(2).collect::<Vec<_>>().join(" "); *by.entry(k).or_default() += t / iters as f64; }
        let mut v: Vec<_> = by.into_iter().collect(); v.sort_by(|a, b| b.1.total_cmp(&a.1));
        for (k, t) in v.iter().take(5) { println!("   {:6.3} ms {k}", t * 1e3); }
    }
    }
}
