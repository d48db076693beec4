//! Budgets: how much a team (or one of its users or keys) may spend per
//! day or month, and what happens when it has.
//!
//! A budget's spend is the cost of the usage its sandboxes metered since
//! the start of the current period (UTC). At [`WARNING_FRACTION`] of its
//! amount a warning is sent once per period; at the amount creates,
//! resumes and forks in its scope are refused, and its running sandboxes
//! are paused, killed or left alone, as its [`BudgetAction`] says.

use std::fmt;
use std::str::FromStr;

use time::{Date, OffsetDateTime, Time};

use crate::WarrenError;

/// The share of a budget at which its warning goes out.
pub const WARNING_FRACTION: f64 = 0.8;

/// Largest amount a budget may have.
pub const MAX_AMOUNT: f64 = 1e12;

/// How long a budget's amount lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Month,
}

impl Period {
    /// When the period holding `now` began (UTC midnight, or the first of
    /// the month).
    pub fn start(self, now: OffsetDateTime) -> OffsetDateTime {
        let now = now.to_offset(time::UtcOffset::UTC);
        let day = match self {
            Self::Day => now.date(),
            Self::Month => {
                Date::from_calendar_date(now.year(), now.month(), 1).unwrap_or_else(|_| now.date())
            }
        };
        day.with_time(Time::MIDNIGHT).assume_utc()
    }

    /// A name for the period holding `now`: `2026-12-07` or `2026-12`.
    pub fn key(self, now: OffsetDateTime) -> String {
        let now = now.to_offset(time::UtcOffset::UTC);
        match self {
            Self::Day => format!(
                "{:04}-{:02}-{:02}",
                now.year(),
                u8::from(now.month()),
                now.day()
            ),
            Self::Month => format!("{:04}-{:02}", now.year(), u8::from(now.month())),
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Day => "day",
            Self::Month => "month",
        })
    }
}

impl FromStr for Period {
    type Err = WarrenError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "day" => Ok(Self::Day),
            "month" => Ok(Self::Month),
            other => Err(WarrenError::invalid(format!(
                "period must be day or month, not {other:?}"
            ))),
        }
    }
}

/// What happens to a budget's running sandboxes when it is spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetAction {
    Pause,
    Kill,
    /// Only the event: running sandboxes go on (new ones are still refused).
    Notify,
}

impl fmt::Display for BudgetAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pause => "pause",
            Self::Kill => "kill",
            Self::Notify => "notify",
        })
    }
}

impl FromStr for BudgetAction {
    type Err = WarrenError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pause" => Ok(Self::Pause),
            "kill" => Ok(Self::Kill),
            "notify" => Ok(Self::Notify),
            other => Err(WarrenError::invalid(format!(
                "action must be pause, kill or notify, not {other:?}"
            ))),
        }
    }
}

/// An amount a budget may have: a number from 0 to [`MAX_AMOUNT`].
pub fn check_amount(amount: f64) -> Result<(), WarrenError> {
    if amount.is_finite() && (0.0..=MAX_AMOUNT).contains(&amount) {
        Ok(())
    } else {
        Err(WarrenError::invalid(format!(
            "amount must be a number from 0 to {MAX_AMOUNT}, not {amount}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::format_description::well_known::Rfc3339;

    fn t(s: &str) -> OffsetDateTime {
        OffsetDateTime::parse(s, &Rfc3339).unwrap()
    }

    #[test]
    fn periods_start_at_utc_midnight_and_the_first_of_the_month() {
        let now = t("2026-12-07T13:45:10+02:00");
        assert_eq!(Period::Day.start(now), t("2026-12-07T00:00:00Z"));
        assert_eq!(Period::Month.start(now), t("2026-12-01T00:00:00Z"));
        assert_eq!(Period::Day.key(now), "2026-12-07");
        assert_eq!(Period::Month.key(now), "2026-12");
        let late = t("2026-12-31T23:30:00-02:00");
        assert_eq!(Period::Month.key(late), "2027-01");
    }

    #[test]
    fn names_and_amounts_are_checked() {
        assert_eq!("month".parse::<Period>().unwrap(), Period::Month);
        assert!("week".parse::<Period>().is_err());
        assert_eq!("kill".parse::<BudgetAction>().unwrap(), BudgetAction::Kill);
        assert!("stop".parse::<BudgetAction>().is_err());
        check_amount(0.0).unwrap();
        check_amount(12.5).unwrap();
        for bad in [-1.0, f64::NAN, f64::INFINITY, 1e13] {
            assert!(check_amount(bad).is_err(), "{bad}");
        }
    }
}
