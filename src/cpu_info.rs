//! The machine's data caches, read once at first use, and the softmax thresholds chosen from
//! them. The machines softcore runs on differ (a 32 MiB L3 on one VM kind, 105-260 MiB on
//! another), so `auto` and the streaming-store decision follow the caches found, not constants
//! tuned on one machine: three-pass-reload while a row fits the per-core L2 (its later passes
//! re-read the row from there), non-temporal stores once x and y together exceed the L3.

use std::sync::OnceLock;

/// Data cache sizes in bytes: L1d and L2 per core, L3 as reported (shared by the cores).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caches {
    pub l1d: usize,
    pub l2: usize,
    pub l3: usize,
    /// Where they came from: "sysfs", "cpuid" or "default" (neither was readable).
    pub source: &'static str,
}

/// Used when neither sysfs nor CPUID answers (or for a level they leave out): a common
/// x86-64 server core of the 2020s.
const DEFAULT: Caches = Caches {
    l1d: 32 << 10,
    l2: 1 << 20,
    l3: 32 << 20,
    source: "default",
};

/// The caches of this machine (cpu0), read once.
pub fn caches() -> Caches {
    static C: OnceLock<Caches> = OnceLock::new();
    *C.get_or_init(|| from_sysfs().or_else(from_cpuid).unwrap_or(DEFAULT))
}

/// The softmax thresholds for a machine with these caches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    /// `auto` runs three-pass-reload on rows of at most this many bytes (the L2).
    pub reload_max_row_bytes: usize,
    /// Outputs of more than this many bytes are written with non-temporal stores, and `auto`
    /// takes two-pass for rows of 1024+ elements there (x and y together exceed the L3).
    pub stream_min_bytes: usize,
}

impl Thresholds {
    pub fn for_caches(c: &Caches) -> Self {
        Thresholds {
            reload_max_row_bytes: c.l2,
            stream_min_bytes: c.l3 / 2,
        }
    }
}

/// The thresholds of this machine.
pub fn thresholds() -> Thresholds {
    #[cfg(test)]
    if let Some(t) = OVERRIDE.with(|o| o.get()) {
        return t;
    }
    static T: OnceLock<Thresholds> = OnceLock::new();
    *T.get_or_init(|| Thresholds::for_caches(&caches()))
}

#[cfg(test)]
thread_local! {
    static OVERRIDE: std::cell::Cell<Option<Thresholds>> = const { std::cell::Cell::new(None) };
}

/// Runs f with the thresholds of another machine on this thread (the drivers decide on the
/// calling thread), so a test takes a path whatever caches the test machine has.
#[cfg(test)]
pub fn with_thresholds<R>(t: Thresholds, f: impl FnOnce() -> R) -> R {
    OVERRIDE.with(|o| o.set(Some(t)));
    let r = f();
    OVERRIDE.with(|o| o.set(None));
    r
}

/// "48K", "2048K", "105M" (sysfs) in bytes.
fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let (num, mul) = match s.as_bytes().last()? {
        b'K' => (&s[..s.len() - 1], 1usize << 10),
        b'M' => (&s[..s.len() - 1], 1 << 20),
        b'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<usize>().ok()?.checked_mul(mul)
}

/// Fills the levels found in (level, type, bytes) descriptions; None when no data cache is.
fn assemble(
    found: impl Iterator<Item = (u32, bool, usize)>,
    source: &'static str,
) -> Option<Caches> {
    let mut c = Caches {
        l1d: 0,
        l2: 0,
        l3: 0,
        source,
    };
    for (level, _, bytes) in found.filter(|&(_, data, b)| data && b > 0) {
        match level {
            1 => c.l1d = c.l1d.max(bytes),
            2 => c.l2 = c.l2.max(bytes),
            3 => c.l3 = c.l3.max(bytes),
            _ => {}
        }
    }
    if c.l1d == 0 && c.l2 == 0 && c.l3 == 0 {
        return None;
    }
    // A level a VM does not report (no L3 on some): the one below it, else the default.
    c.l1d = if c.l1d > 0 { c.l1d } else { DEFAULT.l1d };
    c.l2 = if c.l2 > 0 {
        c.l2
    } else {
        c.l1d.max(DEFAULT.l2)
    };
    c.l3 = if c.l3 > 0 { c.l3 } else { c.l2 };
    Some(c)
}

