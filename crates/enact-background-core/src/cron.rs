//! Cron expressions: parsing and next-tick computation in a time zone.
//!
//! # Syntax
//!
//! An expression has 5 fields (`min hour dom month dow`, seconds are 0),
//! 6 fields (`sec min hour dom month dow`) or 7 fields (`sec min hour dom
//! month dow year`), separated by runs of spaces or tabs; or it is one of the
//! macros `@yearly`/`@annually`, `@monthly`, `@weekly` (Sunday midnight),
//! `@daily`/`@midnight` and `@hourly` (case-insensitive).
//!
//! | field        | values                 | also                         |
//! |--------------|------------------------|------------------------------|
//! | second       | 0-59                   |                              |
//! | minute       | 0-59                   |                              |
//! | hour         | 0-23                   |                              |
//! | day-of-month | 1-31                   | `?`, `L` (last day of month) |
//! | month        | 1-12, `JAN`-`DEC`      |                              |
//! | day-of-week  | 0-7 (0, 7 = Sunday), `SUN`-`SAT` | `?`, `MON#2` / `1#2` (second Monday), `5L` / `FRIL` (last Friday) |
//! | year         | 1970-2199              |                              |
//!
//! Every field takes `*`, a value, a range `a-b`, a step `*/n`, `a-b/n` or
//! `a/n` (from `a` to the field's maximum), or a comma list of these. Names
//! are case-insensitive.
//!
//! Day-of-week counts 0-7 like any other field, and 0 and 7 both name
//! Sunday: `1/2` runs 1, 3, 5, 7 and so is `1-7/2`, Monday, Wednesday, Friday
//! and Sunday; `0/2` and `*/2` run 0, 2, 4, 6, Sunday, Tuesday, Thursday and
//! Saturday. A field is a set of days, so a Sunday named twice (`0,7`, `0-7`,
//! `0/1`) still fires once.
//!
//! Day-of-month and day-of-week combine as in Vixie cron: when both are
//! restricted, a day matches if *either* matches (`0 0 13 * FRI` fires on
//! every 13th and on every Friday); when one of them is unrestricted, both
//! must match, so the unrestricted one simply matches every day. A field is
//! unrestricted when it is `*` or `?`, also with a step: like Vixie, which
//! looks at the leading `*`, `0 0 */2 * FRI` means odd-numbered Fridays.
//!
//! # Time zones: the contract
//!
//! A cron names wall-clock times, and each matching wall-clock time fires
//! once. [`CronSchedule::next_after`] searches the first matching local
//! wall-clock time strictly after the local wall time of `after` (ticks are
//! whole seconds; the sub-second part of `after` is ignored, and a tick equal
//! to `after` is never returned), then maps it to an instant:
//!
//! - **Normal time** maps to its one instant.
//! - **Ambiguous time** (a fall-back overlap, the wall clock shows it twice)
//!   fires at the *earlier* instant only. If that instant is not after
//!   `after` (because `after` already lies in the repeated hour), the wall time
//!   has already had its tick and the search moves on to later wall times.
//! - **Nonexistent time** (a spring-forward gap) fires at the instant the
//!   wall time would have had with the offset in force before the transition
//!   (02:30 in a 02:00→03:00 gap fires at 03:30 new time), or at the first
//!   real matching wall time after the gap if that comes earlier: in a gap
//!   that is not a whole hour on the hour, `10,35 2 * * *` in
//!   `Australia/Lord_Howe` (02:00→02:30) fires at 02:35, not at 02:40 (02:10
//!   moved), and `* 3 * * *` in `Pacific/Chatham` (02:45→03:45) fires at
//!   03:45, 03:46, …, 03:59. The next search starts from the wall time of
//!   the fired instant, so all matching times of one gap share one tick (an
//!   every-minute cron fires once at 03:00 for the whole gap rather than
//!   sixty times at or after it) and no real matching wall time is skipped.
//!
//! UTC and fixed-offset zones have neither gaps nor overlaps. The returned
//! instants of successive calls strictly increase and no wall-clock time fires
//! twice. A consequence: per-second and per-minute crons do not tick during
//! the repeated hour of a fall-back, because the wall clock already showed
//! those times; for elapsed-time periodicity use `intervalSeconds`.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use enact_background_core::cron::{parse_timezone, CronSchedule};
//!
//! let cron = CronSchedule::parse("0 9 * * MON-FRI").unwrap();
//! let berlin = parse_timezone("Europe/Berlin").unwrap();
//! let after = Utc.with_ymd_and_hms(2026, 1, 2, 12, 0, 0).unwrap(); // a Friday
//! let next = cron.next_after(after, berlin).unwrap();
//! assert_eq!(next, Utc.with_ymd_and_hms(2026, 1, 5, 8, 0, 0).unwrap()); // Monday 09:00 CET
//! assert_eq!(CronSchedule::parse("61 * * * *").unwrap_err(), "minute field: 61 is out of range 0-59");
//! ```

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Offset, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

