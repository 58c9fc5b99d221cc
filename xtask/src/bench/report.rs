//! The pure parts of the benchmark report: statistics, number formats, Markdown tables.

use std::time::Duration;

/// Column alignment in a Markdown table.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Align {
    Left,
    Right,
}

/// A Markdown table with columns padded to a common width, so that it reads well as text too.
pub fn table(header: &[(&str, Align)], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|(h, _)| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count()).max(3);
        }
    }
    let line = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
    let pad = |text: &str, width: usize, align: Align| match align {
        Align::Left => format!("{text:<width$}"),
        Align::Right => format!("{text:>width$}"),
    };
    let mut out =
        line(header.iter().zip(&widths).map(|(&(h, align), &w)| pad(h, w, align)).collect());
    out.push_str(&line(
        header
            .iter()
            .zip(&widths)
            .map(|(&(_, align), &w)| match align {
                Align::Left => "-".repeat(w),
                Align::Right => format!("{}:", "-".repeat(w - 1)),
            })
            .collect(),
    ));
    for row in rows {
        let cells = header
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (&(_, align), &w))| pad(row.get(i).map_or("", String::as_str), w, align));
        out.push_str(&line(cells.collect()));
    }
    out
}

/// The median of `values` (the mean of the middle two for an even count); `None` when empty.
pub fn median(values: &[Duration]) -> Option<Duration> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2),
    }
}

/// Milliseconds with a precision that suits the size: `0.84`, `12.3`, `153`.
pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2}")
    } else if ms < 100.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.0}")
    }
}

/// A ratio such as `0.42×` or `3.1×`.
pub fn ratio(value: Duration, base: Duration) -> String {
    if base.is_zero() {
        return "–".into();
    }
    let r = value.as_secs_f64() / base.as_secs_f64();
    if r < 10.0 { format!("{r:.2}×") } else { format!("{r:.0}×") }
}

/// A file size in bytes as KB (1000 bytes) or MB, as `ls -h --si` would round it.
pub fn size(bytes: u64) -> String {
    if bytes < 1_000_000 {
        format!("{:.1} KB", bytes as f64 / 1000.0)
    } else {
        format!("{:.1} MB", bytes as f64 / 1_000_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_aligned_markdown() {
        let rows = vec![
            vec!["boxr".to_string(), "1.23".to_string()],
            vec!["runc run".to_string(), "31.0".to_string()],
            vec!["short".to_string()],
        ];
        let text = table(&[("runtime", Align::Left), ("ms", Align::Right)], &rows);
        assert_eq!(
            text,
            "| runtime  |   ms |\n\
             | -------- | ---: |\n\
             | boxr     | 1.23 |\n\
             | runc run | 31.0 |\n\
             | short    |      |\n"
        );
    }

    #[test]
    fn medians() {
        let ms = |v: &[u64]| v.iter().map(|&m| Duration::from_millis(m)).collect::<Vec<_>>();
        assert_eq!(median(&ms(&[5, 1, 3])), Some(Duration::from_millis(3)));
        assert_eq!(median(&ms(&[4, 1, 3, 2])), Some(Duration::from_micros(2500)));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn number_formats() {
        assert_eq!(ms(Duration::from_micros(840)), "0.84");
        assert_eq!(ms(Duration::from_micros(12_345)), "12.3");
        assert_eq!(ms(Duration::from_micros(153_400)), "153");
        assert_eq!(ratio(Duration::from_millis(3), Duration::from_millis(9)), "0.33×");
        assert_eq!(ratio(Duration::from_millis(30), Duration::from_millis(2)), "15×");
        assert_eq!(ratio(Duration::from_millis(3), Duration::ZERO), "–");
        assert_eq!(size(8_392), "8.4 KB");
        assert_eq!(size(8_752_456), "8.8 MB");
    }
}
