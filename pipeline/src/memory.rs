//! The process's resident memory, read from `/proc`, for the stage logs and the
//! benchmarks.

/// Peak resident memory of this process so far in MiB (Linux; `None` elsewhere), logged
/// at stage boundaries.
pub fn peak_rss_mib() -> Option<u64> {
    status_mib("VmHWM:")
}

/// Resident memory of this process now in MiB (Linux; `None` elsewhere): beside the peak
/// it tells what a stage holds from what it passed through.
pub fn rss_mib() -> Option<u64> {
    status_mib("VmRSS:")
}

fn status_mib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}
