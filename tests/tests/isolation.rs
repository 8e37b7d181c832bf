//! Each loaded artifact's kernels stay its own, whatever else the process opens or closes:
//! 8 different artifacts (two fixtures, each in four weight formats, so each has kernels of its
//! own) are opened on 8 threads at once, then opened, run, dropped and reopened in a loop; each
//! always gives its own logits, bit for bit, and the process's descriptors and mapped memory do
//! not grow with the loop count.
use std::path::{Path, PathBuf};

use compiler::compile::Options;
use kiln_tests::reencode::{compile_with, reencoded};

const ARTIFACTS: [(&str, &str); 8] = [
    ("llama_tied_gqa", "F32"),
    ("llama_tied_gqa", "F16"),
    ("llama_tied_gqa", "Q8_0"),
    ("llama_tied_gqa", "Q4_0"),
    ("llama_untied_llama3_rope", "F32"),
    ("llama_untied_llama3_rope", "BF16"),
    ("llama_untied_llama3_rope", "Q4_1"),
    ("llama_untied_llama3_rope", "Q8_0"),
];

/// Opens the artifact, runs a prefill and two decode steps, drops it; returns the logits.
fn logits(artifact: &Path) -> Vec<f32> {
    let mut model = runtime::Model::open(artifact, Some(32)).unwrap();
    let prompt: Vec<u32> = (3..19).collect();
    let mut out = model.forward(&prompt, 0, true).unwrap();
    out.extend(model.forward(&[7], prompt.len(), false).unwrap());
    out.extend(model.forward(&[9], prompt.len() + 1, false).unwrap());
    out
}

/// Every artifact on its own thread, `rounds` times each, checked against its expected logits.
fn open_run_drop(artifacts: &[(PathBuf, Vec<f32>)], rounds: usize) {
    std::thread::scope(|scope| {
        for (path, expected) in artifacts {
            scope.spawn(move || {
                for round in 0..rounds {
                    assert!(logits(path) == *expected, "{}: other logits in round {round}", path.display());
                }
            });
        }
    });
}

/// `code` in a new memfd, and the path the dynamic loader can open it by.
fn memfd_path(code: &[u8]) -> (std::fs::File, String) {
    use std::io::Write;
    use std::os::fd::{AsRawFd, FromRawFd};
    // SAFETY: plain syscall; the descriptor is ours.
    let mut file = unsafe { std::fs::File::from_raw_fd(libc::memfd_create(c"other".as_ptr(), 0)) };
    file.write_all(code).unwrap();
    let path = format!("/proc/self/fd/{}", file.as_raw_fd());
    (file, path)
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// (mappings, bytes mapped) of this process.
fn mapped() -> (usize, u64) {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let size = |line: &str| {
        let (a, b) = line.split_whitespace().next().unwrap().split_once('-').unwrap();
        u64::from_str_radix(b, 16).unwrap() - u64::from_str_radix(a, 16).unwrap()
    };
    (maps.lines().count(), maps.lines().map(size).sum())
}

#[test]
fn concurrent_artifacts_keep_their_own_kernels_and_nothing_leaks() {
    // One malloc arena per CPU at most: a new 64 MiB arena (reserved, not used) for a thread that
    // happens to find the others busy is not a leak, and would hide one.
    // SAFETY: plain libc call before this test starts threads of its own.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, std::thread::available_parallelism().map_or(1, |n| n.get()) as i32) };
    let dir = tempfile::tempdir().unwrap();
    let artifacts: Vec<(PathBuf, Vec<f32>)> = ARTIFACTS
        .iter()
        .map(|&(fixture, dtype)| {
            let out = compile_with(&reencoded(fixture, dtype), &dir.path().join(format!("{fixture}_{dtype}.kiln")), &Options::default());
            let expected = logits(&out);
            (out, expected)
        })
        .collect();
    for (i, (a, x)) in artifacts.iter().enumerate() {
        for (b, y) in &artifacts[i + 1..] {
            assert!(x != y, "{} and {} must differ for the test to tell them apart", a.display(), b.display());
        }
    }

    // A library loaded by someone else from a descriptor since closed holds that path: the next
    // artifact's memfd gets the same number, and must still get its own kernels.
    {
        let (stale, _) = &artifacts[0];
        let (fd, path) = memfd_path(runtime::artifact::Artifact::open(stale, true).unwrap().code());
        // SAFETY: Kiln's kernels run no initialisers of their own.
        let lingering = unsafe { libloading::Library::new(&path) }.unwrap();
        drop(fd);
        let (fresh, expected) = &artifacts[1];
        assert!(logits(fresh) == *expected, "{} got the kernels loaded as {path}", fresh.display());
        drop(lingering);
    }

    open_run_drop(&artifacts, 4);
    let (fds, (maps, bytes)) = (open_descriptors(), mapped());
    open_run_drop(&artifacts, 40);
    let (fds_after, (maps_after, bytes_after)) = (open_descriptors(), mapped());
    assert_eq!(fds_after, fds, "open descriptors grew over 320 opens");
    assert!(maps_after <= maps + 16, "mappings grew from {maps} to {maps_after} over 320 opens");
    assert!(bytes_after <= bytes + (32 << 20), "mapped bytes grew from {bytes} to {bytes_after} over 320 opens");
}
