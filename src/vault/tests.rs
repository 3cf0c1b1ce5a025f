//! Resolving secrets against a vault of our own: CodeBuild's words for what is missing, at most
//! ten parameters a call, references with ARNs, json keys, stages and versions.

use std::sync::Mutex;

use super::*;

/// A vault holding some parameters and secrets, recording its calls.
#[derive(Default)]
struct Fake {
    parameters: Vec<(&'static str, &'static str)>,
    secrets: Vec<(&'static str, &'static str)>,
    calls: Mutex<Vec<usize>>,
    unavailable: bool,
}

impl Vault for Fake {
    fn parameters(&self, names: &[String]) -> Result<Vec<(String, String)>, VaultError> {
        self.calls.lock().unwrap().push(names.len());
        if self.unavailable {
            return Err(VaultError::Unavailable {
                service: "SSM",
                message: "throttled".into(),
            });
        }
        Ok(self
            .parameters
            .iter()
            .filter(|(n, _)| names.iter().any(|name| name == n))
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect())
    }

    fn secret(&self, reference: &SecretRef) -> Result<String, VaultError> {
        let key = match (&reference.version_stage, &reference.version_id) {
            (Some(stage), _) => format!("{}@{stage}", reference.id),
            (_, Some(id)) => format!("{}#{id}", reference.id),
            _ => reference.id.clone(),
        };
        self.secrets
            .iter()
            .find(|(id, _)| *id == key)
            .map(|(_, v)| v.to_string())
            .ok_or(VaultError::Refused {
                code: "ResourceNotFoundException".into(),
                message: format!("Secrets Manager can't find the specified secret {key}"),
            })
    }
}

