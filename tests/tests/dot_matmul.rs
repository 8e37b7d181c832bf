//! The dot-product matmul kernels (lower/dot.rs) against their definition, on weights packed as
//! `kiln compile` packs them (repack.rs), built for this CPU and (where it differs and can run
//! them) for x86-64-v3. Int8 (AVX512-VNNI, or AVX2's `vpmaddubsw`): activations quantised per block of
//! 32 (d = max|x| / 127, q = round-half-even(x / d)), exact integer dot products with the weights'
//! quants, scaled per block — computed here in f64 — on random Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K,
//! Q5_K and Q6_K blocks and MLX 4-, 5-, 6- and 8-bit groups (of 32, 64, 128; f32, f16, bf16 scales).
//! BF16 (AVX512-BF16 `vdpbf16ps`, or AVX2's FMAs): activations rounded to bf16, products summed
//! in f64. With outlier
//! activations, 1, 6 and 130 rows, column ranges split as threads split them, a width that ends in
//! a partial group. Each format is skipped (and said so) on a CPU without its instruction. Where
//! AMX is granted, passes of 64 rows and more also run on its tiles (lower/amx.rs): bf16
//! activations and weights, checked against a bound of their rounding.
use compiler::mlx::affine::{Affine, ScaleType};
use compiler::lower::kernel::{KExpr, KernelSet, KernelSpec};
use compiler::lower::target::TargetCpu;
use compiler::lower::weight_format::WeightFormat;
use half::f16;

fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Random blocks of `format` for `n` rows of `k`: finite scales (and minimums, biases) in ±0.05,
/// random quants.
fn random_blocks(format: WeightFormat, n: usize, k: usize, seed: u64) -> Vec<u8> {
    let mut s = seed;
    let mut bytes: Vec<u8> = (0..format.row_bytes(k) as usize * n).map(|_| next(&mut s) as u8).collect();
    let mut value = || (next(&mut s) % 2000) as f32 / 20000.0 - 0.05;
    match format {
        WeightFormat::BF16 => return (0..n * k).flat_map(|_| half::bf16::from_f32(value() * 20.0).to_le_bytes()).collect(),
        WeightFormat::Affine(a) => {
            let sb = a.scale.bytes();
            for b in (0..bytes.len()).step_by(a.block_bytes()) {
                for h in [0, sb] {
                    bytes[b + h..b + h + sb].copy_from_slice(&a.scale.write(value()));
                }
            }
        }
        _ => {
            let halves: &[usize] = if matches!(format, WeightFormat::Q4_1 | WeightFormat::Q5_1 | WeightFormat::Q4_K | WeightFormat::Q5_K) { &[0, 2] } else { &[0] };
            let per = if matches!(format, WeightFormat::Q4_K | WeightFormat::Q5_K | WeightFormat::Q6_K) { 256 } else { 32 };
            // Q6_K keeps its one f16 at the end of the super-block
            let halves: &[usize] = if format == WeightFormat::Q6_K { &[208] } else { halves };
            for b in (0..bytes.len()).step_by(format.row_bytes(per) as usize) {
                for &h in halves {
                    bytes[b + h..b + h + 2].copy_from_slice(&f16::from_f32(value()).to_le_bytes());
                }
            }
        }
    }
    bytes
}

