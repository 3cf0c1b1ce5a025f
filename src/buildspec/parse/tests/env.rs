//! Tests of the `env` section and the legacy `environment_variables` form.

use super::*;

#[test]
fn shells() {
    let shell = |name: &str| ok(&format!("{HEAD}env:\n  shell: {name}\n")).spec.env.shell;
    assert_eq!(shell("bash"), Shell::Bash);
    assert_eq!(shell("sh"), Shell::Sh);
    assert_eq!(shell("/bin/sh"), Shell::Sh);
    assert_eq!(ok(HEAD).spec.env.shell, Shell::Bash);
    for windows in [
        "powershell.exe",
        "powershell",
        "pwsh",
        "cmd.exe",
        "cmd",
        "PowerShell.exe",
    ] {
        let src = format!("{HEAD}env:\n  shell: {windows}\n");
        case(&src, 3, "env.shell", "bash or /bin/sh", "Windows shell");
    }
    case(
        &format!("{HEAD}env:\n  shell: zsh\n"),
        3,
        "env.shell",
        "bash or /bin/sh",
        "`zsh`",
    );
    case(
        &format!("{HEAD}env:\n  shell: [bash]\n"),
        3,
        "env.shell",
        "bash",
        "a list",
    );
}

#[test]
fn variables_keep_source_text() {
    let src = format!(
        "{HEAD}env:\n  variables:\n    A: 1.10\n    B: true\n    C: yes\n    D: 010\n    E: \"x: y\"\n    F: ~\n    _g1: |\n      two\nphases: {{}}\n"
    );
    let parsed = ok(&src);
    let vars: Vec<(&str, &str)> = parsed
        .spec
        .env
        .variables
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        vars,
        [
            ("A", "1.10"),
            ("B", "true"),
            ("C", "yes"),
            ("D", "010"),
            ("E", "x: y"),
            ("F", ""),
            ("_g1", "two\n")
        ]
    );
    assert_eq!(parsed.warnings.len(), 1, "{:?}", parsed.warnings);
    assert_eq!(parsed.warnings[0].path, "env.variables.F");

    let src = format!(
        "{HEAD}env:\n  parameter-store:\n    TOKEN: /ci/token\n  secrets-manager:\n    PW: db:password\n  exported-variables: [A, B_2]\n  git-credential-helper: yes\n"
    );
    let env = ok(&src).spec.env;
    assert_eq!(
        env.parameter_store,
        [("TOKEN".to_string(), "/ci/token".to_string())]
    );
    assert_eq!(
        env.secrets_manager,
        [("PW".to_string(), "db:password".to_string())]
    );
    assert_eq!(env.exported_variables, ["A", "B_2"]);
    assert!(env.git_credential_helper);
}

#[test]
fn variable_errors() {
    let env = |body: &str| format!("{HEAD}env:\n{body}");
    case(
        &env("  variables:\n    FOO:\n      a: 1\n"),
        5,
        "env.variables.FOO",
        "a single value",
        "a mapping",
    );
    case(
        &env("  variables:\n    OK: 1\n    FOO: [1, 2]\n"),
        5,
        "env.variables.FOO",
        "a single value",
        "a list",
    );
    case(
        &env("  variables:\n    1FOO: x\n"),
        4,
        "env.variables.1FOO",
        "shell variable name",
        "`1FOO`",
    );
    case(
        &env("  variables:\n    FOO-BAR: x\n"),
        4,
        "env.variables.FOO-BAR",
        "shell variable name",
        "`FOO-BAR`",
    );
    case(
        &env("  parameter-store:\n    a.b: x\n"),
        4,
        "env.parameter-store.a.b",
        "shell variable name",
        "`a.b`",
    );
    case(
        &env("  variables: [A]\n"),
        3,
        "env.variables",
        "a mapping of variable names",
        "a list",
    );
    case(
        &env("  exported-variables:\n    - A\n    - B C\n"),
        5,
        "env.exported-variables[1]",
        "shell variable name",
        "`B C`",
    );
    case(
        &env("  exported-variables: $X\n"),
        3,
        "env.exported-variables",
        "shell variable name",
        "`$X`",
    );
    case(
        &env("  git-credential-helper: maybe\n"),
        3,
        "env.git-credential-helper",
        "yes or no",
        "`maybe`",
    );
    case(
        &env("  - shell\n"),
        3,
        "env",
        "a mapping of env settings",
        "a list",
    );
}

#[test]
fn booleans() {
    for (text, want) in [
        ("yes", true),
        ("Yes", true),
        ("TRUE", true),
        ("on", true),
        ("'yes'", true),
    ]
    .into_iter()
    .chain([
        ("no", false),
        ("NO", false),
        ("false", false),
        ("Off", false),
    ]) {
        let src = format!("{HEAD}proxy:\n  logs: {text}\n");
        assert_eq!(ok(&src).spec.proxy.map(|p| p.logs), Some(want), "{text}");
    }
    case(
        &format!("{HEAD}proxy:\n  logs: 1\n"),
        3,
        "proxy.logs",
        "yes or no",
        "`1`",
    );
    case(
        &format!("{HEAD}proxy:\n  logs:\n"),
        3,
        "proxy.logs",
        "yes or no",
        "nothing",
    );
}

#[test]
fn legacy_environment_variables() {
    let src = format!(
        "{HEAD}environment_variables:\n  plaintext:\n    A: 1\n    B: x\nenv:\n  variables:\n    B: y\nphases: {{}}\n"
    );
    let parsed = ok(&src);
    let vars = parsed.spec.env.variables;
    assert_eq!(
        vars,
        [
            ("B".to_string(), "y".to_string()),
            ("A".to_string(), "1".to_string())
        ]
    );
    let messages: Vec<(&str, usize)> = parsed
        .warnings
        .iter()
        .map(|w| (w.path.as_str(), w.line))
        .collect();
    assert_eq!(
        messages,
        [
            ("environment_variables", 2),
            ("environment_variables.plaintext.B", 1)
        ]
    );
    assert!(parsed.warnings[0].message.contains("env.variables"));
}

#[test]
fn a_nul_byte_in_a_value_is_refused_naming_the_variable() {
    case(
        &format!("{HEAD}env:\n  variables:\n    OK: fine\n    BAD: \"a\\0b\"\n"),
        5,
        "env.variables.BAD",
        "without a NUL byte",
        "a NUL byte",
    );
}
