//! What attention's two tile paths share (attention_amx.rs on AMX tiles, attention_flash.rs on
//! vector registers), both transposed so that each lane is a query row: which tiles they take,
//! the rows' positions and visible cache rows, a block's causal mask, and the transposes
//! between rows and lanes.
use inkwell::types::VectorType;
use inkwell::values::{IntValue, PointerValue, VectorValue};
use inkwell::IntPredicate;
use runtime::plan::TILE_ROWS;

use super::attention::Args;
use super::codegen::{ok, Cg, KernelArgs};

/// Whether the tile of rows t0.. goes on a tile path (the kernel given scratch, which attention.rs
/// checks before it cuts a pass into tiles): TILE_ROWS rows, one sequence.
pub fn applies<'ctx>(cg: &Cg<'ctx>, ka: &KernelArgs<'ctx>, a: &Args<'ctx>, t0: IntValue<'ctx>) -> IntValue<'ctx> {
    let tr = TILE_ROWS as u64;
    let whole = ok!(cg.b.build_int_compare(IntPredicate::SLE, cg.add(t0, cg.int(tr)), ka.rows, ""));
    // a partial tile reads the first tile's bases instead (rows ≥ TILE_ROWS here), and is refused anyway
    let at = ok!(cg.b.build_select(whole, t0, cg.int(0), "")).into_int_value();
    let bases = i32s(cg, a.base, at, TILE_ROWS as u32);
    let same = ok!(cg.b.build_int_compare(IntPredicate::EQ, bases, cg.splat_int(cg.extract_int(bases), TILE_ROWS as u32), ""));
    let one_sequence = cg.intrinsic("llvm.vector.reduce.and", same.get_type(), &[same.into()]).into_int_value();
    ok!(cg.b.build_and(whole, one_sequence, ""))
}

/// The TILE_ROWS rows from t0 in vectors of `lanes` rows: each row's position and first visible
/// cache row, and the tile's spans of cache rows.
pub struct TileRows<'ctx> {
    pub pos: Vec<VectorValue<'ctx>>,
    pub first: Vec<VectorValue<'ctx>>,
    /// cache rows some row sees: [lo, hi)
    pub lo: IntValue<'ctx>,
    pub hi: IntValue<'ctx>,
    /// cache rows every row sees: [seen_from, seen_to)
    seen_from: IntValue<'ctx>,
    seen_to: IntValue<'ctx>,
}

impl<'ctx> TileRows<'ctx> {
    pub fn of(cg: &Cg<'ctx>, window: Option<usize>, pos: PointerValue<'ctx>, t0: IntValue<'ctx>, lanes: u32) -> TileRows<'ctx> {
        let pos: Vec<VectorValue> = (0..TILE_ROWS as u64 / lanes as u64).map(|v| i32s(cg, pos, cg.add(t0, cg.int(v * lanes as u64)), lanes)).collect();
        let first = pos
            .iter()
            .map(|&p| match window {
                Some(w) => {
                    let from = ok!(cg.b.build_int_sub(p, cg.splat_i32(w as u64 - 1, lanes), ""));
                    cg.intrinsic("llvm.smax", from.get_type(), &[from.into(), cg.splat_i32(0, lanes).into()]).into_vector_value()
                }
                None => cg.splat_i32(0, lanes),
            })
            .collect::<Vec<_>>();
        let (lo, hi) = (reduce(cg, "smin", &first), cg.add(reduce(cg, "smax", &pos), cg.int(1)));
        let (seen_from, seen_to) = (reduce(cg, "smax", &first), cg.add(reduce(cg, "smin", &pos), cg.int(1)));
        TileRows { pos, first, lo, hi, seen_from, seen_to }
    }

    /// Whether every row sees all `n` cache rows from s0 (the common case off the diagonal).
    pub fn all_see(&self, cg: &Cg<'ctx>, s0: IntValue<'ctx>, n: u64) -> IntValue<'ctx> {
        ok!(cg.b.build_and(cg.lt(self.seen_from, cg.add(s0, cg.int(1))), cg.lt(cg.add(s0, cg.int(n - 1)), self.seen_to), ""))
    }