/// Linux: /sys/devices/system/cpu/cpu0/cache/index*/{level,type,size}.
fn from_sysfs() -> Option<Caches> {
    let base = std::path::Path::new("/sys/devices/system/cpu/cpu0/cache");
    let read = |i: usize, f: &str| std::fs::read_to_string(base.join(format!("index{i}/{f}"))).ok();
    let found = (0..16).map_while(|i| {
        let level = read(i, "level")?.trim().parse::<u32>().ok()?;
        let kind = read(i, "type")?;
        let data = matches!(kind.trim(), "Data" | "Unified");
        let bytes = read(i, "size").as_deref().and_then(parse_size).unwrap_or(0);
        Some((level, data, bytes))
    });
    assemble(found.collect::<Vec<_>>().into_iter(), "sysfs")
}

/// x86-64: CPUID leaf 4 (Intel) or 0x8000001D (AMD), the deterministic cache parameters.
#[cfg(target_arch = "x86_64")]
fn from_cpuid() -> Option<Caches> {
    use std::arch::x86_64::{__cpuid, __cpuid_count};
    // Leaves above the reported maximum of their range are not read.
    let v = __cpuid(0);
    let amd = v.ebx == u32::from_le_bytes(*b"Auth");
    let (leaf, max) = if amd {
        (0x8000_001D, __cpuid(0x8000_0000).eax)
    } else {
        (4, v.eax)
    };
    if leaf > max {
        return None;
    }
    let found = (0..16).map_while(|sub| {
        let r = __cpuid_count(leaf, sub);
        let kind = r.eax & 0x1f; // 0: no more caches, 1: data, 2: instruction, 3: unified
        if kind == 0 {
            return None;
        }
        let level = (r.eax >> 5) & 0x7;
        let ways = ((r.ebx >> 22) & 0x3ff) as usize + 1;
        let parts = ((r.ebx >> 12) & 0x3ff) as usize + 1;
        let line = (r.ebx & 0xfff) as usize + 1;
        let sets = r.ecx as usize + 1;
        Some((level, kind != 2, ways * parts * line * sets))
    });
    assemble(found.collect::<Vec<_>>().into_iter(), "cpuid")
}

#[cfg(not(target_arch = "x86_64"))]
fn from_cpuid() -> Option<Caches> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_sysfs_writes_them() {
        assert_eq!(parse_size("48K\n"), Some(48 << 10));
        assert_eq!(parse_size("105M"), Some(105 << 20));
        assert_eq!(parse_size("2048K"), Some(2 << 20));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("K"), None);
        assert_eq!(parse_size("x"), None);
    }

    #[test]
    fn levels_missing_or_instruction_only_fall_back() {
        let c = assemble([(1, true, 48 << 10), (1, false, 32 << 10)].into_iter(), "t").unwrap();
        assert_eq!((c.l1d, c.l2, c.l3), (48 << 10, DEFAULT.l2, DEFAULT.l2));
        assert!(assemble([(1, false, 32 << 10)].into_iter(), "t").is_none());
        let c = assemble(
            [
                (1, true, 48 << 10),
                (2, true, 2 << 20),
                (3, true, 105 << 20),
            ]
            .into_iter(),
            "t",
        )
        .unwrap();
        let t = Thresholds::for_caches(&c);
        assert_eq!(t.reload_max_row_bytes, 2 << 20);
        assert_eq!(t.stream_min_bytes, (105 << 20) / 2);
    }

    #[test]
    fn this_machine_reports_ordered_sizes() {
        let c = caches();
        assert!(
            c.l1d > 0 && c.l1d <= c.l2 && c.l2 <= c.l3.max(c.l2),
            "{c:?}"
        );
        // sysfs and CPUID agree where both answer (x86 Linux).
        if let (Some(s), Some(p)) = (from_sysfs(), from_cpuid()) {
            assert_eq!((s.l1d, s.l2), (p.l1d, p.l2), "{s:?} vs {p:?}");
        }
    }
}
