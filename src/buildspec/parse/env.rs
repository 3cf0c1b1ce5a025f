//! The `env` section, and the legacy top-level `environment_variables: plaintext:` form.

use super::{Cx, Entry, Res};
use crate::buildspec::yaml::Kind;
use crate::buildspec::{Env, Shell};

const ENV_KEYS: &[&str] = &[
    "shell",
    "variables",
    "parameter-store",
    "exported-variables",
    "secrets-manager",
    "git-credential-helper",
];

/// Shells of CodeBuild's Windows images, refused with a message saying so.
const WINDOWS_SHELLS: &[&str] = &[
    "powershell.exe",
    "powershell",
    "pwsh",
    "pwsh.exe",
    "cmd.exe",
    "cmd",
];

/// What a variable name must look like.
const NAME: &str = "a shell variable name (letters, digits and `_`, not starting with a digit)";

/// Parses `env`.
pub(super) fn env(cx: &mut Cx, e: &Entry) -> Res<Env> {
    let mut env = Env::default();
    for f in cx.fields(e.value, &e.path, "a mapping of env settings", ENV_KEYS)? {
        match f.key {
            "shell" => env.shell = shell(cx, &f)?,
            "variables" => env.variables = variables(cx, &f)?,
            "parameter-store" => env.parameter_store = variables(cx, &f)?,
            "secrets-manager" => env.secrets_manager = variables(cx, &f)?,
            "exported-variables" => env.exported_variables = names(cx, &f)?,
            _ => env.git_credential_helper = cx.boolean(&f)?,
        }
    }
    Ok(env)
}

fn shell(cx: &Cx, e: &Entry) -> Res<Shell> {
    let text = e.value.as_scalar().unwrap_or_default();
    match text {
        "bash" => Ok(Shell::Bash),
        "sh" | "/bin/sh" => Ok(Shell::Sh),
        _ if WINDOWS_SHELLS.contains(&text.to_ascii_lowercase().as_str()) => Err(cx.invalid(
            &e.path,
            e.value_line(),
            "bash or /bin/sh",
            format!("`{text}`, a Windows shell (pushbuild runs Linux shells: bash, /bin/sh)"),
        )),
        _ => Err(cx.invalid(
            &e.path,
            e.value_line(),
            "bash or /bin/sh",
            e.value.describe(),
        )),
    }
}

/// A mapping of variable name ─▶ scalar text, in file order.
pub(super) fn variables(cx: &mut Cx, e: &Entry) -> Res<Vec<(String, String)>> {
    let mut out = Vec::new();
    for v in cx.pairs(e.value, &e.path, "a mapping of variable names to values")? {
        check_name(cx, v.key, &v.path, v.line)?;
        let value = match &v.value.kind {
            Kind::Scalar { text, .. } if text.contains('\0') => {
                // No process environment can carry a NUL byte; the value is not shown.
                let expected = "a value without a NUL byte (no environment can carry one)";
                return Err(cx.invalid(&v.path, v.value_line(), expected, "a NUL byte"));
            }
            Kind::Scalar { text, .. } => text.clone(),
            Kind::Null => {
                cx.warn(
                    &v.path,
                    v.line,
                    "empty value; the variable is set to the empty string",
                );
                String::new()
            }
            _ => {
                let expected = "a single value (a string, number or boolean)";
                return Err(cx.invalid(&v.path, v.value_line(), expected, v.value.describe()));
            }
        };
        out.push((v.key.to_string(), value));
    }
    Ok(out)
}

/// `exported-variables`: a list of variable names.
fn names(cx: &mut Cx, e: &Entry) -> Res<Vec<String>> {
    let names = cx.strings(e)?;
    if let Kind::Seq(items) = &e.value.kind {
        // Report a bad name on its own line.
        for (i, item) in items.iter().enumerate() {
            if let Some(name) = item.as_scalar() {
                check_name(cx, name, &format!("{}[{i}]", e.path), item.line)?;
            }
        }
    } else {
        for name in &names {
            check_name(cx, name, &e.path, e.value_line())?;
        }
    }
    Ok(names)
}

fn check_name(cx: &Cx, name: &str, path: &str, line: usize) -> Res<()> {
    if crate::names::is_variable_name(name) {
        Ok(())
    } else {
        Err(cx.invalid(path, line, NAME, format!("`{name}`")))
    }
}

/// The legacy `environment_variables: { plaintext: {NAME: value} }` form (buildspec 0.1),
/// read as `env.variables` with a warning.
pub(super) fn legacy_variables(cx: &mut Cx, e: &Entry) -> Res<Vec<(String, String)>> {
    let message = "legacy 0.1 form; read as `env.variables` (write `env: variables:` instead)";
    cx.warn(&e.path, e.line, message);
    let mut out = Vec::new();
    for f in cx.fields(
        e.value,
        &e.path,
        "a mapping with `plaintext`",
        &["plaintext"],
    )? {
        out = variables(cx, &f)?;
    }
    Ok(out)
}