/// Block `b` (of 32) of column `c`: its 32 integer quants, d_w, and the factor of Σq_x (Q4_0's
/// offset is in the quants; Q4_1's minimum, MLX's bias).
fn block_quants(bytes: &[u8], format: WeightFormat, k: usize, c: usize, b: usize) -> (Vec<i32>, f64, f64) {
    if let WeightFormat::Affine(a) = format {
        let group = a.group as usize;
        let blk = &bytes[(c * k / group + 32 * b / group) * a.block_bytes()..][..a.block_bytes()];
        let s = a.scale.bytes();
        let ints = (0..32).map(|e| a.value(&blk[2 * s..], 32 * b % group + e) as i32).collect();
        return (ints, a.scale.read(blk) as f64, a.scale.read(&blk[s..]) as f64);
    }
    let half = |b: &[u8], at: usize| f16::from_le_bytes([b[at], b[at + 1]]).to_f64();
    if matches!(format, WeightFormat::Q4_K | WeightFormat::Q5_K) {
        // super-block: f16 d | f16 dmin | scales[12] | (Q5_K: qh[32]) | qs[128]; sub-block s = b % 8
        let size = format.row_bytes(256) as usize;
        let blk = &bytes[(c * k / 256 + b / 8) * size..][..size];
        let (s, q) = (b % 8, &blk[4..16]);
        let (sc, m) = if s < 4 { (q[s] & 63, q[s + 4] & 63) } else { ((q[s + 4] & 15) | ((q[s - 4] >> 6) << 4), (q[s + 4] >> 4) | ((q[s] >> 6) << 4)) };
        let fifth = format == WeightFormat::Q5_K;
        let qs = &blk[if fifth { 48 } else { 16 } + 32 * (s / 2)..];
        let ints = (0..32).map(|l| ((qs[l] >> (4 * (s % 2))) & 15) as i32 + if fifth { ((blk[16 + l] >> s) & 1) as i32 * 16 } else { 0 }).collect();
        return (ints, half(blk, 0) * sc as f64, -half(blk, 2) * m as f64);
    }
    if format == WeightFormat::Q6_K {
        // super-block: ql[128] | qh[64] | i8 scales[16] | f16 d; element 128h + 32k + l
        let size = format.row_bytes(256) as usize;
        let blk = &bytes[(c * k / 256 + b / 8) * size..][..size];
        let (h, kk) = (b % 8 / 4, b % 4);
        let q = |l: usize| (((blk[64 * h + 32 * (kk & 1) + l] >> (4 * (kk >> 1))) & 15) | (((blk[128 + 32 * h + l] >> (2 * kk)) & 3) << 4)) as i32 - 32;
        // two scales per block of 32: fold each half's into the quants relative to the first
        let (s0, s1) = (blk[192 + 8 * h + 2 * kk] as i8 as i32, blk[192 + 8 * h + 2 * kk + 1] as i8 as i32);
        let d = half(blk, 208);
        return ((0..32).map(|l| q(l) * if l < 16 { s0 } else { s1 }).collect(), d, 0.0);
    }
    let block = format.row_bytes(32) as usize;
    let blk = &bytes[(c * k / 32 + b) * block..][..block];
    let dw = half(blk, 0);
    match format {
        WeightFormat::Q8_0 => (blk[2..34].iter().map(|&v| v as i8 as i32).collect(), dw, 0.0),
        _ => {
            // (nibbles at, fifth bits at, offset, has a minimum)
            let (qs, qh, offset, min) = match format {
                WeightFormat::Q4_0 => (2, None, 8, false),
                WeightFormat::Q4_1 => (4, None, 0, true),
                WeightFormat::Q5_0 => (6, Some(2), 16, false),
                _ => (8, Some(4), 0, true),
            };
            let high = |e: usize| qh.map_or(0, |at: usize| ((u32::from_le_bytes(blk[at..at + 4].try_into().unwrap()) >> e) & 1) as i32 * 16);
            let ints = (0..32).map(|e| if e < 16 { (blk[qs + e] & 15) as i32 } else { (blk[qs + e - 16] >> 4) as i32 } + high(e) - offset).collect();
            (ints, dw, if min { f16::from_le_bytes([blk[2], blk[3]]).to_f64() } else { 0.0 })
        }
    }
}

