//! Reading reports: a 100,000-case JUnit file (about 50 MB; one case in a hundred failed, with
//! a message and a stack trace; every case with some captured output) and a 10 MB Cobertura file
//! (classes with their methods' lines repeated, as Cobertura writes them), each read by
//! pushbuild's reader in a process of its own, so its peak memory (VmHWM) is the reading's.
//! Targets: under 1 s and under 64 MiB each.
//!
//! Beside it, the peer: Python's `xml.etree.ElementTree.iterparse` counting the same cases (and
//! the Cobertura lines), clearing each element as it goes (the streaming way), in the same run.
//!
//! Run: `cargo bench --bench reports_bench` (REPORTS_BENCH_ROUNDS, default 3; files under
//! REPORTS_BENCH_DIR, default the system's temporary folder, whose file system is printed).

#[path = "common/memory.rs"]
mod memory;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use pushbuild::reports::{Format, ReportFiles, read_files};

const CASES: usize = 100_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--read") {
        read_and_print(&args[at + 1], Path::new(&args[at + 2]));
        return;
    }
    let base = std::env::var_os("REPORTS_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(&base).expect("a folder");
    let junit = dir.path().join("TEST-big.xml");
    let cobertura = dir.path().join("coverage.xml");
    write_junit(&junit);
    write_cobertura(&cobertura);
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len()) as f64 / 1e6;
    println!(
        "files under {} ({}): JUnit {:.1} MB, Cobertura {:.1} MB",
        base.display(),
        file_system(&base),
        size(&junit),
        size(&cobertura)
    );
    let rounds: usize = std::env::var("REPORTS_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    println!(
        "{:<10} {:>5} {:>10} {:>10} {:>10} {:>10} {:>7}  what was read",
        "file", "round", "pushbuild", "peak MiB", "peer", "peak MiB", "ratio"
    );
    for (name, format, path) in [
        ("JUnit", "JUNITXML", &junit),
        ("Cobertura", "COBERTURAXML", &cobertura),
    ] {
        for round in 0..rounds {
            let (ours, ours_peak, what) = ours(format, path);
            let (peer, peer_peak) = peer(format, path);
            println!(
                "{name:<10} {round:>5} {:>9.3}s {ours_peak:>10.1} {:>9.3}s {peer_peak:>10.1} {:>7.2}  {what}",
                ours,
                peer,
                ours / peer
            );
        }
    }
}

/// The child's side: reads one file, prints seconds, peak MiB and what it read.
fn read_and_print(format: &str, path: &Path) {
    let format = Format::parse(format).expect("a format");
    let clock = Instant::now();
    let report = read_files(ReportFiles {
        group: "bench".into(),
        format,
        files: vec![("file".into(), path.to_path_buf())],
    });
    let seconds = clock.elapsed().as_secs_f64();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let what = match (&report.tests, &report.coverage) {
        (Some(t), _) => format!(
            "{} cases, {} failed, {} kept",
            t.counts.total(),
            t.counts.failed,
            t.cases.len()
        ),
        (_, Some(c)) => format!(
            "{} of {} lines, {} files",
            c.lines.covered,
            c.lines.total(),
            c.files
        ),
        _ => String::new(),
    };
    let peak = memory::status_mib(std::process::id(), "VmHWM:");
    println!("{seconds} {peak} {what}");
}

fn ours(format: &str, path: &Path) -> (f64, f64, String) {
    let out = Command::new(std::env::current_exe().expect("this program"))
        .args(["--read", format])
        .arg(path)
        .output()
        .expect("the reader runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let mut parts = text.splitn(3, ' ');
    let seconds = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0.0);
    let peak = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0.0);
    (seconds, peak, parts.next().unwrap_or_default().to_string())
}