    /// The masks of the block from cache row s0, one per vector of rows.
    pub fn masks(&self, cg: &Cg<'ctx>, s0: IntValue<'ctx>) -> Vec<Mask<'ctx>> {
        let s0 = ok!(cg.b.build_int_truncate(s0, cg.i32, ""));
        self.pos.iter().zip(&self.first).map(|(&pos, &first)| Mask { s0, first, pos }).collect()
    }
}

/// Which keys of a block a vector of rows sees: first ≤ s0 + k ≤ pos (lanes = rows).
pub struct Mask<'ctx> {
    s0: IntValue<'ctx>,
    first: VectorValue<'ctx>,
    pos: VectorValue<'ctx>,
}

impl<'ctx> Mask<'ctx> {
    /// x where key k is visible, `or` elsewhere.
    pub fn apply(&self, cg: &Cg<'ctx>, k: IntValue<'ctx>, x: VectorValue<'ctx>, or: VectorValue<'ctx>) -> VectorValue<'ctx> {
        let k = ok!(cg.b.build_int_truncate(k, cg.i32, ""));
        let key = cg.splat_int(ok!(cg.b.build_int_add(self.s0, k, "")), self.pos.get_type().get_size());
        let after = ok!(cg.b.build_int_compare(IntPredicate::SLE, self.first, key, ""));
        let upto = ok!(cg.b.build_int_compare(IntPredicate::SLE, key, self.pos, ""));
        ok!(cg.b.build_select(ok!(cg.b.build_and(after, upto, "")), x, or, "")).into_vector_value()
    }
}

/// The smallest or largest lane of all the vectors (`op` "smin", "smax"), as i64.
fn reduce<'ctx>(cg: &Cg<'ctx>, op: &str, vs: &[VectorValue<'ctx>]) -> IntValue<'ctx> {
    let v = vs[1..].iter().fold(vs[0], |a, &b| cg.intrinsic(&format!("llvm.{op}"), a.get_type(), &[a.into(), b.into()]).into_vector_value());
    let x = cg.intrinsic(&format!("llvm.vector.reduce.{op}"), v.get_type(), &[v.into()]).into_int_value();
    ok!(cg.b.build_int_s_extend(x, cg.i64, ""))
}

/// max(a, b) lane by lane (no NaN here: one `vmaxps`).
pub fn max<'ctx>(cg: &Cg<'ctx>, a: VectorValue<'ctx>, b: VectorValue<'ctx>) -> VectorValue<'ctx> {
    let gt = ok!(cg.b.build_float_compare(inkwell::FloatPredicate::OGT, a, b, ""));
    ok!(cg.b.build_select(gt, a, b, "")).into_vector_value()
}

/// `lanes` i32 from element i of `base`.
pub fn i32s<'ctx>(cg: &Cg<'ctx>, base: PointerValue<'ctx>, i: IntValue<'ctx>, lanes: u32) -> VectorValue<'ctx> {
    cg.load_ints(cg.byte_ptr(base, cg.mul(i, cg.int(4))), cg.i32.vec_type(lanes))
}

/// The transpose of n vectors of n lanes (rows in, columns out): log2(n) rounds in which rows i
/// and i + s swap their off-diagonal blocks of s lanes, one shuffle per row.
pub fn transpose<'ctx>(cg: &Cg<'ctx>, mut v: Vec<VectorValue<'ctx>>) -> Vec<VectorValue<'ctx>> {
    let n = v.len() as u32;
    let mask = |f: &dyn Fn(u32) -> u32| VectorType::const_vector(&(0..n).map(|l| cg.i32.const_int(f(l) as u64, false)).collect::<Vec<_>>());
    let mut s = n / 2;
    while s >= 1 {
        for i in (0..n).filter(|i| i & s == 0) {
            let (a, b) = (v[i as usize], v[(i + s) as usize]);
            let lo = mask(&|l| if l & s == 0 { l } else { n + l - s });
            let hi = mask(&|l| if l & s == 0 { l + s } else { n + l });
            v[i as usize] = ok!(cg.b.build_shuffle_vector(a, b, lo, ""));
            v[(i + s) as usize] = ok!(cg.b.build_shuffle_vector(a, b, hi, ""));
        }
        s /= 2;
    }
    v
}
