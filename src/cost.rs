//! What a build costs: billed minutes (the duration rounded up to whole minutes, at least one, as
//! CodeBuild bills) at a price per minute, and the reference prices it is compared with.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// AWS Lambda's on-demand price per GB-second, arm64 (USD).
pub const LAMBDA_ARM64_GB_SECOND: f64 = 0.000_013_333_4;
/// AWS Lambda's on-demand price per GB-second, x86_64 (USD).
pub const LAMBDA_X86_64_GB_SECOND: f64 = 0.000_016_666_7;
/// AWS CodeBuild's general1.small (Linux, on demand) price per minute (USD), the comparison.
pub const CODEBUILD_GENERAL1_SMALL_MINUTE: f64 = 0.005;
/// The function's memory when nothing else is known (MB), as `template.yaml` deploys it.
pub const DEFAULT_MEMORY_MB: u32 = 2048;

/// The highest price per build minute pushbuild takes, in USD: far above any AWS compute
/// (CodeBuild's largest GPU machine costs under $1 a minute), low enough that no build's cost
/// can leave the range of exact, finite sums.
pub const MAX_USD_PER_MINUTE: f64 = 1000.0;

/// A price per minute outside `0..=MAX_USD_PER_MINUTE` (or not a number).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("expected a price in USD per build minute from 0 to {MAX_USD_PER_MINUTE}, found `{found}`")]
pub struct PriceError {
    pub found: String,
}

/// The processor architecture a function runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    Arm64,
    X86_64,
}

impl std::str::FromStr for Arch {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "arm64" | "aarch64" => Ok(Arch::Arm64),
            "x86_64" | "amd64" => Ok(Arch::X86_64),
            other => Err(format!("expected arm64 or x86_64, found `{other}`")),
        }
    }
}

/// A price per build minute and where it comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Price {
    pub usd_per_minute: f64,
    /// How the price was set: `lambda arm64 2048 MB at $0.0000133334/GB-s`, or `setting`.
    pub basis: String,
}

impl Price {
    /// Lambda's on-demand price for a function of `memory_mb` on `arch`, per minute.
    pub fn lambda(memory_mb: u32, arch: Arch) -> Price {
        let gb_second = match arch {
            Arch::Arm64 => LAMBDA_ARM64_GB_SECOND,
            Arch::X86_64 => LAMBDA_X86_64_GB_SECOND,
        };
        let arch_name = match arch {
            Arch::Arm64 => "arm64",
            Arch::X86_64 => "x86_64",
        };
        Price {
            usd_per_minute: gb_second * f64::from(memory_mb) / 1024.0 * 60.0,
            basis: format!("lambda {arch_name} {memory_mb} MB at ${gb_second}/GB-s"),
        }
    }

    /// A price given as text (a setting, an option), checked to lie in
    /// `0..=MAX_USD_PER_MINUTE`.
    pub fn parse_per_minute(text: &str) -> Result<Price, PriceError> {
        match text.trim().parse::<f64>() {
            Ok(usd) if (0.0..=MAX_USD_PER_MINUTE).contains(&usd) => Ok(Price::per_minute(usd)),
            _ => Err(PriceError {
                found: text.to_string(),
            }),
        }
    }

    /// A price given directly.
    pub fn per_minute(usd: f64) -> Price {
        Price {
            usd_per_minute: usd,
            basis: "setting".to_string(),
        }
    }
}

/// A build's cost, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildCost {
    pub duration_ms: u64,
    pub billed_minutes: u64,
    pub price: Price,
    /// billed minutes × price per minute, in USD.
    pub cost_usd: f64,
    /// What the same minutes would cost on CodeBuild general1.small, in USD.
    pub codebuild_general1_small_usd: f64,
}

/// The length of a billed minute: 60 seconds, except in tests that shorten it
/// (`PUSHBUILD_BILLING_MINUTE_MS`).
pub const MINUTE: Duration = Duration::from_secs(60);

/// The duration rounded up to whole minutes, at least one.
pub fn billed_minutes(duration: Duration) -> u64 {
    billed_minutes_in(duration, MINUTE)
}

/// The duration rounded up to whole `minute`s, at least one. A zero `minute` counts as one
/// nanosecond, so the function never divides by zero.
pub fn billed_minutes_in(duration: Duration, minute: Duration) -> u64 {
    let minutes = duration.as_nanos().div_ceil(minute.as_nanos().max(1));
    u64::try_from(minutes).unwrap_or(u64::MAX).max(1)
}

/// The cost of a build that took `duration` at `price`.
pub fn build_cost(duration: Duration, price: &Price) -> BuildCost {
    build_cost_in(duration, price, MINUTE)
}

