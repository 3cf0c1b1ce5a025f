//! The small programs pushbuild puts first on every build's `PATH`, as CodeBuild's images have
//! them (`codebuild-hash-files`, `codebuild-tests-run`, `codebuild-glob-search`): bash scripts
//! that need only bash and coreutils, written once into a folder of their own.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Writes the script `text` as the program `name` in `dir`, unless the same is there already.
/// Written whole or not at all (a build starting meanwhile never runs half a script).
pub fn write_tool(dir: &Path, name: &str, text: &str) -> io::Result<()> {
    let path = dir.join(name);
    if std::fs::read(&path).is_ok_and(|old| old == text.as_bytes()) {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    let partial = tempfile::NamedTempFile::new_in(dir)?;
    std::fs::write(partial.path(), text)?;
    std::fs::set_permissions(partial.path(), std::fs::Permissions::from_mode(0o755))?;
    partial.persist(&path).map_err(|err| err.error)?;
    Ok(())
}

/// `env` with `dir` first on its `PATH`.
pub fn on_path(env: &mut Vec<(String, String)>, dir: &Path) {
    let dir = dir.display().to_string();
    match env.iter_mut().find(|(name, _)| name == "PATH") {
        Some((_, path)) if path.is_empty() => *path = dir,
        Some((_, path)) => *path = format!("{dir}:{path}"),
        None => env.push((
            "PATH".to_string(),
            format!("{dir}:/usr/local/bin:/usr/bin:/bin"),
        )),
    }
}