const MIN_YEAR: i32 = 1970;
const MAX_YEAR: i32 = 2199;

/// A parsed cron expression.
#[derive(Clone, Debug, PartialEq)]
pub struct CronSchedule {
    seconds: Bits,
    minutes: Bits,
    hours: Bits,
    days_of_month: Bits,
    /// `L` in day-of-month.
    last_day_of_month: bool,
    months: Bits,
    /// Weekdays 0 (Sunday) to 6.
    days_of_week: Bits,
    /// `weekday * 8 + n` for "the n-th weekday of the month" (`MON#2`).
    nth_weekdays: Bits,
    /// Weekdays for "the last weekday of the month" (`FRIL`).
    last_weekdays: Bits,
    /// `year - MIN_YEAR`.
    years: Bits,
    dom_restricted: bool,
    dow_restricted: bool,
}

impl CronSchedule {
    /// Parses 5 fields (min hour dom month dow; seconds = 0), 6 fields (sec min hour dom month dow)
    /// or 7 fields (sec min hour dom month dow year), or a macro.
    ///
    /// Errors are readable sentences without a field-of-the-request prefix, such as
    /// `expected 5 to 7 fields, got 3` or `day-of-week field: unknown name "FUN"`.
    pub fn parse(expr: &str) -> Result<CronSchedule, String> {
        let fields: Vec<&str> = expr.split_whitespace().collect();
        match fields.as_slice() {
            [] => Err("empty expression".into()),
            [name] if name.starts_with('@') => {
                let expanded = match name.to_ascii_lowercase().as_str() {
                    "@yearly" | "@annually" => "0 0 0 1 1 *",
                    "@monthly" => "0 0 0 1 * *",
                    "@weekly" => "0 0 0 * * 0",
                    "@daily" | "@midnight" => "0 0 0 * * *",
                    "@hourly" => "0 0 * * * *",
                    _ => return Err(format!("unknown macro {name:?}")),
                };
                CronSchedule::parse(expanded)
            }
            [name, ..] if name.starts_with('@') => {
                Err(format!("macro {name:?} must stand alone, got {} fields", fields.len()))
            }
            [min, hour, dom, month, dow] => Self::from_fields("0", min, hour, dom, month, dow, "*"),
            [sec, min, hour, dom, month, dow] => Self::from_fields(sec, min, hour, dom, month, dow, "*"),
            [sec, min, hour, dom, month, dow, year] => Self::from_fields(sec, min, hour, dom, month, dow, year),
            _ => Err(format!("expected 5 to 7 fields, got {}", fields.len())),
        }
    }