/// Python's streaming ElementTree, counting the cases (or lines) as the reader does.
const PEER: &str = r#"
import resource, sys, time
import xml.etree.ElementTree as ET
fmt, path = sys.argv[1], sys.argv[2]
start = time.perf_counter()
n = bad = 0
for _, el in ET.iterparse(path, events=("end",)):
    tag = el.tag
    if fmt == "JUNITXML" and tag == "testcase":
        n += 1
        bad += any(c.tag == "failure" for c in el)
        el.clear()
    elif fmt == "COBERTURAXML" and tag == "line":
        n += 1
    elif tag in ("class", "testsuite"):
        el.clear()
seconds = time.perf_counter() - start
print(seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, n, bad)
"#;

fn peer(format: &str, path: &Path) -> (f64, f64) {
    let out = Command::new("python3")
        .args(["-c", PEER, format])
        .arg(path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.split_whitespace();
    let seconds = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0.0);
    let peak = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0.0);
    (seconds, peak)
}

fn write_junit(path: &Path) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("a file"));
    writeln!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>"
    )
    .unwrap();
    let output = "log line with some detail about what the test did and saw; ".repeat(6);
    for suite in 0..100 {
        writeln!(
            out,
            "<testsuite name=\"com.acme.module{suite}.WidgetTest\" tests=\"1000\">"
        )
        .unwrap();
        for case in 0..CASES / 100 {
            let n = suite * 1000 + case;
            let mut line = format!(
                "<testcase classname=\"com.acme.module{suite}.WidgetTest\" \
                 name=\"widget case {n} behaves as documented\" time=\"0.0{case}\">"
            );
            if n % 100 == 7 {
                let _ = write!(
                    line,
                    "<failure message=\"expected &lt;{n}&gt; but was &lt;{}&gt;\" \
                     type=\"org.opentest4j.AssertionFailedError\">",
                    n + 1
                );
                for frame in 0..12 {
                    let _ = writeln!(
                        line,
                        "\tat com.acme.module{suite}.Widget.step{frame}(Widget.java:{frame})"
                    );
                }
                line.push_str("</failure>");
            }
            let _ = write!(
                line,
                "<system-out><![CDATA[{output}]]></system-out></testcase>"
            );
            writeln!(out, "{line}").unwrap();
        }
        writeln!(out, "</testsuite>").unwrap();
    }
    writeln!(out, "</testsuites>").unwrap();
}

fn write_cobertura(path: &Path) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("a file"));
    writeln!(
        out,
        "<?xml version=\"1.0\"?>\n<!DOCTYPE coverage SYSTEM \"http://cobertura.sourceforge.net/xml/coverage-04.dtd\">\n\
         <coverage line-rate=\"0.5\" branch-rate=\"0.5\" version=\"2.1.1\"><packages>"
    )
    .unwrap();
    for package in 0..25 {
        writeln!(out, "<package name=\"com.acme.p{package}\"><classes>").unwrap();
        for class in 0..70 {
            let file = format!("com/acme/p{package}/C{class}.java");
            let mut lines = String::new();
            for number in 1..=60 {
                let hits = (number * 7 + class) % 3;
                if number % 10 == 0 {
                    let _ = writeln!(
                        lines,
                        "<line number=\"{number}\" hits=\"{hits}\" branch=\"true\" condition-coverage=\"50% (1/2)\"/>"
                    );
                } else {
                    let _ = writeln!(
                        lines,
                        "<line number=\"{number}\" hits=\"{hits}\" branch=\"false\"/>"
                    );
                }
            }
            writeln!(
                out,
                "<class name=\"com.acme.p{package}.C{class}\" filename=\"{file}\" line-rate=\"0.6\">\
                 <methods><method name=\"run\" signature=\"()V\"><lines>{lines}</lines></method></methods>\
                 <lines>{lines}</lines></class>"
            )
            .unwrap();
        }
        writeln!(out, "</classes></package>").unwrap();
    }
    writeln!(out, "</packages></coverage>").unwrap();
}

/// The file system `path` is on, as `df` names its type.
fn file_system(path: &Path) -> String {
    Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(path)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
