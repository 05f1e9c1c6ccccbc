//! Cron: every syntax form and error message, next-tick arithmetic, and the
//! time-zone contract (a gap's times fire once, shifted or with the first real
//! match after the gap; overlaps fire once, earlier; no real match is skipped).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use enact_background_core::cron::{parse_timezone, CronSchedule};

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

fn cron(expr: &str) -> CronSchedule {
    CronSchedule::parse(expr).unwrap_or_else(|e| panic!("{expr:?}: {e}"))
}

fn err(expr: &str) -> String {
    match CronSchedule::parse(expr) {
        Ok(c) => panic!("{expr:?} parsed as {c:?}"),
        Err(e) => e,
    }
}

fn tz(name: &str) -> Tz {
    parse_timezone(name).unwrap()
}

/// `n` successive ticks after `after`.
fn ticks(expr: &str, after: DateTime<Utc>, zone: Tz, n: usize) -> Vec<DateTime<Utc>> {
    let schedule = cron(expr);
    let mut out = Vec::with_capacity(n);
    let mut at = after;
    for _ in 0..n {
        at = schedule.next_after(at, zone).unwrap_or_else(|| panic!("{expr:?}: no tick after {at}"));
        out.push(at);
    }
    out
}

fn next(expr: &str, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    cron(expr).next_after(after, Tz::UTC)
}

// ---- parsing ----

#[test]
fn cron_parse_accepts_every_syntax_form() {
    for expr in [
        "* * * * *",
        "* * * * * *",
        "* * * * * * *",
        "0 0 ? * *",
        "0 0 * * ?",
        "5 4 3 2 1",
        "0-30 * * * *",
        "*/15 * * * *",
        "10-50/10 * * * *",
        "5/20 * * * *",
        "1,2,3,10-20/5,*/30 * * * *",
        "0 0 1 jan,Feb,MAR *",
        "0 0 * JAN-JUN/2 *",
        "0 0 * * sun-sat",
        "0 0 * * Mon,wed,FRI",
        "0 0 * * 0-7",
        "0 0 * * 7",
        "0 0 L * *",
        "0 0 1,15,L * *",
        "0 0 * * MON#2",
        "0 0 * * 1#2,5#5",
        "0 0 * * 5L",
        "0 0 * * FRIL",
        "0 0 0 1 1 * 2030",
        "0 0 0 1 1 * 1970-2199/10",
        "0 0 0 1 1 * *",
        "59 59 23 31 12 6 2199",
        "@yearly",
    ] {
        assert!(CronSchedule::parse(expr).is_ok(), "{expr:?}: {:?}", CronSchedule::parse(expr));
    }
}

#[test]
fn cron_macros_expand_and_ignore_case() {
    let cases = [
        ("@yearly", "0 0 0 1 1 *"),
        ("@annually", "0 0 0 1 1 *"),
        ("@monthly", "0 0 0 1 * *"),
        ("@weekly", "0 0 0 * * SUN"),
        ("@daily", "0 0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@HOURLY", "0 0 * * * *"),
        ("  @Daily\t", "0 0 * * *"),
    ];
    for (name, expanded) in cases {
        assert_eq!(cron(name), cron(expanded), "{name}");
    }
}

#[test]
fn cron_whitespace_runs_and_trimming() {
    assert_eq!(cron(" \t 0\t\t9  * *   MON-FRI \t"), cron("0 9 * * 1-5"));
}

#[test]
fn cron_equivalent_spellings_parse_equal() {
    assert_eq!(cron("*/15 9-17 * * MON-FRI"), cron("0 */15 9-17 * * MON-FRI"));
    assert_eq!(cron("0 0 * * 7"), cron("0 0 * * SUN"));
    assert_eq!(cron("0 0 * * 1#2"), cron("0 0 * * mon#2"));
    assert_eq!(cron("0 0 1 jan *"), cron("0 0 1 1 *"));
    assert_eq!(cron("0 0 ? * *"), cron("0 0 * * *"));
    assert_eq!(cron("0 5/20 * * * *"), cron("0 5,25,45 * * * *"));
    assert_ne!(cron("0 0 * * 1"), cron("0 0 * * 2"));
}