    fn from_fields(
        sec: &str,
        min: &str,
        hour: &str,
        dom: &str,
        month: &str,
        dow: &str,
        year: &str,
    ) -> Result<CronSchedule, String> {
        let seconds = parse_field(sec, &SECOND)?;
        let minutes = parse_field(min, &MINUTE)?;
        let hours = parse_field(hour, &HOUR)?;
        let dom = parse_field(dom, &DAY_OF_MONTH)?;
        let months = parse_field(month, &MONTH)?;
        let mut dow = parse_field(dow, &DAY_OF_WEEK)?;
        let years = parse_field(year, &YEAR)?;
        if dow.values.contains(7) {
            dow.values.remove(7);
            dow.values.insert(0);
        }
        Ok(CronSchedule {
            seconds: seconds.values,
            minutes: minutes.values,
            hours: hours.values,
            days_of_month: dom.values,
            last_day_of_month: dom.last,
            months: months.values,
            days_of_week: dow.values,
            nth_weekdays: dow.nth,
            last_weekdays: dow.last_weekdays,
            years: years.values,
            dom_restricted: !dom.star,
            dow_restricted: !dow.star,
        })
    }

    /// The first tick strictly after `after`, in time zone `tz`; None when no tick exists (e.g. year range exhausted).
    ///
    /// See the [module documentation](crate::cron) for how gaps and overlaps are handled.
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        // Ticks have local years MIN_YEAR..=MAX_YEAR and offsets stay within ±26 h, so every tick
        // lies strictly between these two instants. Clamping `after` to them changes no answer and
        // keeps its wall time inside chrono's range (near DateTime::MIN_UTC/MAX_UTC it overflows).
        let floor = midnight(MIN_YEAR, 1, 1)?.and_utc() - TimeDelta::days(2);
        let ceiling = midnight(MAX_YEAR + 1, 1, 1)?.and_utc() + TimeDelta::days(2);
        if after >= ceiling {
            return None;
        }
        let mut cursor = after.max(floor).with_timezone(&tz).naive_local();
        loop {
            let local = self.next_local(cursor)?;
            let instant = match tz.from_local_datetime(&local) {
                chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
                chrono::LocalResult::Ambiguous(earlier, _) => earlier.with_timezone(&Utc),
                chrono::LocalResult::None => {
                    let (moved, end) = gap_instant(local, tz);
                    // When the gap is not a whole hour on the hour, a real matching wall time just
                    // after the gap can come before the moved instant; it fires first, and the gap's
                    // times share its tick. Otherwise searching on from the moved instant's wall time
                    // would skip it.
                    let end_wall = end.with_timezone(&tz).naive_local();
                    let real = end_wall
                        .checked_sub_signed(TimeDelta::seconds(1))
                        .and_then(|wall| self.next_local(wall))
                        .and_then(|wall| tz.from_local_datetime(&wall).earliest())
                        .map(|t| t.with_timezone(&Utc));
                    match real {
                        Some(real) if real < moved => real,
                        _ => moved,
                    }
                }
            };
            if instant > after {
                return Some(instant);
            }
            // An ambiguous wall time whose earlier instant has passed: it already had its tick.
            cursor = local;
        }
    }

    /// The first matching wall-clock time strictly after `after` (whole seconds), or None past `MAX_YEAR`.
    ///
    /// Field-wise carry: each step either accepts the current field or moves to the start of the
    /// next candidate for it (resetting every lower field), so the loop runs a bounded number of
    /// times per year (at most about one pass per day) and stops after `MAX_YEAR`.
    fn next_local(&self, after: NaiveDateTime) -> Option<NaiveDateTime> {
        let mut t = after.with_nanosecond(0)?.checked_add_signed(TimeDelta::seconds(1))?;
        loop {
            let year = t.year();
            if year > MAX_YEAR {
                return None;
            }
            if year < MIN_YEAR || !self.years.contains((year - MIN_YEAR) as u32) {
                let from = if year < MIN_YEAR { 0 } else { (year - MIN_YEAR + 1) as u32 };
                let next = self.years.first_from(from, (MAX_YEAR - MIN_YEAR) as u32)?;
                t = midnight(MIN_YEAR + next as i32, 1, 1)?;
                continue;
            }
            if !self.months.contains(t.month()) {
                t = match self.months.first_from(t.month() + 1, 12) {
                    Some(month) => midnight(year, month, 1)?,
                    None => midnight(year + 1, 1, 1)?,
                };
                continue;
            }
            let date = t.date();
            if !self.day_matches(date) {
                t = date.succ_opt()?.and_hms_opt(0, 0, 0)?;
                continue;
            }
            if !self.hours.contains(t.hour()) {
                t = match self.hours.first_from(t.hour() + 1, 23) {
                    Some(hour) => date.and_hms_opt(hour, 0, 0)?,
                    None => date.succ_opt()?.and_hms_opt(0, 0, 0)?,
                };
                continue;
            }
            if !self.minutes.contains(t.minute()) {
                t = match self.minutes.first_from(t.minute() + 1, 59) {
                    Some(minute) => date.and_hms_opt(t.hour(), minute, 0)?,
                    None => hour_after(t)?,
                };
                continue;
            }
            if !self.seconds.contains(t.second()) {
                t = match self.seconds.first_from(t.second() + 1, 59) {
                    Some(second) => date.and_hms_opt(t.hour(), t.minute(), second)?,
                    None => minute_after(t)?,
                };
                continue;
            }
            return Some(t);
        }
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        let day = date.day();
        let month_len = days_in_month(date.year(), date.month());
        let dom = self.days_of_month.contains(day) || (self.last_day_of_month && day == month_len);
        let weekday = date.weekday().num_days_from_sunday();
        let dow = self.days_of_week.contains(weekday)
            || self.nth_weekdays.contains(weekday * 8 + (day - 1) / 7 + 1)
            || (self.last_weekdays.contains(weekday) && day + 7 > month_len);
        if self.dom_restricted && self.dow_restricted {
            dom || dow
        } else {
            dom && dow
        }
    }
}

