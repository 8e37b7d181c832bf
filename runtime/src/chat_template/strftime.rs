//! `strftime_now(format)` for templates: Python's `datetime.now().strftime` over a clock that a
//! caller may fix (`kiln template --now`), so renders are reproducible.
use std::fmt::Write;

/// A naive local date and time, as Python's `datetime` holds it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DateTime {
    pub year: i64,
    pub month: u32, // 1..=12
    pub day: u32,   // 1..=31
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

const MONTHS: [&str; 12] = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
const WEEKDAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

impl DateTime {
    /// `2026-01-15T09:30:00`, `2026-01-15 09:30` or `2026-01-15`.
    pub fn parse(s: &str) -> Option<DateTime> {
        let (date, time) = s.split_once(['T', ' ']).unwrap_or((s, "00:00:00"));
        let d: Vec<&str> = date.split('-').collect();
        let t: Vec<&str> = time.split(':').collect();
        if d.len() != 3 || !(2..=3).contains(&t.len()) {
            return None;
        }
        let dt = DateTime {
            year: d[0].parse().ok()?,
            month: d[1].parse().ok()?,
            day: d[2].parse().ok()?,
            hour: t[0].parse().ok()?,
            minute: t[1].parse().ok()?,
            second: t.get(2).map_or(Some(0), |s| s.split('.').next()?.parse().ok())?,
        };
        let valid = (1..=12).contains(&dt.month) && dt.day >= 1 && dt.day <= days_in_month(dt.year, dt.month) && dt.hour < 24 && dt.minute < 60 && dt.second < 60;
        valid.then_some(dt)
    }

    /// The machine's local time now, as Python's `datetime.now()`.
    pub fn now() -> DateTime {
        let t = unsafe { libc::time(std::ptr::null_mut()) };
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        unsafe { libc::localtime_r(&t, &mut tm) };
        DateTime {
            year: tm.tm_year as i64 + 1900,
            month: tm.tm_mon as u32 + 1,
            day: tm.tm_mday as u32,
            hour: tm.tm_hour as u32,
            minute: tm.tm_min as u32,
            second: tm.tm_sec as u32,
        }
    }

    /// Days since 1970-01-01 (Howard Hinnant's days_from_civil).
    fn days(&self) -> i64 {
        let y = self.year - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = self.month as i64;
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + self.day as i64 - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    fn weekday(&self) -> usize {
        (self.days() + 3).rem_euclid(7) as usize // 1970-01-01 was a Thursday
    }

    fn day_of_year(&self) -> u32 {
        (1..self.month).map(|m| days_in_month(self.year, m)).sum::<u32>() + self.day
    }

    /// Python's `strftime` for the C-locale directives.
    pub fn strftime(&self, fmt: &str) -> String {
        let mut out = String::new();
        let mut chars = fmt.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let hour12 = if self.hour.is_multiple_of(12) { 12 } else { self.hour % 12 };
            let _ = match chars.next() {
                Some('Y') => write!(out, "{}", self.year),
                Some('y') => write!(out, "{:02}", self.year.rem_euclid(100)),
                Some('m') => write!(out, "{:02}", self.month),
                Some('d') => write!(out, "{:02}", self.day),
                Some('e') => write!(out, "{:2}", self.day),
                Some('-') => match chars.next() {
                    Some('d') => write!(out, "{}", self.day),
                    Some('m') => write!(out, "{}", self.month),
                    Some('H') => write!(out, "{}", self.hour),
                    Some('I') => write!(out, "{hour12}"),
                    Some(o) => write!(out, "%-{o}"),
                    None => write!(out, "%-"),
                },
                Some('B') => write!(out, "{}", MONTHS[self.month as usize - 1]),
                Some('b') | Some('h') => write!(out, "{}", &MONTHS[self.month as usize - 1][..3]),
                Some('A') => write!(out, "{}", WEEKDAYS[self.weekday()]),
                Some('a') => write!(out, "{}", &WEEKDAYS[self.weekday()][..3]),
                Some('w') => write!(out, "{}", (self.weekday() + 1) % 7),
                Some('u') => write!(out, "{}", self.weekday() + 1),
                Some('j') => write!(out, "{:03}", self.day_of_year()),
                Some('H') => write!(out, "{:02}", self.hour),
                Some('I') => write!(out, "{hour12:02}"),
                Some('M') => write!(out, "{:02}", self.minute),
                Some('S') => write!(out, "{:02}", self.second),
                Some('p') => write!(out, "{}", if self.hour < 12 { "AM" } else { "PM" }),
                Some('F') => write!(out, "{}-{:02}-{:02}", self.year, self.month, self.day),
                Some('T') => write!(out, "{:02}:{:02}:{:02}", self.hour, self.minute, self.second),
                Some('%') => write!(out, "%"),
                Some(o) => write!(out, "%{o}"),
                None => write!(out, "%"),
            };
        }
        out
    }
}

fn days_in_month(year: i64, month: u32) -> u32 {
    let leap = year.rem_euclid(4) == 0 && (year.rem_euclid(100) != 0 || year.rem_euclid(400) == 0);
    [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month as usize - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_python() {
        let t = DateTime::parse("2026-01-15T09:30:00").unwrap();
        assert_eq!(t.strftime("%d %b %Y, %A %H:%M:%S %p %j %-d/%-m %%"), "15 Jan 2026, Thursday 09:30:00 AM 015 15/1 %");
        assert_eq!(DateTime::parse("2024-02-29").unwrap().strftime("%B %e, %a"), "February 29, Thu");
        assert!(DateTime::parse("2025-02-29").is_none());
        assert!(DateTime::parse("yesterday").is_none());
    }
}