#[test]
fn cron_error_messages_are_specific() {
    let cases: &[(&str, &str)] = &[
        ("", "empty expression"),
        ("  \t ", "empty expression"),
        ("* * *", "expected 5 to 7 fields, got 3"),
        ("* * * * * * * *", "expected 5 to 7 fields, got 8"),
        ("61 * * * *", "minute field: 61 is out of range 0-59"),
        ("60 * * * * *", "second field: 60 is out of range 0-59"),
        ("0 24 * * *", "hour field: 24 is out of range 0-23"),
        ("0 0 0 * *", "day-of-month field: 0 is out of range 1-31"),
        ("0 0 32 * *", "day-of-month field: 32 is out of range 1-31"),
        ("0 0 * 13 *", "month field: 13 is out of range 1-12"),
        ("0 0 * * 8", "day-of-week field: 8 is out of range 0-7"),
        ("0 0 0 1 1 * 1969", "year field: 1969 is out of range 1970-2199"),
        ("0 0 0 1 1 * 2200", "year field: 2200 is out of range 1970-2199"),
        ("99999999999 * * * *", "minute field: 99999999999 is out of range 0-59"),
        ("0 0 * * FUN", "day-of-week field: unknown name \"FUN\""),
        ("0 0 * JANUARY *", "month field: unknown name \"JANUARY\""),
        ("0 0 * * MON-FUN", "day-of-week field: unknown name \"FUN\""),
        ("abc * * * *", "minute field: \"abc\" is not a number"),
        ("0 0 * 1x *", "month field: \"1x\" is not a number or name"),
        ("@fortnightly", "unknown macro \"@fortnightly\""),
        ("@daily 5", "macro \"@daily\" must stand alone, got 2 fields"),
        ("*/0 * * * *", "minute field: step must be at least 1"),
        ("*/x * * * *", "minute field: step \"x\" is not a number"),
        ("*/ * * * *", "minute field: step \"\" is not a number"),
        ("10-5 * * * *", "minute field: range 10-5 is reversed"),
        ("0 0 * * FRI-MON", "day-of-week field: range FRI-MON is reversed"),
        ("1,,2 * * * *", "minute field: empty item in list \"1,,2\""),
        ("-5 * * * *", "minute field: missing value in \"-5\""),
        ("? * * * *", "minute field: ? is only allowed in day-of-month and day-of-week"),
        ("0 0 L/2 * *", "day-of-month field: L cannot take a step, in \"L/2\""),
        ("0 0 15W * *", "day-of-month field: W (nearest weekday) is not supported, in \"15W\""),
        ("0 0 * * MON#6", "day-of-week field: in \"MON#6\" the occurrence after # must be 1-5"),
        ("0 0 * * MON#0", "day-of-week field: in \"MON#0\" the occurrence after # must be 1-5"),
        ("0 0 * * MON#2/2", "day-of-week field: # cannot take a step, in \"MON#2/2\""),
        ("0 0 * * L", "day-of-week field: L needs a day before it, such as 5L or FRIL"),
        ("0 0 * * 9L", "day-of-week field: 9 is out of range 0-7"),
    ];
    for (expr, message) in cases {
        assert_eq!(err(expr), *message, "{expr:?}");
    }
}

#[test]
fn cron_parse_timezone_accepts_iana_names_only() {
    assert_eq!(parse_timezone("Europe/Berlin").unwrap(), Tz::Europe__Berlin);
    assert_eq!(parse_timezone("UTC").unwrap(), Tz::UTC);
    for bad in ["Mars/Olympus", "", "europe/berlin", "CEST+2"] {
        let e = parse_timezone(bad).unwrap_err();
        assert!(e.contains("not a known IANA time zone"), "{bad:?}: {e}");
        assert!(e.contains(&format!("{bad:?}")), "{bad:?}: {e}");
    }
}

// ---- next_after in UTC ----

#[test]
fn cron_every_second() {
    let t = ticks("* * * * * *", utc(2026, 5, 1, 12, 0, 0), Tz::UTC, 3);
    assert_eq!(t, [utc(2026, 5, 1, 12, 0, 1), utc(2026, 5, 1, 12, 0, 2), utc(2026, 5, 1, 12, 0, 3)]);
}

#[test]
fn cron_five_fields_tick_every_minute_at_second_zero() {
    let t = ticks("* * * * *", utc(2026, 5, 1, 12, 0, 30), Tz::UTC, 2);
    assert_eq!(t, [utc(2026, 5, 1, 12, 1, 0), utc(2026, 5, 1, 12, 2, 0)]);
}

#[test]
fn cron_steps_ranges_and_lists() {
    let t = ticks("*/15 * * * *", utc(2026, 5, 1, 12, 50, 0), Tz::UTC, 3);
    assert_eq!(t, [utc(2026, 5, 1, 13, 0, 0), utc(2026, 5, 1, 13, 15, 0), utc(2026, 5, 1, 13, 30, 0)]);

    let t = ticks("0 9-17/4 * * *", utc(2026, 5, 1, 0, 0, 0), Tz::UTC, 4);
    assert_eq!(t, [utc(2026, 5, 1, 9, 0, 0), utc(2026, 5, 1, 13, 0, 0), utc(2026, 5, 1, 17, 0, 0), utc(2026, 5, 2, 9, 0, 0)]);

    let t = ticks("50/5 0 * * *", utc(2026, 5, 1, 0, 0, 0), Tz::UTC, 3);
    assert_eq!(t, [utc(2026, 5, 1, 0, 50, 0), utc(2026, 5, 1, 0, 55, 0), utc(2026, 5, 2, 0, 50, 0)]);

    let t = ticks("0 6,12,18-19 * * *", utc(2026, 5, 1, 6, 0, 0), Tz::UTC, 4);
    assert_eq!(t, [utc(2026, 5, 1, 12, 0, 0), utc(2026, 5, 1, 18, 0, 0), utc(2026, 5, 1, 19, 0, 0), utc(2026, 5, 2, 6, 0, 0)]);
}

