//! The f16 KV cache: the kv_write kernel rounds f32 to half exactly as the `half` crate does
//! (nearest even; subnormals, overflow to infinity, NaN) with F16C and with the bit arithmetic of
//! targets without it; and the attention reading it keeps the default model's perplexity within
//! 0.5% of the f32 cache's. The Q8_0 cache: kv_write makes the blocks of its definition on every
//! target, and the model keeps its perplexity within 1%.
use compiler::lower::kernel::{KernelSet, KernelSpec};
use compiler::lower::target::TargetCpu;
use half::f16;
use kiln_tests::*;
use runtime::plan::KvDtype;

/// The cache rows kv_write built for `target` makes of rows of `width` values xs (row t at position t).
fn kv_write(target: &str, dtype: KvDtype, width: usize, xs: &[f32]) -> Vec<u8> {
    let rows = xs.len() / width;
    let (positions, bases): (Vec<i32>, Vec<i32>) = (0..rows as i32).map(|t| (t, 0)).unzip();
    let mut kernels = KernelSet::default();
    let name = kernels.intern(KernelSpec::KvWrite { width, dtype });
    let (_, code) = compiler::lower::build(&kernels, &TargetCpu::resolve(target).unwrap()).unwrap();
    let loaded = runtime::kernels::Kernels::load(&code, &[&name]).unwrap();
    let mut cache = vec![0u8; rows * dtype.row_bytes(width)];
    let args = [cache.as_mut_ptr(), xs.as_ptr() as *mut u8, positions.as_ptr() as *mut u8, bases.as_ptr() as *mut u8];
    // SAFETY: kv_write reads rows × width values, positions and bases [0..rows], writes as many cache rows.
    unsafe { loaded.get(&name)(args.as_ptr(), rows as i64, 0, rows as i64, std::ptr::null_mut()) };
    cache
}

#[test]
fn kv_write_rounds_to_half_as_ieee_does() {
    const WIDTH: usize = 64;
    let mut xs: Vec<f32> = vec![0.0, -0.0, 1.0, -1.0, 65504.0, 65519.0, 65520.0, 1e6, -1e6, f32::INFINITY, f32::NEG_INFINITY, f32::NAN,
                                6.1e-5, 6.0e-5, 5.96e-8, 2.98e-8, 2.99e-8, 1e-9, 1.0 + 1.0 / 2048.0, 1.0 + 3.0 / 2048.0];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    while xs.len() % WIDTH != 0 || xs.len() < 64 * WIDTH {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let bits = (seed >> 32) as u32;
        let x = f32::from_bits(bits);
        // every exponent a half can hold, and some past it, both signs
        xs.push(if x.is_finite() && x.abs() < 1e6 { x } else { f32::from_bits(bits & 0x87ff_ffff | 0x3000_0000) });
    }
    for target in ["host", "x86-64-v3", "x86-64"] {
        let bytes = kv_write(target, KvDtype::F16, WIDTH, &xs);
        let cache: Vec<u16> = bytes.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect();
        for (x, got) in xs.iter().zip(&cache) {
            let want = f16::from_f32(*x);
            let same = if want.is_nan() { f16::from_bits(*got).is_nan() } else { *got == want.to_bits() };
            assert!(same, "{target}: {x:e} became {got:#06x}, IEEE rounds it to {:#06x}", want.to_bits());
        }
    }
}

#[test]
fn kv_write_makes_q8_0_blocks() {
    const WIDTH: usize = 96;
    let rows = 5;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut xs: Vec<f32> = (0..rows * WIDTH)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % 20001) as f32 / 1000.0 - 10.0
        })
        .collect();
    xs[WIDTH..WIDTH + 32].fill(0.0); // an all-zero block: d = 0, q = 0
    for target in ["host", "x86-64-v3", "x86-64"] {
        let cache = kv_write(target, KvDtype::Q8_0, WIDTH, &xs);
        for (b, (x, got)) in xs.chunks_exact(32).zip(cache.chunks_exact(34)).enumerate() {
            let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
            let inv = if amax == 0.0 { 0.0 } else { 127.0 / amax };
            let mut want = f16::from_f32(amax / 127.0).to_le_bytes().to_vec();
            want.extend(x.iter().map(|v| (v * inv).round_ties_even() as i8 as u8));
            assert_eq!(got, &want[..], "{target}: block {b}");
        }
    }
}

#[test]
fn compact_caches_keep_the_default_models_perplexity() {
    let model = root().join("models").join("SmolLM2-135M-Instruct.Q4_1.gguf");
    let ppl = |kv: KvDtype| {
        let dir = tempfile::tempdir().unwrap();
        real_model::perplexity(&compile_using(&model, dir.path(), &compiler::compile::Options { kv, exact: true, ..Default::default() }))
    };
    let exact = ppl(KvDtype::F32);
    for (kv, within) in [(KvDtype::F16, 0.005), (KvDtype::Q8_0, 0.01)] {
        let got = ppl(kv);
        assert!(((got - exact) / exact).abs() < within, "{kv:?} cache: ppl {got}, f32 cache {exact}");
        assert_ne!(got, exact, "the {kv:?} cache is in use");
    }
}
