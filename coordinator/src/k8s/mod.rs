//! Kubernetes: the `Migration` resource, its controller, the Kubernetes runtime of the pipeline
//! (a Job per chunk attempt), the status observer, and `run --executor kubernetes`.

pub mod controller;
pub mod crd;
pub(crate) mod executor;
pub(crate) mod job;
pub(crate) mod policy;
pub(crate) mod runtime;
pub(crate) mod status;
pub mod submit;
pub(crate) mod tls;

/// The current time as RFC 3339 (`2026-01-02T03:04:05Z`), as Kubernetes timestamps are written.
pub fn rfc3339_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, m, d) = civil((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// The civil date (year, month, day) of `days` since 1970-01-01 (Howard Hinnant's algorithm).
pub fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_look_like_kubernetes_ones() {
        let t = super::rfc3339_now();
        assert_eq!(t.len(), 20);
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
    }

    #[test]
    fn days_map_to_civil_dates() {
        assert_eq!(super::civil(0), (1970, 1, 1));
        assert_eq!(super::civil(11_016), (2000, 2, 29));
        assert_eq!(super::civil(20_793), (2026, 12, 6));
    }
}