fn env(parameters: &[(&str, &str)], secrets: &[(&str, &str)]) -> Env {
    let pairs = |list: &[(&str, &str)]| {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    Env {
        parameter_store: pairs(parameters),
        secrets_manager: pairs(secrets),
        ..Env::default()
    }
}

#[test]
fn references_follow_codebuilds_shape() {
    let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf";
    /// The id, and the json key, stage and version id; `Err` for a reference that is refused.
    type Parts<'a> = Result<(&'a str, Option<&'a str>, Option<&'a str>, Option<&'a str>), ()>;
    #[track_caller]
    fn case(text: &str, want: Parts<'_>) {
        let got = SecretRef::parse(text).map_err(|_| ());
        let want = want.map(|(id, key, stage, version)| SecretRef {
            id: id.to_string(),
            json_key: key.map(str::to_string),
            version_stage: stage.map(str::to_string),
            version_id: version.map(str::to_string),
        });
        assert_eq!(got, want, "{text}");
    }
    case("prod/db", Ok(("prod/db", None, None, None)));
    case(
        "prod/db:password",
        Ok(("prod/db", Some("password"), None, None)),
    );
    case(
        "prod/db:password:AWSPREVIOUS",
        Ok(("prod/db", Some("password"), Some("AWSPREVIOUS"), None)),
    );
    case(
        "prod/db::AWSPREVIOUS",
        Ok(("prod/db", None, Some("AWSPREVIOUS"), None)),
    );
    case("prod/db:::v-1", Ok(("prod/db", None, None, Some("v-1"))));
    case(arn, Ok((arn, None, None, None)));
    case(
        &format!("{arn}:password"),
        Ok((arn, Some("password"), None, None)),
    );
    case("prod/db:k:AWSCURRENT:v-1", Err(()));
    case("prod/db:a:b:c:d", Err(()));
    case(":password", Err(()));
    case("arn:aws:secretsmanager:us-east-1", Err(()));
}

#[test]
fn parameters_go_ten_a_call_and_a_missing_one_is_named_in_codebuilds_words() {
    let names: Vec<(String, String)> = (0..23)
        .map(|i| (format!("P{i}"), format!("/p/{i}")))
        .collect();
    let vault = Fake {
        parameters: Vec::new(),
        ..Fake::default()
    };
    let many = Env {
        parameter_store: names,
        ..Env::default()
    };
    let resolved = resolve(&vault, &many).unwrap();
    assert_eq!(
        resolved,
        Resolved::Refused(
            "Decrypted Variables Error Message: parameter does not exist: /p/0".into()
        )
    );
    assert_eq!(*vault.calls.lock().unwrap(), [10]);

    let vault = Fake {
        parameters: vec![("/app/token", "t0ken"), ("/app/key", "k3y")],
        ..Fake::default()
    };
    let resolved = resolve(
        &vault,
        &env(&[("TOKEN", "/app/token"), ("KEY", "/app/key")], &[]),
    );
    assert_eq!(
        resolved.unwrap(),
        Resolved::Values(vec![
            ("TOKEN".into(), "t0ken".into()),
            ("KEY".into(), "k3y".into())
        ])
    );
}

#[test]
fn secrets_give_their_whole_value_or_a_json_key_at_a_stage_or_version() {
    let vault = Fake {
        secrets: vec![
            ("plain", "just-a-value"),
            (
                "db",
                r#"{"user": "app", "password": "s3cret", "port": 5432}"#,
            ),
            ("db@AWSPREVIOUS", r#"{"password": "old"}"#),
            ("db#v-2", r#"{"password": "two"}"#),
        ],
        ..Fake::default()
    };
    let got = resolve(
        &vault,
        &env(
            &[],
            &[
                ("PLAIN", "plain"),
                ("PASSWORD", "db:password"),
                ("PORT", "db:port"),
                ("OLD", "db:password:AWSPREVIOUS"),
                ("TWO", "db:password::v-2"),
            ],
        ),
    )
    .unwrap();
    let Resolved::Values(values) = got else {
        panic!("{got:?}")
    };
    let value = |name: &str| values.iter().find(|(n, _)| n == name).unwrap().1.clone();
    assert_eq!(value("PLAIN"), "just-a-value");
    assert_eq!(value("PASSWORD"), "s3cret");
    assert_eq!(value("PORT"), "5432");
    assert_eq!(value("OLD"), "old");
    assert_eq!(value("TWO"), "two");

    let missing = resolve(&vault, &env(&[], &[("X", "nope")])).unwrap();
    assert_eq!(
        missing,
        Resolved::Refused(
            "Secrets Manager Error: ResourceNotFoundException: Secrets Manager can't find the \
             specified secret nope"
                .into()
        )
    );
    let key = resolve(&vault, &env(&[], &[("X", "db:nokey")])).unwrap();
    assert!(matches!(key, Resolved::Refused(m) if m.contains("json key nokey")));
    let both = resolve(&vault, &env(&[], &[("X", "db:password:AWSCURRENT:v-1")])).unwrap();
    assert!(matches!(both, Resolved::Refused(m) if m.starts_with("env.secrets-manager.X:")));
}

#[test]
fn an_exported_secret_is_refused_and_an_unavailable_vault_is_pushbuilds_error() {
    let mut spec = env(&[("TOKEN", "/app/token")], &[]);
    spec.exported_variables = vec!["TOKEN".into()];
    let vault = Fake::default();
    let refused = resolve(&vault, &spec).unwrap();
    assert!(
        matches!(&refused, Resolved::Refused(m) if m.contains("env.exported-variables: TOKEN")),
        "{refused:?}"
    );
    assert_eq!(from_environment(&spec, |_| Some("x".into())), refused);
    let down = Fake {
        unavailable: true,
        ..Fake::default()
    };
    assert!(matches!(
        resolve(&down, &env(&[("T", "/t")], &[])),
        Err(VaultError::Unavailable { .. })
    ));
}

#[test]
fn locally_the_values_come_from_the_environment_by_the_variables_names() {
    let spec = env(&[("TOKEN", "/app/token")], &[("DB", "prod/db")]);
    let got = from_environment(&spec, |name| (name == "TOKEN").then(|| "t".to_string()));
    assert!(matches!(got, Resolved::Refused(m) if m.contains("env.secrets-manager.DB")));
    let got = from_environment(&spec, |name| Some(format!("{name}-value")));
    assert_eq!(
        got,
        Resolved::Values(vec![
            ("TOKEN".into(), "TOKEN-value".into()),
            ("DB".into(), "DB-value".into())
        ])
    );
}