/// The cost of a build that took `duration` at `price`, billed in whole `minute`s. The price
/// stays per billed minute whatever the minute's length.
pub fn build_cost_in(duration: Duration, price: &Price, minute: Duration) -> BuildCost {
    let minutes = billed_minutes_in(duration, minute);
    BuildCost {
        duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
        billed_minutes: minutes,
        price: price.clone(),
        cost_usd: round_usd(minutes as f64 * price.usd_per_minute),
        codebuild_general1_small_usd: round_usd(minutes as f64 * CODEBUILD_GENERAL1_SMALL_MINUTE),
    }
}

impl BuildCost {
    /// The same build billed at most `minutes` (the minutes the budget granted it).
    pub fn at_most(self, minutes: u64) -> BuildCost {
        if self.billed_minutes <= minutes {
            return self;
        }
        self.with_minutes(minutes)
    }

    /// The same build billed `minutes`.
    pub fn with_minutes(self, minutes: u64) -> BuildCost {
        BuildCost {
            billed_minutes: minutes,
            cost_usd: round_usd(minutes as f64 * self.price.usd_per_minute),
            codebuild_general1_small_usd: round_usd(
                minutes as f64 * CODEBUILD_GENERAL1_SMALL_MINUTE,
            ),
            ..self
        }
    }

    /// What a build that was not run costs: nothing, at `price`.
    pub fn nothing(price: &Price) -> BuildCost {
        BuildCost {
            duration_ms: 0,
            billed_minutes: 0,
            price: price.clone(),
            cost_usd: 0.0,
            codebuild_general1_small_usd: 0.0,
        }
    }
}

/// Rounds to a ten-millionth of a dollar, to keep float noise out of records and sums.
pub fn round_usd(usd: f64) -> f64 {
    (usd * 1e7).round() / 1e7
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn case(ms: u64, minutes: u64) {
        assert_eq!(
            billed_minutes(Duration::from_millis(ms)),
            minutes,
            "{ms} ms"
        );
    }

    #[test]
    fn billed_minutes_round_up_with_a_floor_of_one() {
        case(0, 1);
        case(1, 1);
        case(59_900, 1);
        case(60_000, 1);
        case(60_001, 2);
        case(60_100, 2);
        case(120_000, 2);
        case(120_001, 3);
        case(3_600_000, 60);
        assert_eq!(billed_minutes(Duration::from_nanos(60_000_000_001)), 2);
    }

    #[track_caller]
    fn case_in(ms: u64, minute_ms: u64, minutes: u64) {
        let minute = Duration::from_millis(minute_ms);
        assert_eq!(
            billed_minutes_in(Duration::from_millis(ms), minute),
            minutes,
            "{ms} ms in minutes of {minute_ms} ms"
        );
    }

    #[test]
    fn billed_minutes_in_a_short_minute() {
        case_in(0, 50, 1);
        case_in(49, 50, 1);
        case_in(50, 50, 1);
        case_in(51, 50, 2);
        case_in(130, 50, 3);
        case_in(150, 50, 3);
        case_in(151, 50, 4);
        case_in(5, 1, 5);
        assert_eq!(
            billed_minutes_in(Duration::from_millis(3), Duration::ZERO),
            3_000_000
        );
        let cost = build_cost_in(
            Duration::from_millis(130),
            &Price::per_minute(0.01),
            Duration::from_millis(50),
        );
        assert_eq!((cost.billed_minutes, cost.duration_ms), (3, 130));
        assert_eq!(cost.cost_usd, 0.03);
    }

    #[test]
    fn lambda_prices_follow_memory_and_architecture() {
        let arm = Price::lambda(1024, Arch::Arm64);
        assert!(
            (arm.usd_per_minute - 0.000_800_004).abs() < 1e-12,
            "{}",
            arm.usd_per_minute
        );
        let x86 = Price::lambda(2048, Arch::X86_64);
        assert!(
            (x86.usd_per_minute - 0.002_000_004).abs() < 1e-12,
            "{}",
            x86.usd_per_minute
        );
        assert!(arm.basis.contains("arm64 1024 MB"));
        assert_eq!("x86_64".parse::<Arch>(), Ok(Arch::X86_64));
        assert!("sparc".parse::<Arch>().unwrap_err().contains("sparc"));
    }

    #[test]
    fn cost_is_minutes_times_price_and_compares_with_codebuild() {
        let cost = build_cost(Duration::from_secs(61), &Price::per_minute(0.0016));
        assert_eq!(cost.billed_minutes, 2);
        assert_eq!(cost.duration_ms, 61_000);
        assert_eq!(cost.cost_usd, 0.0032);
        assert_eq!(cost.codebuild_general1_small_usd, 0.01);
    }
}