#[test]
fn cron_month_and_day_names() {
    // 2026-01-01 is a Thursday.
    let t = ticks("0 0 1 MAR,sep *", utc(2026, 1, 1, 0, 0, 0), Tz::UTC, 3);
    assert_eq!(t, [utc(2026, 3, 1, 0, 0, 0), utc(2026, 9, 1, 0, 0, 0), utc(2027, 3, 1, 0, 0, 0)]);

    let t = ticks("0 8 * * Mon-Wed", utc(2026, 1, 1, 0, 0, 0), Tz::UTC, 4);
    assert_eq!(t, [utc(2026, 1, 5, 8, 0, 0), utc(2026, 1, 6, 8, 0, 0), utc(2026, 1, 7, 8, 0, 0), utc(2026, 1, 12, 8, 0, 0)]);
}

#[test]
fn cron_day_of_week_seven_is_sunday() {
    let sundays = [utc(2026, 1, 4, 0, 0, 0), utc(2026, 1, 11, 0, 0, 0)];
    for expr in ["0 0 * * 7", "0 0 * * 0", "0 0 * * SUN", "@weekly"] {
        assert_eq!(ticks(expr, utc(2026, 1, 1, 0, 0, 0), Tz::UTC, 2), sundays, "{expr}");
    }
    // 5-7 is Friday, Saturday, Sunday.
    let t = ticks("0 0 * * 5-7", utc(2026, 1, 1, 0, 0, 0), Tz::UTC, 4);
    assert_eq!(t, [utc(2026, 1, 2, 0, 0, 0), utc(2026, 1, 3, 0, 0, 0), utc(2026, 1, 4, 0, 0, 0), utc(2026, 1, 9, 0, 0, 0)]);
}

#[test]
fn cron_day_of_week_steps_run_to_seven_which_is_sunday() {
    // As documented, a/n runs to the field's maximum, 7: 1/2 is 1, 3, 5, 7 like 1-7/2.
    assert_eq!(cron("0 0 * * 1/2"), cron("0 0 * * 1-7/2"));
    assert_eq!(cron("0 0 * * 1/2"), cron("0 0 * * MON,WED,FRI,SUN"));
    assert_eq!(cron("0 0 * * MON/2"), cron("0 0 * * 1/2"));
    assert_eq!(cron("0 0 * * 5/1"), cron("0 0 * * 5-7"));
    assert_eq!(cron("0 0 * * 7/2"), cron("0 0 * * SUN"));
    // 2026-01-01 is a Thursday: Fri 2, Sun 4, Mon 5, Wed 7, Fri 9, Sun 11.
    let t = ticks("0 0 * * 1/2", utc(2026, 1, 1, 0, 0, 0), Tz::UTC, 6);
    let days: Vec<u32> = t.iter().map(chrono::Datelike::day).collect();
    assert_eq!(days, [2, 4, 5, 7, 9, 11]);

    // 0/2 runs 0, 2, 4, 6: Sunday once a week (7 is not reached), like */2.
    assert_eq!(cron("0 0 * * 0/2"), cron("0 0 * * 0,2,4,6"));
    let t = ticks("0 0 * * 0/2", utc(2026, 1, 1, 0, 0, 0), Tz::UTC, 8);
    let days: Vec<u32> = t.iter().map(chrono::Datelike::day).collect();
    assert_eq!(days, [3, 4, 6, 8, 10, 11, 13, 15], "Sat, Sun, Tue, Thu, ...");
    // Sunday named twice (0 and 7) is still one day a week.
    let t = ticks("0 0 * * 0,7", utc(2026, 1, 1, 0, 0, 0), Tz::UTC, 3);
    assert_eq!(t, [utc(2026, 1, 4, 0, 0, 0), utc(2026, 1, 11, 0, 0, 0), utc(2026, 1, 18, 0, 0, 0)]);
    let daily = ticks("0 0 * * *", utc(2026, 1, 1, 0, 0, 0), Tz::UTC, 14);
    for expr in ["0 0 * * 0/1", "0 0 * * 0-7"] {
        assert_eq!(ticks(expr, utc(2026, 1, 1, 0, 0, 0), Tz::UTC, 14), daily, "{expr}");
    }
}

#[test]
fn cron_last_day_of_month() {
    let t = ticks("0 0 L * *", utc(2026, 1, 1, 0, 0, 0), Tz::UTC, 4);
    assert_eq!(t, [utc(2026, 1, 31, 0, 0, 0), utc(2026, 2, 28, 0, 0, 0), utc(2026, 3, 31, 0, 0, 0), utc(2026, 4, 30, 0, 0, 0)]);

    assert_eq!(next("0 0 L 2 *", utc(2028, 1, 1, 0, 0, 0)), Some(utc(2028, 2, 29, 0, 0, 0)), "leap year");
    assert_eq!(next("0 0 L 2 *", utc(2027, 1, 1, 0, 0, 0)), Some(utc(2027, 2, 28, 0, 0, 0)), "common year");
    assert_eq!(next("0 0 L 2 *", utc(2100, 1, 1, 0, 0, 0)), Some(utc(2100, 2, 28, 0, 0, 0)), "2100 is not leap");
    assert_eq!(next("0 0 L 2 *", utc(2000, 1, 1, 0, 0, 0)), Some(utc(2000, 2, 29, 0, 0, 0)), "2000 is leap");

    let t = ticks("0 0 15,L * *", utc(2026, 2, 1, 0, 0, 0), Tz::UTC, 3);
    assert_eq!(t, [utc(2026, 2, 15, 0, 0, 0), utc(2026, 2, 28, 0, 0, 0), utc(2026, 3, 15, 0, 0, 0)]);
}

