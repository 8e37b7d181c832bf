//! A long `kiln chat` stays bounded: 1,000 piped turns through a short context (old turns slide
//! out again and again) end with the resident memory they had after 50, and never an error.
use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStderr, Stdio};

use kiln_tests::*;

/// Resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Reads the chat's stderr up to the next `/stats` answer; fails on any error line.
fn until_stats(stderr: &mut BufReader<ChildStderr>) {
    let mut line = String::new();
    loop {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "chat ended early");
        assert!(!line.starts_with("kiln:"), "the chat reported an error: {line}");
        if line.starts_with("context: ") {
            return;
        }
    }
}

#[test]
fn a_thousand_turns_through_a_short_context_stay_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let art = compile(&fixture("llama_tied_gqa"), dir.path());
    let mut child = kiln()
        .args(["chat", art.to_str().unwrap(), "--ctx", "96", "--max-tokens", "8", "--temperature", "0.9", "--seed", "3"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Turns are written from a thread, 50 and then the rest, each batch followed by `/stats`.
    let mut stdin = child.stdin.take().unwrap();
    let (go_on, wait) = std::sync::mpsc::channel::<()>();
    let writer = std::thread::spawn(move || {
        for (batch, range) in [0..50, 50..1000].into_iter().enumerate() {
            if batch > 0 {
                wait.recv().unwrap();
            }
            for i in range {
                writeln!(stdin, "turn {i}: tell me a story about the sea").unwrap();
            }
            writeln!(stdin, "/stats").unwrap();
        }
    });
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    until_stats(&mut stderr);
    let after_50 = rss_kib(child.id());
    go_on.send(()).unwrap();
    until_stats(&mut stderr);
    let after_1000 = rss_kib(child.id());
    writer.join().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "chat exited with {status}");
    assert!(after_1000 <= after_50 + 4096, "resident memory grew from {after_50} KiB after 50 turns to {after_1000} KiB after 1,000");
}
