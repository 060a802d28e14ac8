//! How numbers and tables look to a person: bytes in binary units, durations, aligned tables.
//! Every command and observer formats through here.

use std::time::Duration;

/// Human-readable bytes (binary units).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Human-readable duration (`1h 02m`, `3m 20s`, `42s`).
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// Column alignment of a table.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A table with a header row, columns padded to their widest cell, two spaces apart, trailing
/// blanks trimmed. `align` gives each column's alignment (missing ones are left-aligned).
pub fn table<const N: usize>(head: [&str; N], rows: &[[String; N]], align: &[Align]) -> String {
    let mut width = head.map(|h| h.chars().count());
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: [&str; N]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(width)
            .enumerate()
            .map(|(i, (c, w))| match align.get(i) {
                Some(Align::Right) => format!("{c:>w$}"),
                _ => format!("{c:<w$}"),
            })
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut s = line(head);
    for r in rows {
        s.push_str(&line(std::array::from_fn(|i| r[i].as_str())));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
        assert_eq!(duration(Duration::from_secs(200)), "3m 20s");
        assert_eq!(duration(Duration::from_secs(3720)), "1h 02m");
    }

    #[test]
    fn tables_align() {
        let t = table(
            ["repo", "files"],
            &[["a/b".into(), "3".into()], ["acme/long".into(), "120".into()]],
            &[Align::Left, Align::Right],
        );
        assert_eq!(t, "repo       files\na/b            3\nacme/long    120\n");
    }
}