/// Parses an IANA time zone name ("Europe/Berlin", "UTC"); error message says it is not a known IANA time zone.
pub fn parse_timezone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>()
        .map_err(|_| format!("{name:?} is not a known IANA time zone (such as \"Europe/Berlin\" or \"UTC\")"))
}

/// For a nonexistent (spring-forward gap) wall time `local`: the instant it would have had with the
/// offset in force before the transition, and the transition instant (the gap's end).
fn gap_instant(local: NaiveDateTime, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    // Offsets stay within ±26 h, so the wall time at `lo` is before `local` and at `hi` after it.
    // Bisect on whole seconds (transitions fall on whole seconds) for the last instant whose wall
    // time is still before `local`: the transition is the second right after it, and the offset
    // at `lo` is the one before the gap.
    let as_utc = local.and_utc().timestamp();
    let wall_at = |secs: i64| DateTime::from_timestamp(secs, 0).map(|t| t.with_timezone(&tz).naive_local());
    let (mut lo, mut hi) = (as_utc - 30 * 3600, as_utc + 30 * 3600);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if wall_at(mid).is_some_and(|wall| wall < local) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let instant = |secs: i64| DateTime::from_timestamp(secs, 0).unwrap_or(DateTime::<Utc>::MAX_UTC);
    let before = tz.offset_from_utc_datetime(&instant(lo).naive_utc()).fix().local_minus_utc();
    ((local - TimeDelta::seconds(before.into())).and_utc(), instant(hi))
}

fn midnight(year: i32, month: u32, day: u32) -> Option<NaiveDateTime> {
    NaiveDate::from_ymd_opt(year, month, day)?.and_hms_opt(0, 0, 0)
}

fn hour_after(t: NaiveDateTime) -> Option<NaiveDateTime> {
    t.with_minute(0)?.with_second(0)?.checked_add_signed(TimeDelta::hours(1))
}

fn minute_after(t: NaiveDateTime) -> Option<NaiveDateTime> {
    t.with_second(0)?.checked_add_signed(TimeDelta::minutes(1))
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if NaiveDate::from_ymd_opt(year, 2, 29).is_some() => 29,
        2 => 28,
        _ => 31,
    }
}

/// A set of small numbers (0-255).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Bits([u64; 4]);