/// The kernel's definition for one row x against dequantised-by-block weights.
fn reference(x: &[f32], n: usize, bytes: &[u8], format: WeightFormat, k: usize) -> Vec<f32> {
    if format == WeightFormat::BF16 {
        let w = format.dequantize(bytes);
        return (0..n).map(|c| (0..k).map(|e| half::bf16::from_f32(x[e]).to_f64() * w[c * k + e] as f64).sum::<f64>() as f32).collect();
    }
    // quantise x per block
    let mut q = vec![0i32; k];
    let mut d = vec![0f64; k / 32];
    for b in 0..k / 32 {
        let amax = x[32 * b..32 * b + 32].iter().fold(0f32, |m, v| m.max(v.abs()));
        let db = amax / 127.0;
        let inv = if amax == 0.0 { 0.0 } else { 127.0 / amax };
        for e in 0..32 {
            q[32 * b + e] = (x[32 * b + e] * inv).round_ties_even() as i32;
        }
        d[b] = db as f64;
    }
    (0..n)
        .map(|c| {
            let mut sum = 0f64;
            for b in 0..k / 32 {
                let (ints, dw, min) = block_quants(bytes, format, k, c, b);
                let dot: i64 = (0..32).map(|e| (ints[e] * q[32 * b + e]) as i64).sum();
                let qsum: i64 = q[32 * b..32 * b + 32].iter().map(|&v| v as i64).sum();
                sum += dw * d[b] * dot as f64 + min * d[b] * qsum as f64;
            }
            sum as f32
        })
        .collect()
}

/// AMX's definition: activations and weights (dequantised) rounded to bf16, products summed in
/// f32. Against the f64 sum with the weights unrounded, each output may be off by the weights'
/// rounding (at most 2^-9 of each product) and the f32 sum's.
fn check_bf16_products(x: &[f32], w: &[f32], n: usize, k: usize, got: &[f32], what: &str) {
    let xb: Vec<f64> = x.iter().map(|&v| half::bf16::from_f32(v).to_f64()).collect();
    let (want, size): (Vec<f64>, Vec<f64>) = (0..n).map(|c| (0..k).map(|e| (xb[e] * w[c * k + e] as f64, (xb[e] * w[c * k + e] as f64).abs())).fold((0.0, 0.0), |(s, a), (p, q)| (s + p, a + q))).unzip();
    let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
    for c in 0..n {
        let bound = size[c] / 256.0 + 1e-5 * scale;
        assert!((got[c] as f64 - want[c]).abs() <= bound, "{what}, column {c}: {} vs {} (bound {bound})", got[c], want[c]);
    }
}

/// This machine's kernels, and those of an AVX2 machine (`vpmaddubsw` in place of `vpdpbusd`)
/// wherever this one runs them.
#[test]
fn dot_matmuls_compute_their_definition() {
    let host = TargetCpu::resolve("host").unwrap();
    check_dot_matmuls(&host);
    let avx2 = TargetCpu::resolve("x86-64-v3").unwrap();
    if avx2.features.iter().all(|f| host.features.contains(f)) && avx2.features != host.features {
        check_dot_matmuls(&avx2);
    }
}