#[test]
fn cron_nth_and_last_weekday_of_month() {
    // Second Mondays: 2026-01-12, 2026-02-09, 2026-03-09.
    let second_mondays = [utc(2026, 1, 12, 0, 0, 0), utc(2026, 2, 9, 0, 0, 0), utc(2026, 3, 9, 0, 0, 0)];
    assert_eq!(ticks("0 0 * * MON#2", utc(2026, 1, 1, 0, 0, 0), Tz::UTC, 3), second_mondays);
    assert_eq!(ticks("0 0 * * 1#2", utc(2026, 1, 1, 0, 0, 0), Tz::UTC, 3), second_mondays);

    // Last Fridays: 2026-01-30, 2026-02-27.
    let last_fridays = [utc(2026, 1, 30, 0, 0, 0), utc(2026, 2, 27, 0, 0, 0)];
    assert_eq!(ticks("0 0 * * FRIL", utc(2026, 1, 1, 0, 0, 0), Tz::UTC, 2), last_fridays);
    assert_eq!(ticks("0 0 * * 5L", utc(2026, 1, 1, 0, 0, 0), Tz::UTC, 2), last_fridays);

    // A fifth Friday exists only in some months: January and May 2026.
    let t = ticks("0 0 * * 5#5", utc(2026, 1, 1, 0, 0, 0), Tz::UTC, 2);
    assert_eq!(t, [utc(2026, 1, 30, 0, 0, 0), utc(2026, 5, 29, 0, 0, 0)]);
}

#[test]
fn cron_day_of_month_or_day_of_week_when_both_restricted() {
    // Fridays in January 2026: 2, 9, 16, 23, 30; the 13th is a Tuesday; 2026-02-13 is a Friday.
    let t = ticks("0 0 13 * FRI", utc(2026, 1, 1, 0, 0, 0), Tz::UTC, 9);
    let days: Vec<(u32, u32)> = t.iter().map(|d| (chrono::Datelike::month(d), chrono::Datelike::day(d))).collect();
    assert_eq!(days, [(1, 2), (1, 9), (1, 13), (1, 16), (1, 23), (1, 30), (2, 6), (2, 13), (2, 20)]);
}

#[test]
fn cron_day_of_month_and_day_of_week_when_one_is_unrestricted() {
    let thirteenths = [utc(2026, 1, 13, 0, 0, 0), utc(2026, 2, 13, 0, 0, 0)];
    assert_eq!(ticks("0 0 13 * *", utc(2026, 1, 1, 0, 0, 0), Tz::UTC, 2), thirteenths);
    assert_eq!(ticks("0 0 13 * ?", utc(2026, 1, 1, 0, 0, 0), Tz::UTC, 2), thirteenths);
    let fridays = [utc(2026, 1, 2, 0, 0, 0), utc(2026, 1, 9, 0, 0, 0)];
    assert_eq!(ticks("0 0 * * FRI", utc(2026, 1, 1, 0, 0, 0), Tz::UTC, 2), fridays);
    assert_eq!(ticks("0 0 ? * FRI", utc(2026, 1, 1, 0, 0, 0), Tz::UTC, 2), fridays);
    // As in Vixie cron, a stepped star still counts as unrestricted: odd days that are Fridays.
    let t = ticks("0 0 */2 * FRI", utc(2026, 1, 1, 0, 0, 0), Tz::UTC, 4);
    assert_eq!(t, [utc(2026, 1, 9, 0, 0, 0), utc(2026, 1, 23, 0, 0, 0), utc(2026, 2, 13, 0, 0, 0), utc(2026, 2, 27, 0, 0, 0)]);
}

#[test]
fn cron_year_field() {
    let c = cron("0 0 0 1 1 * 2030");
    let first = c.next_after(utc(2026, 6, 1, 0, 0, 0), Tz::UTC);
    assert_eq!(first, Some(utc(2030, 1, 1, 0, 0, 0)));
    assert_eq!(c.next_after(first.unwrap(), Tz::UTC), None);
    assert_eq!(next("0 0 0 1 1 * 2020", utc(2026, 6, 1, 0, 0, 0)), None, "a past year never fires");
    assert_eq!(next("0 0 12 * * * 2027-2029/2", utc(2027, 12, 31, 13, 0, 0)), Some(utc(2029, 1, 1, 12, 0, 0)));
    assert_eq!(next("0 0 0 * * *", utc(2199, 12, 31, 0, 0, 0)), None, "nothing after 2199");
    assert_eq!(next("0 0 0 * * *", utc(1969, 6, 1, 0, 0, 0)), Some(utc(1970, 1, 1, 0, 0, 0)));
}

