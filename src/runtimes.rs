//! The build image's runtimes: the manifest each pushbuild image carries (`images/*/runtimes.json`,
//! installed in `/opt/pushbuild/runtimes`), and `runtime-versions` chosen from it as CodeBuild
//! chooses them: a named version, `latest` (the newest), or the image's default for every runtime
//! the buildspec does not name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where pushbuild's images put their manifests (`PUSHBUILD_RUNTIMES_DIR` overrides it).
pub const DEFAULT_DIR: &str = "/opt/pushbuild/runtimes";

/// One manifest file: the image variant that installed it and its runtimes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub image: String,
    pub runtimes: BTreeMap<String, Runtime>,
}

/// A runtime (`nodejs`, `python`, `java`, …): its versions and the one used when a build names
/// none.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    pub default: String,
    pub versions: BTreeMap<String, Version>,
}

/// One version of a runtime: the directory of its commands (put first on `PATH` when it is
/// selected) and the variables it sets (`JAVA_HOME`, `GOROOT`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Version {
    pub path: PathBuf,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The commands in `path` and what each runs (read when the image is built).
    pub commands: BTreeMap<String, Vec<String>>,
    /// How the image build checks the version (read when the image is built).
    pub probe: Probe,
}

/// A command whose output must contain `expect` (checked when the image is built).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    pub expect: String,
}

/// The runtimes of an image: every manifest in its runtimes directory, merged (a custom image
/// adds a file beside its base image's).
#[derive(Debug, Default)]
pub struct Runtimes {
    images: Vec<String>,
    runtimes: BTreeMap<String, Runtime>,
}

/// A manifest that cannot be read, naming the file and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("the runtimes manifest {}: {message}", path.display())]
pub struct ManifestError {
    pub path: PathBuf,
    pub message: String,
}

/// One runtime's version for a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub runtime: String,
    pub version: String,
    /// Named by the buildspec (`runtime-versions`), not the image's default.
    pub manual: bool,
    pub path: PathBuf,
    pub env: Vec<(String, String)>,
}

impl Runtimes {
    /// The manifests in `dir` (`*.json`, in name order); `None` when `dir` does not exist (the
    /// function's zip deployment, or a machine of one's own).
    pub fn load(dir: &Path) -> Result<Option<Runtimes>, ManifestError> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => {
                return Err(ManifestError {
                    path: dir.to_path_buf(),
                    message: format!("cannot list the directory: {err}"),
                });
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
        files.sort();
        let mut all = Runtimes::default();
        for path in files {
            let error = |message: String| ManifestError {
                path: path.clone(),
                message,
            };
            let text = std::fs::read(&path).map_err(|err| error(err.to_string()))?;
            let manifest: Manifest =
                serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&text))
                    .map_err(|err| error(format!("at {}: {}", err.path(), err.inner())))?;
            all.add(manifest).map_err(error)?;
        }
        Ok(Some(all))
    }

    /// Adds a manifest's runtimes; a runtime already known gains the manifest's versions and
    /// default.
    pub fn add(&mut self, manifest: Manifest) -> Result<(), String> {
        for (name, runtime) in &manifest.runtimes {
            if !runtime.versions.contains_key(&runtime.default) {
                return Err(format!(
                    "runtimes.{name}.default: {} is not one of its versions ({})",
                    runtime.default,
                    names(runtime.versions.keys())
                ));
            }
            for (version, v) in &runtime.versions {
                if !v.path.is_absolute() {
                    return Err(format!(
                        "runtimes.{name}.versions.{version}.path: an absolute directory, not {}",
                        v.path.display()
                    ));
                }
            }
        }
        self.images.push(manifest.image);
        for (name, runtime) in manifest.runtimes {
            match self.runtimes.get_mut(&name) {
                Some(known) => {
                    known.default = runtime.default;
                    known.versions.extend(runtime.versions);
                }
                None => {
                    self.runtimes.insert(name, runtime);
                }
            }
        }
        Ok(())
    }

    /// The image variants whose manifests were read.
    pub fn images(&self) -> &[String] {
        &self.images
    }

    /// The version of every runtime for a build whose buildspec asks for `wanted` (its
    /// `runtime-versions`, in file order): the named version, the newest for `latest` (or for a
    /// major version like `3` or `20.x`), the image's default for the others. A runtime or
    /// version the image lacks is an error naming what it has, in CodeBuild's words.
    pub fn select(&self, wanted: &[(String, String)]) -> Result<Vec<Chosen>, String> {
        let mut chosen = Vec::new();
        for (name, asked) in wanted {
            let Some(runtime) = self.runtimes.get(name) else {
                return Err(format!(
                    "Unknown runtime named '{name}'. This build image has the following runtimes: {}",
                    if self.runtimes.is_empty() {
                        "none".to_string()
                    } else {
                        names(self.runtimes.keys())
                    }
                ));
            };
            let version = pick(runtime, asked.trim()).ok_or_else(|| {
                format!(
                    "Unknown runtime version named '{asked}' of {name}. This build image has the \
                     following versions: {}",
                    names(newest_first(runtime))
                )
            })?;
            if !chosen.iter().any(|c: &Chosen| &c.runtime == name) {
                chosen.push(Chosen::of(name, version, &runtime.versions[version], true));
            }
        }
        for (name, runtime) in &self.runtimes {
            if !chosen.iter().any(|c| &c.runtime == name) {
                let version = &runtime.default;
                chosen.push(Chosen::of(name, version, &runtime.versions[version], false));
            }
        }
        Ok(chosen)
    }
}

