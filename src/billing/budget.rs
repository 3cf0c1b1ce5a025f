//! Caps on a month's billed minutes: one for the whole function (`PUSHBUILD_MONTHLY_MINUTES`)
//! and one per repository (`PUSHBUILD_REPOSITORY_MINUTES`). The index applies them, one minute
//! at a time, as builds reserve their minutes (see [`crate::index::Index::reserve`]).

/// The month's caps on billed minutes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Budget {
    /// All repositories together.
    pub monthly_minutes: Option<u64>,
    /// A repository's own cap, by name.
    pub per_repository: Vec<(String, u64)>,
}

impl Budget {
    /// `repository`'s own cap, when it has one.
    pub fn repository_cap(&self, repository: &str) -> Option<u64> {
        self.per_repository
            .iter()
            .find(|(name, _)| name == repository)
            .map(|(_, cap)| *cap)
    }
}
