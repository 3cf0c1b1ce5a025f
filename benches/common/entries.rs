//! What the benchmarks fill an index with.

use chrono::Utc;
use pushbuild::index::Entry;
use pushbuild::names::{BuildId, ProjectName};
use pushbuild::state::BuildState;

/// A closed build of the current month.
pub fn closed(i: usize) -> Entry {
    let now = Utc::now();
    Entry {
        project: ProjectName::parse(&format!("repo-{}", i % 10)).expect("a name"),
        build_id: BuildId::parse(&format!("{}-{i:08}", now.format("%Y%m%dT%H%M%SZ")))
            .expect("an id"),
        number: i as u64 + 1,
        state: if i.is_multiple_of(7) {
            BuildState::Failed
        } else {
            BuildState::Succeeded
        },
        start_time: now,
        deadline: None,
        expires_at: now,
        commit: Some("0123456789abcdef0123456789abcdef01234567".to_string()),
        reference: Some("refs/heads/main".to_string()),
        initiator: "bench".to_string(),
        reserved_minutes: 3,
        billed_minutes: 3,
        cost_usd: 0.0048,
        duration_ms: 150_000,
        price_usd_per_minute: 0.0016,
        price_basis: "bench".to_string(),
        reason: None,
        tests: None,
        batch: None,
    }
}