impl Bits {
    fn insert(&mut self, i: u32) {
        self.0[(i / 64) as usize] |= 1 << (i % 64);
    }

    fn remove(&mut self, i: u32) {
        self.0[(i / 64) as usize] &= !(1 << (i % 64));
    }

    fn contains(&self, i: u32) -> bool {
        i < 256 && (self.0[(i / 64) as usize] >> (i % 64)) & 1 == 1
    }

    /// The smallest member in `from..=to`.
    fn first_from(&self, from: u32, to: u32) -> Option<u32> {
        (from..=to).find(|&i| self.contains(i))
    }
}

/// How one field is written and stored.
struct FieldSpec {
    name: &'static str,
    min: u32,
    /// The largest value that may be written; `*` and `a/n` run to it.
    max: u32,
    /// Names for `min`, `min + 1`, ...
    names: &'static [&'static str],
    /// Subtracted before storing (years).
    base: u32,
}

const SECOND: FieldSpec = FieldSpec { name: "second", min: 0, max: 59, names: &[], base: 0 };
const MINUTE: FieldSpec = FieldSpec { name: "minute", min: 0, max: 59, names: &[], base: 0 };
const HOUR: FieldSpec = FieldSpec { name: "hour", min: 0, max: 23, names: &[], base: 0 };
const DAY_OF_MONTH: FieldSpec = FieldSpec { name: "day-of-month", min: 1, max: 31, names: &[], base: 0 };
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"],
    base: 0,
};
const DAY_OF_WEEK: FieldSpec = FieldSpec {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
    base: 0,
};
const YEAR: FieldSpec = FieldSpec {
    name: "year",
    min: MIN_YEAR as u32,
    max: MAX_YEAR as u32,
    names: &[],
    base: MIN_YEAR as u32,
};

#[derive(Default)]
struct Field {
    values: Bits,
    /// Whole field is `*` or `?` (possibly with a step): unrestricted in the Vixie sense.
    star: bool,
    /// `L` (day-of-month).
    last: bool,
    /// `X#n` (day-of-week).
    nth: Bits,
    /// `XL` (day-of-week).
    last_weekdays: Bits,
}

fn parse_field(text: &str, spec: &FieldSpec) -> Result<Field, String> {
    let mut field = Field::default();
    for item in text.split(',') {
        parse_item(item, text, spec, &mut field).map_err(|e| format!("{} field: {e}", spec.name))?;
    }
    field.star = !text.contains(',') && (text.starts_with('*') || text.starts_with('?'));
    Ok(field)
}

fn parse_item(item: &str, text: &str, spec: &FieldSpec, field: &mut Field) -> Result<(), String> {
    if item.is_empty() {
        return Err(format!("empty item in list {text:?}"));
    }
    let is_dom = spec.name == DAY_OF_MONTH.name;
    let is_dow = spec.name == DAY_OF_WEEK.name;
    let (base, step) = match item.split_once('/') {
        Some((base, step)) => (base, Some(parse_step(step)?)),
        None => (item, None),
    };
    let no_step = |what: &str| match step {
        Some(_) => Err(format!("{what} cannot take a step, in {item:?}")),
        None => Ok(()),
    };

    let upper = base.to_ascii_uppercase();
    if is_dom && upper == "L" {
        no_step("L")?;
        field.last = true;
        return Ok(());
    }
    if is_dom && upper.ends_with('W') {
        return Err(format!("W (nearest weekday) is not supported, in {item:?}"));
    }
    if is_dow {
        if let Some((day, n)) = base.split_once('#') {
            no_step("#")?;
            let weekday = parse_value(day, item, spec)? % 7;
            match n.parse::<u32>() {
                Ok(n) if (1..=5).contains(&n) => field.nth.insert(weekday * 8 + n),
                _ => return Err(format!("in {item:?} the occurrence after # must be 1-5")),
            }
            return Ok(());
        }
        if upper == "L" {
            return Err("L needs a day before it, such as 5L or FRIL".into());
        }
        if let Some(day) = upper.strip_suffix('L') {
            no_step("L")?;
            let weekday = parse_value(&base[..day.len()], item, spec)? % 7;
            field.last_weekdays.insert(weekday);
            return Ok(());
        }
    }

    let (lo, hi) = if base == "*" || base == "?" {
        if base == "?" && !(is_dom || is_dow) {
            return Err("? is only allowed in day-of-month and day-of-week".into());
        }
        (spec.min, spec.max)
    } else if let Some((a, b)) = base.split_once('-') {
        let (lo, hi) = (parse_value(a, item, spec)?, parse_value(b, item, spec)?);
        if lo > hi {
            return Err(format!("range {a}-{b} is reversed"));
        }
        (lo, hi)
    } else {
        let value = parse_value(base, item, spec)?;
        match step {
            Some(_) => (value, spec.max),
            None => (value, value),
        }
    };
    let step = step.unwrap_or(1) as usize;
    for value in (lo..=hi).step_by(step) {
        field.values.insert(value - spec.base);
    }
    Ok(())
}

