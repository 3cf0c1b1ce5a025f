//! The local store: the bucket's layout on a local disk, for `pushbuild run` and tests.
//! Objects are written to a temporary file and renamed into place, so a reader never sees half
//! of one.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::{ObjectMeta, ObjectWriter, Store, StoreError, check_key};

/// A directory laid out as the S3 bucket is.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: impl Into<PathBuf>) -> LocalStore {
        LocalStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file that holds `key`.
    pub fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// Checks `key`, makes its directory, writes its metadata beside it, and opens a temporary
    /// file next to where it goes.
    fn prepare(
        &self,
        key: &str,
        meta: &ObjectMeta,
    ) -> Result<(PathBuf, tempfile::NamedTempFile), StoreError> {
        let dest = self.place(key, meta)?;
        let parent = dest.parent().unwrap_or(&self.root);
        let file = tempfile::Builder::new()
            .prefix(".partial-")
            .tempfile_in(parent)
            .map_err(self.write_error(key))?;
        Ok((dest, file))
    }

    /// Where the object `key` goes, its folder made and its metadata written beside it.
    fn place(&self, key: &str, meta: &ObjectMeta) -> Result<PathBuf, StoreError> {
        check_key(key)?;
        let dest = self.path(key);
        let parent = dest.parent().unwrap_or(&self.root).to_path_buf();
        std::fs::create_dir_all(&parent).map_err(self.write_error(key))?;
        if !meta.metadata.is_empty() {
            // Object metadata beside the object, as S3 keeps it with the object.
            let text: String = meta
                .metadata
                .iter()
                .map(|(k, v)| format!("{k}: {v}\n"))
                .collect();
            let mut name = dest.file_name().unwrap_or_default().to_os_string();
            name.push(".meta");
            std::fs::write(parent.join(name), text).map_err(self.write_error(key))?;
        }
        Ok(dest)
    }

    fn write_error(&self, key: &str) -> impl FnOnce(io::Error) -> StoreError + '_ {
        let uri = self.uri(key);
        move |source| StoreError::Write { uri, source }
    }
}

struct FileWriter {
    file: tempfile::NamedTempFile,
    dest: PathBuf,
    uri: String,
}

impl Write for FileWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl ObjectWriter for FileWriter {
    fn commit(self: Box<Self>) -> Result<String, StoreError> {
        let FileWriter { file, dest, uri } = *self;
        file.persist(&dest).map_err(|err| StoreError::Write {
            uri: uri.clone(),
            source: err.error,
        })?;
        Ok(uri)
    }
}

impl Store for LocalStore {
    fn uri(&self, key: &str) -> String {
        format!("file://{}", self.path(key).display())
    }

    fn writer(&self, key: &str, meta: &ObjectMeta) -> Result<Box<dyn ObjectWriter>, StoreError> {
        let (dest, file) = self.prepare(key, meta)?;
        Ok(Box::new(FileWriter {
            file,
            dest,
            uri: self.uri(key),
        }))
    }

    /// Copies the file in the kernel where it can (`copy_file_range`), then renames it into place.
    fn put_file(&self, key: &str, path: &Path, meta: &ObjectMeta) -> Result<String, StoreError> {
        let (dest, partial) = self.prepare(key, meta)?;
        std::fs::copy(path, partial.path()).map_err(self.write_error(key))?;
        Box::new(FileWriter {
            file: partial,
            dest,
            uri: self.uri(key),
        })
        .commit()
    }

    /// Renames the file into place when it is on the store's file system (one step, nothing
    /// copied); else copies it.
    fn take_file(&self, key: &str, path: &Path, meta: &ObjectMeta) -> Result<String, StoreError> {
        let dest = self.place(key, meta)?;
        match std::fs::rename(path, &dest) {
            Ok(()) => Ok(self.uri(key)),
            Err(err) if err.kind() == io::ErrorKind::CrossesDevices => {
                self.put_file(key, path, meta)
            }
            Err(err) => Err(self.write_error(key)(err)),
        }
    }

