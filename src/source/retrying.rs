//! A hosted repository's git calls tried again when the host did not answer as it should (a
//! connection reset, a 5xx, a timeout: [`SourceError::Api`]), a bounded number of times with a
//! pause that doubles. Each failure is logged, and the fetch's notes (the build's log) say what
//! was tried again; a refusal (not found, no access) is not tried again. [`classify`] says which
//! is which of what gix answers.

use std::future::Future;
use std::time::Duration;

use super::SourceError;

/// How many times a call is made at most.
pub(super) const ATTEMPTS: u32 = 3;
/// The pause before the second attempt (the unit tests' is short).
const FIRST_PAUSE: Duration = Duration::from_millis(if cfg!(test) { 1 } else { 500 });

/// `call(attempt)` (from 1) until it answers, fails for good, or [`ATTEMPTS`] are made; its
/// result, and a line for each failure that was tried again.
pub(super) async fn retrying<T, F, Fut>(
    what: &str,
    mut call: F,
) -> (Result<T, SourceError>, Vec<String>)
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, SourceError>>,
{
    let mut retried = Vec::new();
    let mut pause = FIRST_PAUSE;
    for attempt in 1..=ATTEMPTS {
        match call(attempt).await {
            Err(SourceError::Api { message, .. }) if attempt < ATTEMPTS => {
                let first_line: String = message
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .take(200)
                    .collect();
                tracing::warn!(
                    what,
                    attempt,
                    error = first_line,
                    "the host did not answer; trying again"
                );
                retried.push(format!(
                    "{what} tried again after attempt {attempt}: {first_line}"
                ));
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            other => return (other, retried),
        }
    }
    unreachable!("the last attempt returns")
}

/// Sorts a failed clone or reference listing into the build's fault (no such repository or
/// `wanted` commit or reference, no access) or pushbuild's (the host does not answer), by what
/// gix reports.
pub(super) fn classify(url: &str, wanted: &str, err: gix::Error) -> SourceError {
    let message = format!("{err:#}");
    let lower = message.to_ascii_lowercase();
    // An HTTP status as the transport words it (`status 404`, `(404 Not Found)`,
    // `Status(404, …)`), never a port or a commit id that happens to hold the digits.
    let status = |code: u16| {
        [
            format!("status {code}"),
            format!("({code} "),
            format!("status({code},"),
        ]
        .iter()
        .any(|form| lower.contains(form.as_str()))
    };
    if lower.contains("not our ref") || lower.contains("revision") && lower.contains("missing") {
        SourceError::CommitNotFound {
            repository: url.to_string(),
            commit: wanted.to_string(),
        }
    } else if status(401)
        || status(403)
        || lower.contains("credentials")
        || lower.contains("authentication")
    {
        SourceError::AccessDenied {
            repository: url.to_string(),
        }
    } else if status(404) || lower.contains("not found") {
        SourceError::RepositoryNotFound {
            repository: url.to_string(),
        }
    } else {
        SourceError::Api {
            operation: "git fetch",
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unreachable_host() -> SourceError {
        SourceError::Api {
            operation: "git fetch",
            message: "connection reset by peer\nmore".to_string(),
        }
    }

    #[tokio::test]
    async fn a_host_that_fails_twice_is_tried_a_third_time_and_a_refusal_once() {
        let (answer, retried) = retrying("git fetch", |attempt| async move {
            if attempt < 3 {
                Err(unreachable_host())
            } else {
                Ok(attempt)
            }
        })
        .await;
        assert_eq!(answer.unwrap(), 3);
        assert_eq!(retried.len(), 2);
        assert!(retried[0].starts_with("git fetch tried again after attempt 1: connection reset"));
        let mut calls = 0;
        let (answer, retried) = retrying("git fetch", |_| {
            calls += 1;
            async {
                Err::<(), _>(SourceError::RepositoryNotFound {
                    repository: "x".into(),
                })
            }
        })
        .await;
        assert!(answer.is_err() && retried.is_empty() && calls == 1);
        let (answer, retried) =
            retrying("git fetch", |_| async { Err::<(), _>(unreachable_host()) }).await;
        assert!(matches!(answer, Err(SourceError::Api { .. })));
        assert_eq!(retried.len(), (ATTEMPTS - 1) as usize);
    }
}