fn parse_step(text: &str) -> Result<u32, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("step {text:?} is not a number"));
    }
    match text.parse::<u32>() {
        Ok(0) => Err("step must be at least 1".into()),
        Ok(step) => Ok(step),
        Err(_) => Err(format!("step {text} is too large")),
    }
}

fn parse_value(text: &str, item: &str, spec: &FieldSpec) -> Result<u32, String> {
    if text.is_empty() {
        return Err(format!("missing value in {item:?}"));
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<u32>() {
            Ok(v) if (spec.min..=spec.max).contains(&v) => Ok(v),
            Ok(v) => Err(format!("{v} is out of range {}-{}", spec.min, spec.max)),
            Err(_) => Err(format!("{text} is out of range {}-{}", spec.min, spec.max)),
        };
    }
    if spec.names.is_empty() {
        return Err(format!("{text:?} is not a number"));
    }
    let upper = text.to_ascii_uppercase();
    match spec.names.iter().position(|n| *n == upper) {
        Some(i) => Ok(spec.min + i as u32),
        None if text.bytes().all(|b| b.is_ascii_alphabetic()) => Err(format!("unknown name {text:?}")),
        None => Err(format!("{text:?} is not a number or name")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_first_from_and_remove() {
        let mut b = Bits::default();
        for i in [3, 64, 200] {
            b.insert(i);
        }
        assert_eq!(b.first_from(0, 255), Some(3));
        assert_eq!(b.first_from(4, 255), Some(64));
        assert_eq!(b.first_from(65, 199), None);
        b.remove(64);
        assert_eq!(b.first_from(4, 255), Some(200));
    }

    #[test]
    fn dow_seven_is_sunday_and_steps_count_to_seven() {
        let a = CronSchedule::parse("0 0 * * 7").unwrap();
        let b = CronSchedule::parse("0 0 * * 0").unwrap();
        assert_eq!(a, b);
        let star = CronSchedule::parse("0 0 * * */2").unwrap();
        let list = CronSchedule::parse("0 0 * * 0,2,4,6").unwrap();
        assert_eq!(star.days_of_week, list.days_of_week);
        let open = CronSchedule::parse("0 0 * * 1/2").unwrap();
        let list = CronSchedule::parse("0 0 * * 0,1,3,5").unwrap();
        assert_eq!(open.days_of_week, list.days_of_week);
    }

    #[test]
    fn gap_instant_uses_offset_before_the_transition() {
        let ny: Tz = "America/New_York".parse().unwrap();
        let local = NaiveDate::from_ymd_opt(2026, 3, 8).unwrap().and_hms_opt(2, 30, 0).unwrap();
        let (moved, end) = gap_instant(local, ny);
        assert_eq!(moved, Utc.with_ymd_and_hms(2026, 3, 8, 7, 30, 0).unwrap());
        assert_eq!(end, Utc.with_ymd_and_hms(2026, 3, 8, 7, 0, 0).unwrap());
    }
}
