//! The stand-in's four operations, answered from a real git repository with the `git` command
//! line, in CodeCommit's JSON shapes and with its exception names.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use base64::Engine;
use pushbuild::source::BLOB_LIMIT_BYTES;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// An error answer: the exception's name and its message (always HTTP 400, as CodeCommit does).
pub type Fault = (&'static str, String);

/// A git repository served as a CodeCommit repository.
pub struct GitRepo {
    path: PathBuf,
    /// A long-running `git cat-file --batch`, started on the first `GetBlob`.
    blobs: tokio::sync::Mutex<Option<CatFile>>,
}

impl GitRepo {
    pub fn new(path: &Path) -> GitRepo {
        GitRepo {
            path: path.to_path_buf(),
            blobs: tokio::sync::Mutex::new(None),
        }
    }

    pub async fn get_branch(&self, input: &Value) -> Result<Value, Fault> {
        let branch = field(input, "branchName")?;
        let commit = self
            .rev_parse(&format!("refs/heads/{branch}^{{commit}}"))
            .await
            .ok_or((
                "BranchDoesNotExistException",
                format!("branch {branch} does not exist"),
            ))?;
        Ok(json!({"branch": {"branchName": branch, "commitId": commit}}))
    }

    pub async fn get_commit(&self, input: &Value) -> Result<Value, Fault> {
        let id = field(input, "commitId")?;
        let missing = || {
            (
                "CommitIdDoesNotExistException",
                format!("commit {id} does not exist"),
            )
        };
        if id.len() != 40 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err((
                "InvalidCommitIdException",
                format!("{id} is not a full commit id"),
            ));
        }
        let raw = git_async(&self.path, &["cat-file", "commit", id])
            .await
            .ok_or_else(missing)?;
        let raw = String::from_utf8_lossy(&raw);
        let (headers, message) = raw.split_once("\n\n").unwrap_or((&raw, ""));
        let (mut tree, mut parents, mut author, mut committer) =
            ("", Vec::new(), json!({}), json!({}));
        for line in headers.lines() {
            match line.split_once(' ') {
                Some(("tree", t)) => tree = t,
                Some(("parent", p)) => parents.push(p),
                Some(("author", who)) => author = person(who),
                Some(("committer", who)) => committer = person(who),
                _ => {}
            }
        }
        Ok(json!({"commit": {
            "commitId": id, "treeId": tree, "parents": parents, "message": message,
            "author": author, "committer": committer, "additionalData": ""
        }}))
    }

    pub async fn get_folder(&self, input: &Value) -> Result<Value, Fault> {
        let spec = field(input, "commitSpecifier")?;
        let folder_path = field(input, "folderPath")?;
        let commit = self.rev_parse(&format!("{spec}^{{commit}}")).await.ok_or((
            "CommitDoesNotExistException",
            format!("{spec} does not exist"),
        ))?;
        let path = folder_path.trim_matches('/');
        let tree_spec = if path.is_empty() {
            format!("{commit}^{{tree}}")
        } else {
            format!("{commit}:{path}")
        };
        let no_folder = || {
            (
                "FolderDoesNotExistException",
                format!("{folder_path} does not exist"),
            )
        };
        let tree = self.rev_parse(&tree_spec).await.ok_or_else(no_folder)?;
        let kind = git_async(&self.path, &["cat-file", "-t", &tree])
            .await
            .ok_or_else(no_folder)?;
        if kind.trim_ascii() != b"tree" {
            return Err(no_folder());
        }
        let listing = git_async(&self.path, &["ls-tree", "-z", &tree])
            .await
            .ok_or_else(no_folder)?;
        let (mut folders, mut files, mut links, mut modules) = (vec![], vec![], vec![], vec![]);
        for entry in listing.split(|&b| b == 0).filter(|e| !e.is_empty()) {
            let entry = String::from_utf8_lossy(entry);
            let Some((meta, name)) = entry.split_once('\t') else {
                continue;
            };
            let mut meta = meta.split(' ');
            let (mode, _kind, id) = (meta.next(), meta.next(), meta.next().unwrap_or_default());
            let absolute = if path.is_empty() {
                name.to_string()
            } else {
                format!("{path}/{name}")
            };
            let blob = |mode: &str| json!({"blobId": id, "absolutePath": absolute, "relativePath": name, "fileMode": mode});
            match mode {
                Some("040000") => folders
                    .push(json!({"treeId": id, "absolutePath": absolute, "relativePath": name})),
                Some("100755") => files.push(blob("EXECUTABLE")),
                Some("120000") => links.push(blob("SYMLINK")),
                Some("160000") => modules
                    .push(json!({"commitId": id, "absolutePath": absolute, "relativePath": name})),
                _ => files.push(blob("NORMAL")),
            }
        }
        Ok(json!({
            "commitId": commit, "folderPath": folder_path, "treeId": tree,
            "subFolders": folders, "files": files, "symbolicLinks": links, "subModules": modules
        }))
    }

    pub async fn get_blob(&self, input: &Value) -> Result<Value, Fault> {
        let id = field(input, "blobId")?;
        let missing = || {
            (
                "BlobIdDoesNotExistException",
                format!("blob {id} does not exist"),
            )
        };
        if id.len() != 40 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(("InvalidBlobIdException", format!("{id} is not a blob id")));
        }
        let mut blobs = self.blobs.lock().await;
        if blobs.is_none() {
            *blobs =
                Some(CatFile::start(&self.path).map_err(|e| ("InternalError", e.to_string()))?);
        }
        let cat = blobs.as_mut().expect("started above");
        let (kind, content) = cat
            .read(id)
            .await
            .map_err(|e| ("InternalError", e.to_string()))?
            .ok_or_else(missing)?;
        drop(blobs);
        if kind != "blob" {
            return Err(missing());
        }
        if content.len() as u64 > BLOB_LIMIT_BYTES {
            return Err((
                "FileTooLargeException",
                format!("blob {id} is larger than 6 MB"),
            ));
        }
        Ok(json!({"content": base64::engine::general_purpose::STANDARD.encode(content)}))
    }

    async fn rev_parse(&self, spec: &str) -> Option<String> {
        let out = git_async(&self.path, &["rev-parse", "--verify", "-q", spec]).await?;
        Some(String::from_utf8_lossy(&out).trim().to_string())
    }
}

