//! A run's precision target and time budget as a user writes them
//! (`--target 2%`, `--max-time 8m`, or the profile's `target` and
//! `max_time`), and the rounds a group gets from them.

/// A share written as a percentage (`2%`, `0.5%`) or a fraction (`0.02`),
/// between 0 and 1 exclusive.
pub fn parse_share(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (num, scale) = match t.strip_suffix('%') {
        Some(p) => (p.trim(), 100.0),
        None => (t, 1.0),
    };
    let v: f64 = num.parse().map_err(|_| {
        format!("'{s}': expected a percentage such as 2% (or a share such as 0.02)")
    })?;
    let v = v / scale;
    if !(v > 0.0 && v < 1.0) {
        return Err(format!("'{s}': expected a share above 0% and below 100%"));
    }
    Ok(v)
}

/// A duration written with a unit: `90s`, `8m`, `1.5h` (seconds where no
/// unit is given).
pub fn parse_duration(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("'{s}': expected a duration such as 90s, 8m or 1h")),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("'{s}': expected a duration such as 90s, 8m or 1h"))?;
    if !(v > 0.0 && v.is_finite()) {
        return Err(format!("'{s}': expected a duration above zero"));
    }
    Ok(v * scale)
}

/// A share for people: `2%`, `0.5%`.
pub fn percent(share: f64) -> String {
    let p = share * 100.0;
    if (p - p.round()).abs() < 1e-9 {
        format!("{p:.0}%")
    } else {
        format!("{p:.1}%")
    }
}

/// The rounds the pairs of a group need for a 95% half-width of `target`
/// when one pair's log ratio varies by `sd` (the normal approximation,
/// n = (1.96 sd / target)^2, as pyperf sizes its runs).
pub fn rounds_for(target: f64, sd: f64) -> usize {
    if target <= 0.0 {
        return usize::MAX;
    }
    let half = (1.0 + target).ln();
    ((1.96 * sd / half).powi(2)).ceil() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares() {
        assert_eq!(parse_share("2%"), Ok(0.02));
        assert_eq!(parse_share(" 0.5 % "), Ok(0.005));
        assert_eq!(parse_share("0.02"), Ok(0.02));
        for bad in ["0%", "100%", "2", "-1%", "two", "", "%"] {
            assert!(parse_share(bad).is_err(), "{bad}");
        }
        assert!(parse_share("x%")
            .unwrap_err()
            .contains("expected a percentage"));
        assert_eq!(percent(0.02), "2%");
        assert_eq!(percent(0.025), "2.5%");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(90.0));
        assert_eq!(parse_duration("8m"), Ok(480.0));
        assert_eq!(parse_duration("8min"), Ok(480.0));
        assert_eq!(parse_duration("1.5h"), Ok(5400.0));
        assert_eq!(parse_duration("30"), Ok(30.0));
        for bad in ["0s", "m", "8d", "-3m", "", "1e3s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rounds_for_a_target() {
        // sd 5% per pair, 2% target: (1.96 * 0.05 / ln 1.02)^2 = 24.5
        assert_eq!(rounds_for(0.02, 0.05), 25);
        assert_eq!(rounds_for(0.01, 0.05), 98);
        assert_eq!(rounds_for(0.02, 0.0), 0);
        assert_eq!(rounds_for(0.0, 0.05), usize::MAX);
    }
}