fn check_dot_matmuls(cpu: &TargetCpu) {
    // rows of whole K-quant super-blocks (256)
    // 130 rows: more than a chunk of quantised rows (128 here)
    let (k, rows) = (768usize, 130usize);
    let mut s = 7u64;
    // activations: mostly small, a few large outliers (as real models' have)
    let x: Vec<f32> = (0..rows * k).map(|i| if i % 97 == 5 { 40.0 } else { (next(&mut s) % 2001) as f32 / 1000.0 - 1.0 }).collect();
    let affine = |bits, group, scale| WeightFormat::Affine(Affine::new(bits, group, scale).unwrap());
    let formats = [
        WeightFormat::Q8_0,
        WeightFormat::Q4_0,
        WeightFormat::Q4_1,
        WeightFormat::Q5_0,
        WeightFormat::Q5_1,
        WeightFormat::Q4_K,
        WeightFormat::Q5_K,
        WeightFormat::Q6_K,
        affine(4, 32, ScaleType::BF16),
        affine(4, 64, ScaleType::F32),
        affine(4, 128, ScaleType::F16),
        affine(8, 32, ScaleType::F16),
        affine(8, 64, ScaleType::BF16),
        affine(8, 128, ScaleType::F32),
        affine(5, 32, ScaleType::F16),
        affine(6, 64, ScaleType::BF16),
        WeightFormat::BF16,
    ];
    // 37 columns: two whole groups and a part; 48: whole groups only (AMX then stores the tiles straight to the output)
    for (seed, (format, n)) in formats.into_iter().flat_map(|f| [(f, 37usize), (f, 48)]).enumerate() {
        if !compiler::lower::dot::supports(&cpu.features, format, k) {
            eprintln!("{} lacks the dot-product instruction for {format:?} (AVX2, AVX512-BF16): not built", cpu.name);
            continue;
        }
        let bytes = random_blocks(format, n, k, 14 + seed as u64);
        let mut kernels = KernelSet::default();
        let spec = KernelSpec::Matmul { k, n, inputs: 1, input: KExpr::Row(1), epilogue: KExpr::Acc, format, dot: true };
        let name = kernels.intern(spec);
        let (_, code) = compiler::lower::build(&kernels, cpu).unwrap();
        let loaded = runtime::kernels::Kernels::load(&code, &[&name]).unwrap();
        let packed = compiler::repack::pack(format, &bytes, n, k);
        // the packed layout holds the same values
        let values = format.dequantize(&bytes);
        for (c, e) in [(0, 0), (5, 100), (17, 511), (36, 767)] {
            let v = compiler::repack::value(format, &packed, k, c, e);
            assert!((v - values[c * k + e]).abs() <= 1e-6 * values[c * k + e].abs().max(1e-3), "{format:?} column {c} element {e}: {v} vs {}", values[c * k + e]);
        }
        // AMX (where built and granted): the first whole 32s of passes of 64 rows or more
        let amx = compiler::lower::amx::supports(&cpu.features, format, k) && runtime::cpu::amx_granted();
        let mut scratch = vec![0u64; compiler::lower::amx::scratch_bytes(k, rows) / 8];
        let mut cases = vec![(1, vec![(0, n)], false), (6, vec![(0, 16), (16, n)], false), (rows, vec![(0, 32), (32, n)], false)];
        if amx {
            cases.extend([(rows, vec![(0, 32), (32, n)], true), (64, vec![(0, n)], true), (96, vec![(0, 16), (16, n)], true)]);
        } else if format == WeightFormat::Q4_1 {
            eprintln!("AMX tiles not granted here (CPU, kernel or KILN_AMX=0): the AMX path is not tested");
        }
        for (r, ranges, tiles) in cases {
            let mut out = vec![f32::NAN; r * n];
            let args = [packed.as_ptr() as *mut u8, x.as_ptr() as *mut u8, out.as_mut_ptr() as *mut u8];
            let scratch = if tiles { scratch.as_mut_ptr() as *mut u8 } else { std::ptr::null_mut() };
            for &(begin, end) in &ranges {
                // SAFETY: the kernel reads n packed weight columns and r rows of x, writes r × n outputs.
                unsafe { loaded.get(&name)(args.as_ptr(), r as i64, begin as i64, end as i64, scratch) };
            }
            let amx_rows = if tiles { r / 32 * 32 } else { 0 };
            for t in 0..r {
                let got = &out[t * n..(t + 1) * n];
                let row = &x[t * k..(t + 1) * k];
                if t < amx_rows {
                    check_bf16_products(row, &values, n, k, got, &format!("{format:?} on AMX, {r} rows, row {t}"));
                    continue;
                }
                let want = reference(row, n, &bytes, format, k);
                let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
                let err = kiln_tests::max_abs_err(got, &want) / scale;
                assert!(err < 1e-5, "{} {format:?}, {r} rows, row {t}: {err} off its definition\n{:?}\n{:?}", cpu.name, &got[..4], &want[..4]);
            }
        }
    }
}