#[test]
fn cron_impossible_dates_return_none_quickly() {
    let started = Instant::now();
    for expr in ["0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 0 31 2 *", "0 0 0 30 FEB MON#5 2026"] {
        // The last one is OR-combined: it would fire on a fifth Monday of February, but 2026 has none.
        let c = cron(expr);
        assert_eq!(c.next_after(utc(2026, 1, 1, 0, 0, 0), Tz::UTC), None, "{expr}");
        assert_eq!(c.next_after(utc(2026, 1, 1, 0, 0, 0), tz("America/New_York")), None, "{expr}");
    }
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
}

#[test]
fn cron_next_after_any_representable_instant_does_not_panic() {
    // Found by tests/fuzz_readers.rs: the wall time of an instant near chrono's limits overflowed.
    for zone in ["UTC", "America/New_York", "Pacific/Kiritimati", "Etc/GMT+12"] {
        let zone = tz(zone);
        let c = cron("* * * * *");
        assert_eq!(c.next_after(DateTime::<Utc>::MAX_UTC, zone), None, "{zone}");
        let first = c.next_after(DateTime::<Utc>::MIN_UTC, zone).unwrap();
        assert_eq!(first, c.next_after(utc(1960, 1, 1, 0, 0, 0), zone).unwrap(), "{zone}");
        assert_eq!(first.with_timezone(&zone).naive_local(), utc(1970, 1, 1, 0, 0, 0).naive_utc(), "{zone}");
    }
    assert_eq!(cron("0 0 0 31 12 * 2199").next_after(utc(2199, 12, 30, 0, 0, 0), tz("Etc/GMT+12")), Some(utc(2199, 12, 31, 12, 0, 0)));
}

#[test]
fn cron_next_is_strictly_after() {
    assert_eq!(next("* * * * *", utc(2026, 5, 1, 10, 0, 0)), Some(utc(2026, 5, 1, 10, 1, 0)), "equal tick skipped");
    assert_eq!(next("0 * * * *", utc(2026, 5, 1, 10, 0, 0)), Some(utc(2026, 5, 1, 11, 0, 0)), "equal tick skipped");
    assert_eq!(next("* * * * * *", utc(2026, 5, 1, 10, 0, 0)), Some(utc(2026, 5, 1, 10, 0, 1)));
    let half = utc(2026, 5, 1, 10, 0, 0) + TimeDelta::milliseconds(500);
    assert_eq!(next("* * * * * *", half), Some(utc(2026, 5, 1, 10, 0, 1)), "sub-second after");
    assert_eq!(next("* * * * *", half), Some(utc(2026, 5, 1, 10, 1, 0)));
    let almost = utc(2026, 5, 1, 9, 59, 59) + TimeDelta::nanoseconds(999_999_999);
    assert_eq!(next("0 * * * *", almost), Some(utc(2026, 5, 1, 10, 0, 0)), "ticks are whole seconds");
}

#[test]
fn cron_rolls_over_minutes_hours_days_months_and_years() {
    assert_eq!(next("* * * * * *", utc(2026, 12, 31, 23, 59, 59)), Some(utc(2027, 1, 1, 0, 0, 0)));
    assert_eq!(next("30 * * * * *", utc(2026, 12, 31, 23, 59, 30)), Some(utc(2027, 1, 1, 0, 0, 30)));
    assert_eq!(next("0 0 1 * *", utc(2026, 1, 31, 12, 0, 0)), Some(utc(2026, 2, 1, 0, 0, 0)));
    assert_eq!(next("0 0 31 * *", utc(2026, 1, 31, 0, 0, 0)), Some(utc(2026, 3, 31, 0, 0, 0)));
    assert_eq!(next("@yearly", utc(2026, 1, 1, 0, 0, 0)), Some(utc(2027, 1, 1, 0, 0, 0)));
    assert_eq!(next("@monthly", utc(2026, 12, 15, 0, 0, 0)), Some(utc(2027, 1, 1, 0, 0, 0)));
}

#[test]
fn cron_thousand_ticks_every_seven_seconds() {
    let start = utc(2026, 12, 31, 23, 0, 3);
    let t = ticks("*/7 * * * * *", start, Tz::UTC, 1000);
    let mut prev = start;
    for (i, at) in t.iter().enumerate() {
        assert!(*at > prev, "tick {i}: {at} not after {prev}");
        assert_eq!(chrono::Timelike::second(at) % 7, 0, "tick {i}: {at}");
        let gap = (*at - prev).num_seconds();
        // 0, 7, ..., 56, then 4 s to the next minute's 0.
        assert!(i == 0 || gap == 7 || (gap == 4 && chrono::Timelike::second(at) == 0), "tick {i}: gap {gap}");
        prev = *at;
    }
    assert_eq!(t[0], utc(2026, 12, 31, 23, 0, 7));
    // Eight ticks in the first minute, then nine a minute: 999 = 8 + 110 * 9 + 1.
    assert_eq!(t[999], utc(2027, 1, 1, 0, 51, 7));
}

