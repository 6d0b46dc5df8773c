use super::*;
use crate::fix::FixSource;

const NOW: Timestamp = Timestamp::from_millis(1_764_446_400_000);

fn fix(ms_before_now: i64, lat: f64, lon: f64) -> Fix {
    Fix::new(
        Timestamp::from_millis(NOW.as_millis() - ms_before_now),
        lat,
        lon,
    )
}

fn run(f: &Fix, previous: Option<Previous<'_>>) -> Result<(), FilterReason> {
    check(&FilterConfig::default(), f, previous, NOW)
}

fn after<'a>(latest: &'a Fix, jumps_in_row: u32) -> Option<Previous<'a>> {
    Some(Previous {
        latest,
        jumps_in_row,
        max_speed_mps: 12.0,
    })
}

#[test]
fn names_are_snake_case_and_all_is_complete() {
    let names: Vec<_> = FilterReason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(
        names,
        [
            "invalid",
            "zero",
            "future",
            "too_old",
            "duplicate",
            "poor_accuracy",
            "jump"
        ]
    );
    for reason in FilterReason::ALL {
        let json = serde_json::to_string(&reason).unwrap();
        assert_eq!(json, format!("\"{}\"", reason.as_str()));
    }
}

#[test]
fn invalid_rejects_out_of_range_and_non_finite() {
    assert_eq!(run(&fix(0, 91.0, 0.1), None), Err(FilterReason::Invalid));
    assert_eq!(
        run(&fix(0, 31.0, f64::NAN), None),
        Err(FilterReason::Invalid)
    );
    let mut f = fix(0, 31.0, 121.0);
    f.accuracy_m = Some(-1.0);
    assert_eq!(run(&f, None), Err(FilterReason::Invalid));
    f.accuracy_m = Some(5.0);
    f.battery_pct = Some(140.0);
    assert_eq!(run(&f, None), Err(FilterReason::Invalid));
    f.battery_pct = Some(40.0);
    assert_eq!(run(&f, None), Ok(()));
}

#[test]
fn zero_rejects_null_island_only() {
    assert_eq!(run(&fix(0, 0.0, 0.0), None), Err(FilterReason::Zero));
    assert_eq!(run(&fix(0, 0.0, 0.5), None), Ok(()));
}

#[test]
fn future_allows_the_skew_and_no_more() {
    assert_eq!(run(&fix(-60_000, 31.0, 121.0), None), Ok(()));
    assert_eq!(
        run(&fix(-60_001, 31.0, 121.0), None),
        Err(FilterReason::Future)
    );
}

#[test]
fn too_old_allows_a_tunnel_batch_but_not_yesterday() {
    assert_eq!(run(&fix(30 * 60_000, 31.0, 121.0), None), Ok(()));
    assert_eq!(
        run(&fix(25 * 3_600_000, 31.0, 121.0), None),
        Err(FilterReason::TooOld)
    );
}

#[test]
fn duplicate_is_the_same_fix_time_as_latest() {
    let latest = fix(5_000, 31.0, 121.0);
    assert_eq!(
        run(&fix(5_000, 31.0, 121.0), after(&latest, 0)),
        Err(FilterReason::Duplicate)
    );
    assert_eq!(run(&fix(4_000, 31.0, 121.0), after(&latest, 0)), Ok(()));
}

#[test]
fn poor_accuracy_and_too_few_satellites() {
    let mut f = fix(0, 31.0, 121.0);
    f.accuracy_m = Some(150.0);
    assert_eq!(run(&f, None), Err(FilterReason::PoorAccuracy));
    f.accuracy_m = Some(20.0);
    f.satellites = 2;
    let strict = FilterConfig {
        min_satellites: 4,
        ..FilterConfig::default()
    };
    assert_eq!(
        check(&strict, &f, None, NOW),
        Err(FilterReason::PoorAccuracy)
    );
    assert_eq!(run(&f, None), Ok(()));
}

#[test]
fn jump_uses_the_profile_speed_plus_tolerance() {
    let latest = fix(10_000, 31.0, 121.0);
    // 10 s at 12 m/s plus 50 m of tolerance is 170 m; 0.001° of latitude is about 111 m.
    assert_eq!(run(&fix(0, 31.001, 121.0), after(&latest, 0)), Ok(()));
    assert_eq!(
        run(&fix(0, 31.002, 121.0), after(&latest, 0)),
        Err(FilterReason::Jump)
    );
    // An out-of-order fix 10 s before the latest is held to the same bound.
    assert_eq!(
        run(&fix(20_000, 31.002, 121.0), after(&latest, 0)),
        Err(FilterReason::Jump)
    );
    // After three rejections in a row the next fix is the new anchor.
    assert_eq!(run(&fix(0, 31.002, 121.0), after(&latest, 3)), Ok(()));
}

#[test]
fn disabled_filters_let_everything_through() {
    let off = FilterConfig {
        zero: false,
        max_age: std::time::Duration::ZERO,
        duplicate: false,
        max_accuracy_m: 0.0,
        jump: false,
        ..FilterConfig::default()
    };
    let latest = fix(1_000, 31.0, 121.0);
    let mut f = fix(1_000, 0.0, 0.0);
    f.accuracy_m = Some(5_000.0);
    f.source = FixSource::OwnTracks;
    let previous = after(&latest, 0);
    assert_eq!(check(&off, &f, previous, NOW), Ok(()));
    assert_eq!(
        check(&off, &fix(40 * 3_600_000, 31.0, 121.0), None, NOW),
        Ok(())
    );
}