    /// The whole object is written to a temporary file, then hard-linked into place: the link
    /// fails if the name exists, so the check and the write are one atomic step.
    fn put_if_absent(
        &self,
        key: &str,
        bytes: &[u8],
        meta: &ObjectMeta,
    ) -> Result<bool, StoreError> {
        let (dest, mut partial) = self.prepare(key, meta)?;
        partial.write_all(bytes).map_err(self.write_error(key))?;
        partial.flush().map_err(self.write_error(key))?;
        match std::fs::hard_link(partial.path(), &dest) {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(err) => Err(self.write_error(key)(err)),
        }
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        check_key(key)?;
        match std::fs::remove_file(self.path(key)) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(self.write_error(key)(err)),
        }
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_key(key)?;
        match std::fs::read(self.path(key)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Read {
                uri: self.uri(key),
                source,
            }),
        }
    }

    fn reader(&self, key: &str) -> Result<Option<Box<dyn io::Read + Send>>, StoreError> {
        check_key(key)?;
        match std::fs::File::open(self.path(key)) {
            Ok(file) => Ok(Some(Box::new(file))),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Read {
                uri: self.uri(key),
                source,
            }),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .list_sized(prefix)?
            .into_iter()
            .map(|(key, _)| key)
            .collect())
    }

    fn list_sized(&self, prefix: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let mut keys = Vec::new();
        // Walk from the deepest directory the prefix names, then filter on the whole prefix.
        let dir_part = prefix.rsplit_once('/').map_or("", |(dir, _)| dir);
        let start = self.root.join(dir_part);
        if !start.exists() {
            return Ok(keys);
        }
        for entry in walkdir::WalkDir::new(&start) {
            let entry = entry.map_err(|err| StoreError::Read {
                uri: self.uri(prefix),
                source: err.into(),
            })?;
            if !entry.file_type().is_file() {
                continue;
            }
            let Ok(rel) = entry.path().strip_prefix(&self.root) else {
                continue;
            };
            let key = rel.to_string_lossy().replace('\\', "/");
            let name = entry.file_name().to_string_lossy();
            if key.starts_with(prefix) && !name.starts_with(".partial-") && !name.ends_with(".meta")
            {
                let size = entry.metadata().map_or(0, |meta| meta.len());
                keys.push((key, size));
            }
        }
        keys.sort();
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_file_is_moved_in_on_the_same_file_system_and_copied_from_another() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().join("store"));
        let meta = ObjectMeta {
            content_type: "text/plain".into(),
            metadata: vec![("build-id".into(), "b1".into())],
        };
        let log = dir.path().join("build.log");
        std::fs::write(&log, "the log\n").unwrap();
        let uri = store
            .take_file("builds/p/b1/build.log", &log, &meta)
            .unwrap();
        assert!(uri.ends_with("builds/p/b1/build.log"), "{uri}");
        assert!(!log.exists(), "moved, not copied");
        assert_eq!(
            store.get("builds/p/b1/build.log").unwrap().as_deref(),
            Some(&b"the log\n"[..])
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("store/builds/p/b1/build.log.meta")).unwrap(),
            "build-id: b1\n"
        );
        assert_eq!(
            store.list("builds/p/b1/").unwrap(),
            ["builds/p/b1/build.log"]
        );

        // From another file system (tmpfs, where there is one), the file is copied.
        let shm = std::path::Path::new("/dev/shm");
        let other = |a: &Path, b: &Path| {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(a).unwrap().dev() != std::fs::metadata(b).unwrap().dev()
        };
        if shm.is_dir() && other(shm, dir.path()) {
            let elsewhere = tempfile::NamedTempFile::new_in(shm).unwrap();
            std::fs::write(elsewhere.path(), "far\n").unwrap();
            store
                .take_file("builds/p/b2/build.log", elsewhere.path(), &meta)
                .unwrap();
            assert_eq!(
                store.get("builds/p/b2/build.log").unwrap().as_deref(),
                Some(&b"far\n"[..])
            );
        }
    }

    #[test]
    fn objects_appear_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let meta = ObjectMeta {
            content_type: "application/zip".into(),
            metadata: vec![("build-id".into(), "b1".into())],
        };
        let mut writer = store.writer("a/b/c.zip", &meta).unwrap();
        writer.write_all(b"half").unwrap();
        assert_eq!(
            store.get("a/b/c.zip").unwrap(),
            None,
            "not visible before commit"
        );
        let uri = writer.commit().unwrap();
        assert!(uri.starts_with("file://") && uri.ends_with("a/b/c.zip"));
        assert_eq!(
            store.get("a/b/c.zip").unwrap().as_deref(),
            Some(&b"half"[..])
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a/b/c.zip.meta")).unwrap(),
            "build-id: b1\n"
        );

        let dropped = store.writer("a/b/d.zip", &ObjectMeta::default()).unwrap();
        drop(dropped);
        assert_eq!(store.list("a/").unwrap(), ["a/b/c.zip"]);
        assert_eq!(store.list("a/b/c").unwrap(), ["a/b/c.zip"]);
        assert!(store.list("zzz/").unwrap().is_empty());
        assert!(store.put("../x", b"", &ObjectMeta::default()).is_err());

        // Claims: the first wins, the second sees the first's bytes; delete frees the name.
        let none = ObjectMeta::default();
        assert!(store.put_if_absent("claims/k", b"first", &none).unwrap());
        assert!(!store.put_if_absent("claims/k", b"second", &none).unwrap());
        assert_eq!(
            store.get("claims/k").unwrap().as_deref(),
            Some(&b"first"[..])
        );
        store.delete("claims/k").unwrap();
        store.delete("claims/k").unwrap();
        assert!(store.put_if_absent("claims/k", b"third", &none).unwrap());
    }
}