#[test]
fn cron_five_and_six_field_forms_tick_identically() {
    let zone = tz("Europe/Berlin");
    for (five, six) in [
        ("*/15 9-17 * * MON-FRI", "0 */15 9-17 * * MON-FRI"),
        ("30 2 * * *", "0 30 2 * * *"),
        ("0 0 L * *", "0 0 0 L * *"),
        ("5 4 * * 1#2", "0 5 4 * * MON#2"),
    ] {
        assert_eq!(ticks(five, utc(2026, 1, 1, 0, 0, 0), zone, 200), ticks(six, utc(2026, 1, 1, 0, 0, 0), zone, 200), "{five}");
    }
}

// ---- time zones ----

#[test]
fn cron_berlin_nine_oclock_follows_summer_time() {
    let berlin = tz("Europe/Berlin");
    let c = cron("0 9 * * *");
    assert_eq!(c.next_after(utc(2026, 1, 15, 0, 0, 0), berlin), Some(utc(2026, 1, 15, 8, 0, 0)), "CET");
    assert_eq!(c.next_after(utc(2026, 7, 15, 0, 0, 0), berlin), Some(utc(2026, 7, 15, 7, 0, 0)), "CEST");
    // The 08:30Z of a winter day is already past 09:00 CET: next day.
    assert_eq!(c.next_after(utc(2026, 1, 15, 8, 30, 0), berlin), Some(utc(2026, 1, 16, 8, 0, 0)));
}

#[test]
fn cron_spring_forward_gap_fires_once_shifted() {
    // America/New_York 2026-03-08: 02:00 EST (07:00Z) becomes 03:00 EDT.
    let ny = tz("America/New_York");
    let t = ticks("30 2 * * *", utc(2026, 3, 7, 8, 0, 0), ny, 2);
    assert_eq!(t, [utc(2026, 3, 8, 7, 30, 0), utc(2026, 3, 9, 6, 30, 0)], "03:30 EDT on the day, then 02:30 EDT");

    let t = ticks("* * * * *", utc(2026, 3, 8, 6, 58, 0), ny, 3);
    // 01:59 EST, 03:00 EDT, 03:01 EDT.
    assert_eq!(t, [utc(2026, 3, 8, 6, 59, 0), utc(2026, 3, 8, 7, 0, 0), utc(2026, 3, 8, 7, 1, 0)]);

    let t = ticks("* * * * * *", utc(2026, 3, 8, 6, 59, 58), ny, 3);
    assert_eq!(t, [utc(2026, 3, 8, 6, 59, 59), utc(2026, 3, 8, 7, 0, 0), utc(2026, 3, 8, 7, 0, 1)]);
}

#[test]
fn cron_gap_of_thirty_minutes() {
    // Australia/Lord_Howe 2026-10-04: 02:00 (+10:30) becomes 02:30 (+11:00) at 15:30Z.
    let lord_howe = tz("Australia/Lord_Howe");
    assert_eq!(cron("15 2 * * *").next_after(utc(2026, 10, 3, 12, 0, 0), lord_howe), Some(utc(2026, 10, 3, 15, 45, 0)));
}

#[test]
fn cron_gap_times_never_hide_a_real_time_after_the_gap() {
    // Australia/Lord_Howe 2026-10-04: 02:00 (+10:30) becomes 02:30 (+11:00) at 15:30Z.
    // 02:10 does not exist; moved by the old offset it would be 02:40, but 02:35 is real and
    // comes first: it fires (02:10 shares its tick) and is not skipped.
    let lord_howe = tz("Australia/Lord_Howe");
    let t = ticks("10,35 2 * * *", utc(2026, 10, 3, 12, 0, 0), lord_howe, 3);
    assert_eq!(t, [utc(2026, 10, 3, 15, 35, 0), utc(2026, 10, 4, 15, 10, 0), utc(2026, 10, 4, 15, 35, 0)]);

    // Pacific/Chatham 2026-09-27: 02:45 (+12:45) becomes 03:45 (+13:45) at 14:00Z.
    // 03:00-03:44 do not exist; 03:45-03:59 do and each fires once.
    let chatham = tz("Pacific/Chatham");
    let t = ticks("* 3 * * *", utc(2026, 9, 26, 13, 0, 0), chatham, 16);
    let expected: Vec<_> = (0..15).map(|m| utc(2026, 9, 26, 14, m, 0)).chain([utc(2026, 9, 27, 13, 15, 0)]).collect();
    assert_eq!(t, expected, "03:45..03:59 +13:45, then 03:00 the next day");

    let t = ticks("0,50 3 * * *", utc(2026, 9, 26, 13, 0, 0), chatham, 3);
    assert_eq!(t, [utc(2026, 9, 26, 14, 5, 0), utc(2026, 9, 27, 13, 15, 0), utc(2026, 9, 27, 14, 5, 0)], "03:50 fires");

    // With no real match before it, a gap time still fires once, moved by the old offset:
    // 03:00 (+12:45) is 04:00 (+13:45).
    let t = ticks("0 3 * * *", utc(2026, 9, 26, 13, 0, 0), chatham, 2);
    assert_eq!(t, [utc(2026, 9, 26, 14, 15, 0), utc(2026, 9, 27, 13, 15, 0)]);
}