fn field<'a>(input: &'a Value, name: &str) -> Result<&'a str, Fault> {
    input[name]
        .as_str()
        .ok_or(("InvalidRequestException", format!("{name} is required")))
}

/// `Name <email> 1700000000 +0000` as CodeCommit's UserInfo.
fn person(who: &str) -> Value {
    let (name, rest) = who.split_once(" <").unwrap_or((who, ""));
    let (email, date) = rest.split_once("> ").unwrap_or((rest, ""));
    json!({"name": name, "email": email, "date": date})
}

/// Runs git in `repo`; its standard output when it succeeds.
async fn git_async(repo: &Path, args: &[&str]) -> Option<Vec<u8>> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .await
        .ok()?;
    out.status.success().then_some(out.stdout)
}

/// `git cat-file --batch`: one process answering object reads in turn.
struct CatFile {
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl CatFile {
    fn start(repo: &Path) -> std::io::Result<CatFile> {
        let mut child = Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Ok(CatFile {
            _child: child,
            stdin,
            stdout,
        })
    }

    /// The object's type and content, or `None` when the repository has no such object.
    async fn read(&mut self, id: &str) -> std::io::Result<Option<(String, Vec<u8>)>> {
        self.stdin.write_all(format!("{id}\n").as_bytes()).await?;
        self.stdin.flush().await?;
        let mut header = String::new();
        self.stdout.read_line(&mut header).await?;
        let parts: Vec<&str> = header.split_whitespace().collect();
        let [_, kind, size] = parts[..] else {
            return Ok(None);
        };
        let size: usize = size.parse().map_err(std::io::Error::other)?;
        let mut content = vec![0; size + 1]; // The object, then a newline.
        self.stdout.read_exact(&mut content).await?;
        content.pop();
        Ok(Some((kind.to_string(), content)))
    }
}