impl Chosen {
    fn of(runtime: &str, version: &str, v: &Version, manual: bool) -> Chosen {
        Chosen {
            runtime: runtime.to_string(),
            version: version.to_string(),
            manual,
            path: v.path.clone(),
            env: v.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }
    }
}

/// What the chosen versions set in a build's environment, in order (a later name wins): their
/// variables, then `PATH` with their directories first (the first chosen first) before `path`,
/// the build's own.
pub fn variables(chosen: &[Chosen], path: &str) -> Vec<(String, String)> {
    let mut dirs: Vec<String> = chosen
        .iter()
        .map(|c| c.path.display().to_string())
        .collect();
    if !path.is_empty() {
        dirs.push(path.to_string());
    }
    let mut vars: Vec<(String, String)> = chosen
        .iter()
        .flat_map(|c| c.env.iter().map(|(k, v)| (k.clone(), v.clone())))
        .collect();
    vars.push(("PATH".to_string(), dirs.join(":")));
    vars
}

/// The version `asked` names: itself, the newest for `latest`, or the newest whose leading
/// numbers are `asked`'s (`3` → `3.13`, `20.x` → `20`).
fn pick<'r>(runtime: &'r Runtime, asked: &str) -> Option<&'r str> {
    if let Some((version, _)) = runtime.versions.get_key_value(asked) {
        return Some(version);
    }
    let mut newest = newest_first(runtime);
    if asked == "latest" {
        return newest.next();
    }
    let major = asked.strip_suffix(".x").unwrap_or(asked);
    if major.is_empty() || major.chars().any(|c| !(c.is_ascii_digit() || c == '.')) {
        return None;
    }
    let prefix = numbers(major);
    newest.find(|version| numbers(version).starts_with(&prefix))
}

/// A runtime's versions, newest first (by their numbers: `corretto21` after `corretto17`,
/// `3.13` after `3.9`).
fn newest_first(runtime: &Runtime) -> impl Iterator<Item = &str> {
    let mut versions: Vec<&str> = runtime.versions.keys().map(String::as_str).collect();
    versions.sort_by_key(|v| std::cmp::Reverse(numbers(v)));
    versions.into_iter()
}

/// The numbers in a version name, in order: `corretto17` → [17], `3.12` → [3, 12].
fn numbers(version: &str) -> Vec<u64> {
    version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|part| !part.is_empty())
        .map(|part| part.parse().unwrap_or(u64::MAX))
        .collect()
}

fn names<'a>(items: impl Iterator<Item = impl AsRef<str> + 'a>) -> String {
    items
        .map(|s| s.as_ref().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
#[path = "runtimes_tests.rs"]
mod tests;