#[test]
fn cron_fall_back_overlap_fires_once_at_the_earlier_instant() {
    // America/New_York 2026-11-01: 02:00 EDT (06:00Z) becomes 01:00 EST; 01:00-01:59 happen twice.
    let ny = tz("America/New_York");
    let t = ticks("30 1 * * *", utc(2026, 10, 31, 12, 0, 0), ny, 2);
    assert_eq!(t, [utc(2026, 11, 1, 5, 30, 0), utc(2026, 11, 2, 6, 30, 0)], "01:30 EDT only, then 01:30 EST next day");

    // From inside the repeated hour, the wall time already fired.
    assert_eq!(cron("30 1 * * *").next_after(utc(2026, 11, 1, 6, 10, 0), ny), Some(utc(2026, 11, 2, 6, 30, 0)));
    assert_eq!(cron("* * * * *").next_after(utc(2026, 11, 1, 6, 10, 0), ny), Some(utc(2026, 11, 1, 7, 0, 0)));

    let t = ticks("@hourly", utc(2026, 11, 1, 4, 30, 0), ny, 3);
    // 01:00 EDT, 02:00 EST, 03:00 EST.
    assert_eq!(t, [utc(2026, 11, 1, 5, 0, 0), utc(2026, 11, 1, 7, 0, 0), utc(2026, 11, 1, 8, 0, 0)]);

    let t = ticks("0 * * * *", utc(2026, 10, 31, 20, 0, 0), ny, 24);
    assert!(t.windows(2).all(|w| w[0] < w[1]), "{t:?}");
    assert_eq!(t.iter().collect::<HashSet<_>>().len(), t.len());
    assert!(t.contains(&utc(2026, 11, 1, 5, 0, 0)) && !t.contains(&utc(2026, 11, 1, 6, 0, 0)));
}

#[test]
fn cron_no_wall_time_fires_twice_across_transitions() {
    for (zone, start) in [
        ("America/New_York", utc(2026, 3, 7, 12, 0, 0)),
        ("America/New_York", utc(2026, 10, 31, 12, 0, 0)),
        ("Europe/Berlin", utc(2026, 3, 28, 12, 0, 0)),
        ("Europe/Berlin", utc(2026, 10, 24, 12, 0, 0)),
        ("Australia/Lord_Howe", utc(2026, 4, 4, 0, 0, 0)),
        ("Australia/Lord_Howe", utc(2026, 10, 3, 0, 0, 0)),
    ] {
        let zone = tz(zone);
        for expr in ["* * * * *", "*/20 * * * * *", "15,45 * * * *", "0 30 1,2 * * *"] {
            let t = ticks(expr, start, zone, 3000);
            assert!(t.windows(2).all(|w| w[0] < w[1]), "{zone} {expr}: not increasing");
            let walls: HashSet<_> = t.iter().map(|at| at.with_timezone(&zone).naive_local()).collect();
            assert_eq!(walls.len(), t.len(), "{zone} {expr}: a wall time fired twice");
        }
    }
}

#[test]
fn cron_fixed_zones_are_plain_offsets() {
    let c = cron("0 9 * * *");
    assert_eq!(c.next_after(utc(2026, 7, 1, 0, 0, 0), tz("Etc/GMT+5")), Some(utc(2026, 7, 1, 14, 0, 0)));
    assert_eq!(c.next_after(utc(2026, 7, 1, 0, 0, 0), tz("UTC")), Some(utc(2026, 7, 1, 9, 0, 0)));
}

/// A random cron expression whose hours sit around `hour` (the local hour a transition starts in),
/// so that its matches land before, inside and after gaps and overlaps.
fn random_expression(rng: &mut fastrand::Rng, hour: u32) -> String {
    let seconds = ["0", "0", "0", "30", "0,30", "*/20", "10-50/20"][rng.usize(..7)].to_string();
    let minutes = match rng.u32(..6) {
        0 => "*".to_string(),
        1 => format!("*/{}", rng.u32(2..=30)),
        2 => format!("{}/{}", rng.u32(..60), rng.u32(5..=40)),
        3 => {
            let a = rng.u32(..60);
            format!("{a}-{}", rng.u32(a..60))
        }
        _ => (0..rng.usize(1..=3)).map(|_| rng.u32(..60).to_string()).collect::<Vec<_>>().join(","),
    };
    let hours = match rng.u32(..5) {
        0 => "*".to_string(),
        _ => {
            let mut hs: Vec<u32> = (0..rng.usize(1..=3)).map(|_| (hour + 23 + rng.u32(..4)) % 24).collect();
            hs.sort_unstable();
            hs.dedup();
            hs.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
        }
    };
    format!("{seconds} {minutes} {hours} * * *")
}

