//! The rules of single settings' values: a bucket's name, the metrics' namespace, the per-repository
//! caps and the price of a minute.

use super::{ConfigError, Vars, invalid};
use crate::cost::{Arch, DEFAULT_MEMORY_MB, Price};

/// S3's bucket naming rules: 3 to 63 lowercase letters, digits, `.` and `-`, starting and
/// ending with a letter or digit, no `..`, and not an IP address.
pub(super) fn check_bucket(name: &str) -> Result<(), ConfigError> {
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let chars_ok = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
    let looks_like_ip = name.parse::<std::net::Ipv4Addr>().is_ok();
    if (3..=63).contains(&name.len())
        && chars_ok
        && edge_ok(name.chars().next())
        && edge_ok(name.chars().last())
        && !name.contains("..")
        && !looks_like_ip
    {
        return Ok(());
    }
    Err(invalid(
        "PUSHBUILD_BUCKET",
        "an S3 bucket name: 3 to 63 lowercase letters, digits, `.` or `-`, starting and ending \
         with a letter or digit (not an s3:// URL or an ARN)",
        Some(name),
    ))
}

/// CloudWatch's namespace rules: 1 to 255 letters, digits and `. - _ / # :`, not `AWS/...`.
pub(super) fn check_namespace(namespace: &str) -> Result<(), ConfigError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || ".-_/#: ".contains(c);
    if namespace.len() <= 255 && namespace.chars().all(allowed) && !namespace.starts_with("AWS/") {
        return Ok(());
    }
    Err(invalid(
        "PUSHBUILD_NAMESPACE",
        "a CloudWatch namespace: up to 255 letters, digits, spaces or `. - _ / # :`, \
         not starting with `AWS/`",
        Some(namespace),
    ))
}

/// `PUSHBUILD_REPOSITORY_MINUTES`: `repo=minutes` items separated by commas; an error names
/// the first bad item.
pub(super) fn repository_minutes(text: &str) -> Result<Vec<(String, u64)>, ConfigError> {
    let mut caps: Vec<(String, u64)> = Vec::new();
    for item in text
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
    {
        let parsed = item.split_once('=').and_then(|(name, minutes)| {
            let name = name.trim();
            let good_name = crate::names::ProjectName::parse(name).is_ok();
            let minutes = minutes.trim().parse::<u64>().ok()?;
            good_name.then(|| (name.to_string(), minutes))
        });
        match parsed {
            Some((name, _)) if caps.iter().any(|(seen, _)| *seen == name) => {
                return Err(invalid(
                    "PUSHBUILD_REPOSITORY_MINUTES",
                    format!("each repository once (`{name}` is given twice)"),
                    Some(item),
                ));
            }
            Some(cap) => caps.push(cap),
            None => {
                return Err(invalid(
                    "PUSHBUILD_REPOSITORY_MINUTES",
                    "`repository=minutes` items separated by commas, such as `web=600,api=120`",
                    Some(item),
                ));
            }
        }
    }
    Ok(caps)
}

/// `PUSHBUILD_PRICE_PER_MINUTE`, else Lambda's price for the function's memory and arch. The
/// memory and arch are checked even when the price is set, so a typo never waits to surface.
pub(super) fn price(vars: &Vars) -> Result<Price, ConfigError> {
    let memory_mb = match vars.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") {
        None => DEFAULT_MEMORY_MB,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|mb| (128..=10_240).contains(mb))
            .ok_or_else(|| {
                invalid(
                    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                    "the function's memory in MB, a whole number from 128 to 10240",
                    None,
                )
            })?,
    };
    let arch = match vars.get("PUSHBUILD_ARCH").as_deref() {
        None | Some("arm64") => Arch::Arm64,
        Some("x86_64") => Arch::X86_64,
        Some(other) => return Err(invalid("PUSHBUILD_ARCH", "arm64 or x86_64", Some(other))),
    };
    match vars.get("PUSHBUILD_PRICE_PER_MINUTE") {
        None => Ok(Price::lambda(memory_mb, arch)),
        Some(text) => Price::parse_per_minute(&text).map_err(|_| {
            invalid(
                "PUSHBUILD_PRICE_PER_MINUTE",
                format!(
                    "a price in USD per build minute from 0 to {}, such as 0.0016",
                    crate::cost::MAX_USD_PER_MINUTE
                ),
                Some(&text),
            )
        }),
    }
}
