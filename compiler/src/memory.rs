//! Memory planning: every intermediate value gets a slice of one activation arena, reusing
//! the slices of values no later step reads (greedy best fit over value lifetimes).

/// A value to place: its size and the steps that write and last read it.
pub struct Lifetime {
    pub bytes: u64,
    pub first: usize,
    pub last: usize,
}

/// Returns each value's arena offset (64-aligned) and the arena size.
pub fn plan(values: &[Lifetime]) -> (Vec<u64>, u64) {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by_key(|&i| (values[i].first, values[i].last));
    // blocks: (offset, bytes, busy until step)
    let mut blocks: Vec<(u64, u64, usize)> = vec![];
    let mut offsets = vec![0; values.len()];
    let mut top = 0u64;
    for i in order {
        let v = &values[i];
        let bytes = v.bytes.div_ceil(64) * 64;
        let free = blocks
            .iter_mut()
            .filter(|b| b.2 < v.first && b.1 >= bytes)
            .min_by_key(|b| b.1);
        match free {
            Some(b) => {
                offsets[i] = b.0;
                b.2 = v.last;
            }
            None => {
                offsets[i] = top;
                blocks.push((top, bytes, v.last));
                top += bytes;
            }
        }
    }
    (offsets, top)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_dead_values_and_never_overlaps_live_ones() {
        let v = |bytes, first, last| Lifetime { bytes, first, last };
        let values = [v(100, 0, 1), v(100, 1, 2), v(64, 2, 3), v(128, 3, 4)];
        let (offsets, total) = plan(&values);
        for (i, a) in values.iter().enumerate() {
            for (j, b) in values.iter().enumerate().skip(i + 1) {
                let live_together = a.first <= b.last && b.first <= a.last;
                let overlap = offsets[i] < offsets[j] + b.bytes && offsets[j] < offsets[i] + a.bytes;
                assert!(!(live_together && overlap), "{i} and {j} overlap");
            }
        }
        assert!(total < 100 + 128 + 128 + 128, "no reuse: {total}");
        assert_eq!(offsets[2], 0, "value 2 reuses value 0's slot");
    }
}