#[test]
fn cron_property_ticks_increase_and_every_real_match_fires() {
    // One window of 36 hours around each transition, in zones with odd rules: 30-minute DST
    // (Lord_Howe), a 02:45 transition (Chatham), a 15-minute one-off jump (Kathmandu 1986),
    // a midnight transition (Santiago), and the ordinary whole-hour ones.
    let windows = [
        ("America/New_York", utc(2026, 3, 8, 7, 0, 0)),
        ("America/New_York", utc(2026, 11, 1, 6, 0, 0)),
        ("Europe/Berlin", utc(2026, 3, 29, 1, 0, 0)),
        ("Europe/Berlin", utc(2026, 10, 25, 1, 0, 0)),
        ("Australia/Lord_Howe", utc(2026, 10, 3, 15, 30, 0)),
        ("Australia/Lord_Howe", utc(2026, 4, 4, 15, 0, 0)),
        ("Pacific/Chatham", utc(2026, 9, 26, 14, 0, 0)),
        ("Pacific/Chatham", utc(2026, 4, 4, 14, 0, 0)),
        ("Asia/Kathmandu", utc(1985, 12, 31, 18, 30, 0)),
        ("America/Santiago", utc(2026, 9, 6, 4, 0, 0)),
        ("America/Santiago", utc(2026, 4, 5, 3, 0, 0)),
        ("Australia/Sydney", utc(2026, 10, 3, 16, 0, 0)),
        ("Australia/Sydney", utc(2026, 4, 4, 16, 0, 0)),
    ];
    let mut rng = fastrand::Rng::with_seed(0x00c0_ffee);
    let mut cases = 0;
    for (name, center) in windows {
        let zone = tz(name);
        let offset = |at: DateTime<Utc>| TimeDelta::seconds(at.with_timezone(&zone).offset().fix().local_minus_utc().into());
        let (start, end) = (center - TimeDelta::hours(18), center + TimeDelta::hours(18));
        // The one transition in the window, found minute by minute.
        let changes: Vec<DateTime<Utc>> = (1..=36 * 60)
            .map(|m| start + TimeDelta::minutes(m))
            .filter(|&at| offset(at) != offset(at - TimeDelta::minutes(1)))
            .collect();
        assert_eq!(changes.len(), 1, "{name} around {center}: {changes:?}");
        let transition = changes[0];
        let hour = chrono::Timelike::hour(&(transition - TimeDelta::minutes(1)).with_timezone(&zone));

        for _ in 0..40 {
            let expr = random_expression(&mut rng, hour);
            let schedule = cron(&expr);
            // Every matching wall time near the window, enumerated in UTC (no gaps there), then
            // placed in the zone: real ones at their earliest instant, nonexistent ones apart.
            let (mut expected, mut gap_walls) = (Vec::new(), Vec::new());
            let (wall_start, wall_end) = ((start + offset(start)).naive_utc(), (end + offset(end)).naive_utc());
            let mut wall = wall_start - TimeDelta::hours(2);
            while let Some(w) = schedule.next_after(wall.and_utc(), Tz::UTC).map(|t| t.naive_utc()) {
                if w > wall_end + TimeDelta::hours(2) {
                    break;
                }
                match zone.from_local_datetime(&w).earliest() {
                    Some(at) if at.with_timezone(&Utc) > start && at.with_timezone(&Utc) <= end => expected.push(at.with_timezone(&Utc)),
                    Some(_) => {}
                    None => gap_walls.push(w),
                }
                wall = w;
            }
            let mut actual = Vec::new();
            let mut at = start;
            while let Some(next) = schedule.next_after(at, zone).filter(|&t| t <= end) {
                assert!(next > at, "{name} {expr:?}: {next} not after {at}");
                actual.push(next);
                at = next;
            }
            let fired: HashSet<_> = actual.iter().copied().collect();
            for want in &expected {
                assert!(fired.contains(want), "{name} {expr:?}: real match at {want} ({}) skipped", want.with_timezone(&zone));
            }
            let wanted: HashSet<_> = expected.iter().copied().collect();
            let extras: Vec<_> = actual.iter().filter(|t| !wanted.contains(t)).collect();
            match gap_walls.first() {
                None => assert!(extras.is_empty(), "{name} {expr:?}: ticks at no matching time: {extras:?}"),
                Some(first) => {
                    // The gap's times fire once: at the first one moved by the old offset, or
                    // earlier with a real match after the gap.
                    let moved = (*first - offset(start)).and_utc();
                    assert!(extras.len() <= 1 && extras.iter().all(|t| **t == moved), "{name} {expr:?}: extras {extras:?}, moved {moved}");
                    assert!(actual.iter().any(|t| *t >= transition && *t <= moved), "{name} {expr:?}: the gap did not fire");
                }
            }
            let walls: HashSet<_> = actual.iter().map(|t| t.with_timezone(&zone).naive_local()).collect();
            assert_eq!(walls.len(), actual.len(), "{name} {expr:?}: a wall time fired twice");
            cases += 1;
        }
    }
    assert_eq!(cases, 13 * 40);
}
