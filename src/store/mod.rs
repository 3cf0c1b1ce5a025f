//! Where a build's results land: its artifacts, its log and its record, under the keys an S3
//! bucket uses. The port is [`Store`]; `fs` keeps the same layout on a local disk, `s3` in a
//! bucket.

mod fs;
#[cfg(feature = "aws")]
pub mod retries;
#[cfg(feature = "aws")]
mod s3;
pub mod stop;

use std::io::Write;

use crate::names::ProjectName;

pub use fs::LocalStore;
#[cfg(feature = "aws")]
pub use s3::S3Store;

/// Why the store could not take or give an object.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot write {uri}: {source}")]
    Write {
        uri: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {uri}: {source}")]
    Read {
        uri: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{key}` is not a valid object key: {why}")]
    BadKey { key: String, why: &'static str },
    /// A call to the storage service failed (after the SDK's own retries).
    #[error("{operation} {uri} failed: {message}")]
    Service {
        /// The service's name for the call (`PutObject`, `UploadPart`).
        operation: &'static str,
        uri: String,
        /// The service's error code and message, or what went wrong on the way.
        message: String,
        /// Whether trying the same call later can succeed (throttling, 5xx, network).
        retryable: bool,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The object is too big for the store's part size (S3 takes at most 10,000 parts).
    #[error("cannot write {uri}: more than {max_parts} parts of {part_size} bytes")]
    TooBig {
        uri: String,
        max_parts: u32,
        part_size: usize,
    },
    /// `commit` after a failed write: nothing was stored.
    #[error("cannot commit {uri}: an earlier write to it failed")]
    Abandoned { uri: String },
    /// The store needs a tokio runtime and was built outside one.
    #[error("the S3 store must be made inside a tokio runtime")]
    NoRuntime,
}

impl StoreError {
    /// Whether the same operation, tried again later, can succeed: a throttled, timed-out or
    /// 5xx call to the service, including one that surfaced through a writer's `io::Error`.
    pub fn retryable(&self) -> bool {
        match self {
            StoreError::Service { retryable, .. } => *retryable,
            StoreError::Write { source, .. } | StoreError::Read { source, .. } => source
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<StoreError>())
                .is_some_and(StoreError::retryable),
            StoreError::BadKey { .. }
            | StoreError::TooBig { .. }
            | StoreError::Abandoned { .. }
            | StoreError::NoRuntime => false,
        }
    }
}

impl StoreError {
    /// Whether the object was refused for its size alone (directly, or through a writer's
    /// `io::Error`): the data's fault, not the store's.
    pub fn too_big(&self) -> bool {
        match self {
            StoreError::TooBig { .. } => true,
            StoreError::Write { source, .. } => source
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<StoreError>())
                .is_some_and(StoreError::too_big),
            _ => false,
        }
    }
}

/// Metadata kept with an object (S3 user metadata; a sidecar file on disk).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    pub content_type: String,
    /// Name ─▶ value pairs (`build-id`, `repository`, `commit`).
    pub metadata: Vec<(String, String)>,
}

impl ObjectMeta {
    /// An object of `content_type` with no user metadata.
    pub fn new(content_type: &str) -> ObjectMeta {
        ObjectMeta {
            content_type: content_type.to_string(),
            metadata: Vec::new(),
        }
    }

    /// Adds the user metadata `name: value`.
    pub fn with(mut self, name: &str, value: &str) -> ObjectMeta {
        self.metadata.push((name.to_string(), value.to_string()));
        self
    }
}

/// An object being written: bytes go in through `Write`; `commit` makes it visible whole.
/// Dropping it without `commit` leaves nothing behind.
pub trait ObjectWriter: Write + Send {
    /// Finishes the object; returns its URI.
    fn commit(self: Box<Self>) -> Result<String, StoreError>;
}

/// The results store.
pub trait Store: Send + Sync {
    /// The URI of `key` in this store (`s3://bucket/key`, `file:///…`).
    fn uri(&self, key: &str) -> String;
    /// Starts writing the object `key`.
    fn writer(&self, key: &str, meta: &ObjectMeta) -> Result<Box<dyn ObjectWriter>, StoreError>;
    /// Starts writing the object `key` holding less in memory than `writer` (on S3 the smallest
    /// parts, two in flight): for a long stream made while the build's own memory is in use, a
    /// cache's archive.
    fn lean_writer(
        &self,
        key: &str,
        meta: &ObjectMeta,
    ) -> Result<Box<dyn ObjectWriter>, StoreError> {
        self.writer(key, meta)
    }
    /// Reads the object `key`, or `None` when there is none.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// The keys under `prefix`, sorted.
    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError>;

    /// The keys under `prefix` with their objects' sizes in bytes, sorted by key.
    fn list_sized(&self, prefix: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let mut sized = Vec::new();
        for key in self.list(prefix)? {
            let size = self.get(&key)?.map_or(0, |bytes| bytes.len() as u64);
            sized.push((key, size));
        }
        Ok(sized)
    }

    /// Reads the object `key` as a stream, or `None` when there is none: what is read arrives
    /// as it is downloaded, never the whole object in memory at once.
    fn reader(&self, key: &str) -> Result<Option<Box<dyn std::io::Read + Send>>, StoreError> {
        Ok(self
            .get(key)?
            .map(|bytes| Box::new(std::io::Cursor::new(bytes)) as Box<dyn std::io::Read + Send>))
    }

    /// Writes `bytes` as `key` only if no object `key` exists yet (S3's `If-None-Match: *`);
    /// returns whether this call created it. Two racing callers: exactly one gets `true`.
    fn put_if_absent(&self, key: &str, bytes: &[u8], meta: &ObjectMeta)
    -> Result<bool, StoreError>;

    /// Removes the object `key` (no error when there is none).
    fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// A link that downloads `key` for a while without other credentials (S3: pre-signed,
    /// expiring), or `None` when the store has none (the pages serve the bytes themselves).
    fn download_url(&self, _key: &str) -> Result<Option<String>, StoreError> {
        Ok(None)
    }

    /// Writes the file at `path` as the object `key`, streaming it; returns its URI.
    fn put_file(
        &self,
        key: &str,
        path: &std::path::Path,
        meta: &ObjectMeta,
    ) -> Result<String, StoreError> {
        let read_error = |source| StoreError::Read {
            uri: format!("file://{}", path.display()),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(read_error)?;
        let mut writer = self.writer(key, meta)?;
        std::io::copy(&mut file, &mut writer).map_err(|source| StoreError::Write {
            uri: self.uri(key),
            source,
        })?;
        writer.commit()
    }

    /// Moves the file at `path` in as the object `key` where the store can take it whole (the
    /// file is then gone), else writes it as [`Store::put_file`] does; returns its URI. For a
    /// file that is not needed after.
    fn take_file(
        &self,
        key: &str,
        path: &std::path::Path,
        meta: &ObjectMeta,
    ) -> Result<String, StoreError> {
        self.put_file(key, path, meta)
    }

    /// Writes a whole object at once; returns its URI.
    fn put(&self, key: &str, bytes: &[u8], meta: &ObjectMeta) -> Result<String, StoreError> {
        let mut writer = self.writer(key, meta)?;
        writer
            .write_all(bytes)
            .map_err(|source| StoreError::Write {
                uri: self.uri(key),
                source,
            })?;
        writer.commit()
    }
}

/// The keys of one build's results, as docs/running-locally.md documents them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub project: ProjectName,
    pub build_id: String,
}

impl Layout {
    pub fn new(project: &ProjectName, build_id: &str) -> Layout {
        Layout {
            project: project.clone(),
            build_id: build_id.to_string(),
        }
    }

    pub fn record(&self) -> String {
        format!("builds/{}/{}/build.json", self.project, self.build_id)
    }

    pub fn log(&self) -> String {
        format!("builds/{}/{}/build.log", self.project, self.build_id)
    }

    /// `artifacts/<project>/<build-id>/<name>`, or `<s3-prefix>/<build-id>/<name>`.
    pub fn artifact(&self, s3_prefix: Option<&str>, name: &str) -> String {
        match s3_prefix
            .map(|p| p.trim_matches('/'))
            .filter(|p| !p.is_empty())
        {
            Some(prefix) => format!("{prefix}/{}/{name}", self.build_id),
            None => format!("artifacts/{}/{}/{name}", self.project, self.build_id),
        }
    }

    /// `reports/<project>/<build-id>/<group>.json`: one test or coverage report group's whole
    /// report. A group named by its ARN is stored by the name after `report-group/`; characters
    /// other than letters, digits, `.`, `_` and `-` become `_`.
    pub fn report(&self, group: &str) -> String {
        let name = group.rsplit_once("report-group/").map_or(group, |(_, n)| n);
        let name: String = name
            .chars()
            .map(|c| match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '_' | '-' => c,
                _ => '_',
            })
            .collect();
        let name = if name.is_empty() || name.starts_with('.') {
            format!("_{name}")
        } else {
            name
        };
        format!("reports/{}/{}/{name}.json", self.project, self.build_id)
    }

    /// `builds/<project>/<build-id>/live.log`: the end of a running build's log, refreshed every
    /// few seconds while it runs (for its page), removed when it ends.
    pub fn live_log(&self) -> String {
        format!("builds/{}/{}/live.log", self.project, self.build_id)
    }

    /// `builds/<project>/<build-id>/target.json`: what the build was asked to build (its
    /// `BuildTarget`), for a retry.
    pub fn target(&self) -> String {
        format!("builds/{}/{}/target.json", self.project, self.build_id)
    }

    /// `builds/<project>/<build-id>/stop.json`: the build is asked to stop (see [`stop`]).
    pub fn stop(&self) -> String {
        format!("builds/{}/{}/stop.json", self.project, self.build_id)
    }

    /// `handover/<project>/<build-id>/handover.json`: a build handed to AWS CodeBuild, until it
    /// ends.
    pub fn handover(&self) -> String {
        format!("handover/{}/{}/handover.json", self.project, self.build_id)
    }

    /// `handover/<project>/<build-id>/source.zip`: the source CodeBuild builds.
    pub fn handover_source(&self) -> String {
        format!("handover/{}/{}/source.zip", self.project, self.build_id)
    }

    /// `builds/<project>/<build-id>/codebuild`: where CodeBuild writes its own log.
    pub fn codebuild_logs(&self) -> String {
        format!("builds/{}/{}/codebuild", self.project, self.build_id)
    }

    /// The prefix under which a project's build records lie.
    pub fn builds_prefix(project: &ProjectName) -> String {
        format!("builds/{project}/")
    }
}

