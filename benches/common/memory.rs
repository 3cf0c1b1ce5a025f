//! The memory figures the benchmarks print: a process's peak and current resident memory from
//! `/proc/<pid>/status`.

/// A memory figure (`VmHWM:`, `VmRSS:`) of process `pid`, in MiB (0 when it cannot be read).
pub fn status_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}
