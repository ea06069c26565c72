//! What this process has used, from `/proc/self`, for benchmarks that run
//! their parts as processes of their own.

/// `VmRSS` and `VmHWM` (peak) of this process, in bytes.
pub fn resident_memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or_else(|| panic!("{name} in /proc/self/status"))
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The numeric field `n` (numbered as in proc(5)) of each of `ns`, read
/// from one `/proc/self/stat`. Counted after the command name, which is
/// in parentheses and may hold spaces.
fn stat_fields<const N: usize>(ns: [usize; N]) -> [u64; N] {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // The state, field 3, follows the name's closing parenthesis.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    ns.map(|n| fields[n - 3].parse().unwrap())
}

/// The kernel's USER_HZ, 100 on Linux: the unit of CPU times in stat.
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds this process has used, user and system.
pub fn cpu_seconds() -> f64 {
    let [user, system] = stat_fields([14, 15]);
    (user + system) as f64 / TICKS_PER_SECOND
}

/// System CPU seconds and page faults (minor, major) of this process so
/// far: where a stage's CPU beyond its own work goes, faulting memory in
/// and reclaiming it.
pub fn kernel_work() -> (f64, u64, u64) {
    let [minor, major, system] = stat_fields([10, 12, 15]);
    (system as f64 / TICKS_PER_SECOND, minor, major)
}

/// Bytes this process has caused to be written to storage (`write_bytes`
/// of `/proc/self/io`): what its stores' commits really cost the disk,
/// page rewrites included.
pub fn written_bytes() -> u64 {
    io_counter("write_bytes:")
}

/// Bytes this process has caused to be read from storage (`read_bytes`
/// of `/proc/self/io`): reads the page cache answered are not counted, so
/// a stage that reads much here waited for the disk.
pub fn read_bytes() -> u64 {
    io_counter("read_bytes:")
}

fn io_counter(name: &str) -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} in /proc/self/io"))
}

/// CPU seconds used so far by this process's threads, summed per thread
/// name (`comm`, at most 15 bytes) with any trailing number dropped, so a
/// pool's threads count together: where a process's time went, by stage,
/// without a profiler.
pub fn cpu_seconds_by_thread_name() -> std::collections::BTreeMap<String, f64> {
    let mut by_name = std::collections::BTreeMap::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        // A thread that ended since the listing has no stat to read.
        let Ok(stat) = std::fs::read_to_string(task.unwrap().path().join("stat")) else {
            continue;
        };
        let name = &stat[stat.find('(').unwrap() + 1..stat.rfind(')').unwrap()];
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        let name = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '-');
        *by_name.entry(name.to_owned()).or_insert(0.0) += ticks as f64 / 100.0;
    }
    by_name
}