/// Checks that `key` is a relative, `/`-separated path with no `.` or `..` parts.
pub fn check_key(key: &str) -> Result<(), StoreError> {
    let bad = |why| {
        Err(StoreError::BadKey {
            key: key.to_string(),
            why,
        })
    };
    if key.is_empty() {
        return bad("it is empty");
    }
    if key.starts_with('/') {
        return bad("it starts with /");
    }
    if key
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return bad("it has an empty, `.` or `..` part");
    }
    if key.contains('\0') {
        return bad("it holds a NUL byte");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_names_every_object_of_a_build() {
        let layout = Layout::new(&ProjectName::parse("web").unwrap(), "b1");
        assert_eq!(layout.record(), "builds/web/b1/build.json");
        assert_eq!(layout.log(), "builds/web/b1/build.log");
        assert_eq!(layout.artifact(None, "web.zip"), "artifacts/web/b1/web.zip");
        assert_eq!(
            layout.artifact(Some("/releases/"), "a.zip"),
            "releases/b1/a.zip"
        );
        assert_eq!(layout.artifact(Some(""), "a.zip"), "artifacts/web/b1/a.zip");
    }

    #[test]
    fn keys_stay_inside_the_store() {
        for good in ["a", "a/b.zip", "builds/x/y/build.json"] {
            assert!(check_key(good).is_ok(), "{good}");
        }
        for bad in ["", "/a", "a/../b", "a//b", "./a", "a/"] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
    }
}
