//! Expanding `cache.key` and `cache.fallback-keys` as the shell expands a double-quoted word:
//! variables and `$(…)` (with `codebuild-hash-files` on the `PATH`), with the build's
//! environment, in its source folder.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::executor::find_program;

/// How long an expansion may take (a `codebuild-hash-files` over many files included).
const LIMIT: Duration = Duration::from_secs(120);
/// The longest key kept.
pub const MAX_KEY: usize = 512;

/// `text` expanded by bash in `dir` with `env`, or why it could not be.
pub fn expand(text: &str, env: &[(String, String)], dir: &Path) -> Result<String, String> {
    if !text.contains(['$', '`', '\\']) {
        return checked(text.to_string(), text);
    }
    let bash = find_program("bash", env).map_err(|err| format!("cannot expand `{text}`: {err}"))?;
    let mut child = Command::new(bash)
        .arg("-c")
        .arg(r#"eval "printf '%s' \"$PUSHBUILD_KEY_TEXT\"""#)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("PUSHBUILD_KEY_TEXT", text)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| format!("cannot expand `{text}`: {err}"))?;
    let (mut stdout, mut stderr) = (child.stdout.take(), child.stderr.take());
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let mut err = String::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.take(64 << 10).read_to_string(&mut out);
        }
        if let Some(s) = stderr.as_mut() {
            let _ = s.take(4 << 10).read_to_string(&mut err);
        }
        (out, err)
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > LIMIT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "expanding `{text}` took over {} s",
                    LIMIT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(err) => return Err(format!("cannot expand `{text}`: {err}")),
        }
    };
    let (out, err) = reader.join().unwrap_or_default();
    if !status.success() {
        let why = err
            .lines()
            .last()
            .unwrap_or("the shell failed")
            .trim()
            .to_string();
        return Err(format!("cannot expand `{text}`: {why}"));
    }
    checked(out, text)
}

fn checked(key: String, text: &str) -> Result<String, String> {
    let key = key.trim().to_string();
    if key.is_empty() {
        Err(format!("`{text}` expands to nothing"))
    } else if key.len() > MAX_KEY {
        Err(format!("`{text}` expands to more than {MAX_KEY} bytes"))
    } else if key.contains(['\n', '\0']) {
        Err(format!("`{text}` expands to more than one line"))
    } else {
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_expand_variables_and_commands_and_name_what_went_wrong() {
        let env = vec![
            ("PATH".to_string(), std::env::var("PATH").unwrap()),
            ("V".to_string(), "abc".to_string()),
        ];
        let dir = std::env::temp_dir();
        assert_eq!(
            expand("npm-$V-$(echo x y)", &env, &dir).unwrap(),
            "npm-abc-x y"
        );
        assert_eq!(expand("plain-key", &[], &dir).unwrap(), "plain-key");
        assert_eq!(
            expand("a \"quoted\" $V", &env, &dir).unwrap(),
            "a quoted abc"
        );
        let err = expand("k-$(exit 3)$(false)", &env, &dir);
        assert_eq!(err, Ok("k-".to_string()));
        let err = expand("$EMPTY", &env, &dir).unwrap_err();
        assert!(err.contains("expands to nothing"), "{err}");
        let err = expand("k-$(", &env, &dir).unwrap_err();
        assert!(err.starts_with("cannot expand `k-$(`"), "{err}");
    }
}
