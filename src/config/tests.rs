//! Settings: defaults, each accepted value, and each bad value's message.

use super::*;
use crate::cost::Arch;

/// Reads the settings from a table: the bucket plus `vars` (a later entry wins).
fn read(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let mut table = vec![("PUSHBUILD_BUCKET", "pushbuild-artifacts")];
    table.extend_from_slice(vars);
    Config::from_vars(|name| {
        table
            .iter()
            .rev()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    })
}

#[track_caller]
fn ok(vars: &[(&str, &str)]) -> Config {
    read(vars).unwrap_or_else(|err| panic!("{vars:?}: {err}"))
}

/// One bad setting and the whole message it gives.
#[track_caller]
fn case(name: &str, value: &str, message: &str) {
    match read(&[(name, value)]) {
        Err(err) => assert_eq!(err.to_string(), message, "{name}={value:?}"),
        Ok(config) => panic!("{name}={value:?} was accepted: {config:?}"),
    }
}

#[test]
fn defaults() {
    let config = ok(&[]);
    assert_eq!(
        config,
        Config {
            bucket: "pushbuild-artifacts".into(),
            buildspec: "buildspec.yml".into(),
            upload_reserve: Duration::from_secs(30),
            codecommit_git: true,
            codecommit_git_url: None,
            codebuild: Default::default(),
            cache: Default::default(),
            batch: true,
            supersede: Default::default(),
            notify_url: None,
            badges: false,
            event_bus: None,
            live_log: Some(Duration::from_secs(5)),
            index_table: None,
            source_concurrency: 32,
            s3_path_style: false,
            work_dir: PathBuf::from("/tmp/pushbuild"),
            runtimes_dir: PathBuf::from("/opt/pushbuild/runtimes"),
            price: Price::lambda(2048, Arch::Arm64),
            namespace: "PushBuild".into(),
            monthly_minutes: None,
            billing_minute: Duration::from_secs(60),
            repository_minutes: Vec::new(),
            webhooks: crate::webhook::WebhookSettings {
                filter_groups: crate::webhook::FilterGroups::default(),
                fork_pull_requests: false,
                github: crate::webhook::HostSettings {
                    host: crate::trigger::Host::GitHub,
                    url: "https://github.com".into(),
                    api_url: "https://api.github.com".into(),
                    webhook_secret: None,
                    signing_secret: None,
                    token: None,
                    repositories: Vec::new(),
                },
                gitlab: crate::webhook::HostSettings {
                    host: crate::trigger::Host::GitLab,
                    url: "https://gitlab.com".into(),
                    api_url: "https://gitlab.com/api/v4".into(),
                    webhook_secret: None,
                    signing_secret: None,
                    token: None,
                    repositories: Vec::new(),
                },
                bitbucket: crate::webhook::HostSettings {
                    host: crate::trigger::Host::Bitbucket,
                    url: "https://bitbucket.org".into(),
                    api_url: "https://api.bitbucket.org".into(),
                    webhook_secret: None,
                    signing_secret: None,
                    token: None,
                    repositories: Vec::new(),
                },
            },
            git: GitSettings {
                clone_depth: 1,
                submodules: false,
                spare_files: None,
                status_context: "pushbuild".into(),
                status_target_url: None,
                public_url: None,
            },
            secrets_arn: None,
            ui_token: None,
        }
    );
    let dirs = config.build_dirs("b1");
    assert_eq!(dirs.src, PathBuf::from("/tmp/pushbuild/builds/b1/src"));
    assert_eq!(dirs.home, PathBuf::from("/tmp/pushbuild/builds/b1/home"));
    assert_eq!(
        ok(&[("PUSHBUILD_SOURCE_CONCURRENCY", "")]).source_concurrency,
        32
    );
    assert_eq!(
        ok(&[("PUSHBUILD_BUILDSPEC", "  ")]).buildspec,
        "buildspec.yml"
    );
}

#[test]
fn values_are_read() {
    let config = ok(&[
        ("PUSHBUILD_BUILDSPEC", "ci/build.yml"),
        ("PUSHBUILD_UPLOAD_RESERVE_SECONDS", "1"),
        ("PUSHBUILD_SOURCE_CONCURRENCY", " 256 "),
        ("PUSHBUILD_S3_PATH_STYLE", "TRUE"),
        ("PUSHBUILD_WORK_DIR", "/mnt/efs/work"),
        ("PUSHBUILD_NAMESPACE", "Team/CI"),
        ("PUSHBUILD_MONTHLY_MINUTES", "0"),
        ("PUSHBUILD_BILLING_MINUTE_MS", "50"),
    ]);
    assert_eq!(config.buildspec, "ci/build.yml");
    assert_eq!(config.upload_reserve, Duration::from_secs(1));
    assert_eq!(config.source_concurrency, 256);
    assert!(config.s3_path_style);
    assert_eq!(config.work_dir, PathBuf::from("/mnt/efs/work"));
    assert_eq!(config.namespace, "Team/CI");
    assert_eq!(config.monthly_minutes, Some(0));
    assert_eq!(config.billing_minute, Duration::from_millis(50));
    assert!(!ok(&[("PUSHBUILD_S3_PATH_STYLE", "false")]).s3_path_style);
}

#[test]
fn price_comes_from_the_setting_or_the_function() {
    let price = |vars: &[(&str, &str)]| ok(vars).price;
    assert_eq!(
        price(&[("PUSHBUILD_PRICE_PER_MINUTE", "0.0016")]),
        Price::per_minute(0.0016)
    );
    assert_eq!(
        price(&[
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "4096"),
            ("PUSHBUILD_ARCH", "x86_64")
        ]),
        Price::lambda(4096, Arch::X86_64)
    );
    assert_eq!(
        price(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")]),
        Price::lambda(1024, Arch::Arm64)
    );
}

#[test]
fn a_missing_bucket_says_what_it_is_for() {
    let err = Config::from_vars(|_| None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "PUSHBUILD_BUCKET is required: the S3 bucket that receives build artifacts, logs and \
         records"
    );
    let blank = Config::from_vars(|name| (name == "PUSHBUILD_BUCKET").then(String::new));
    assert!(matches!(blank, Err(ConfigError::Missing { .. })));
}

#[test]
fn bad_values_name_the_variable_and_what_was_expected() {
    const BUCKET: &str = "PUSHBUILD_BUCKET: expected an S3 bucket name: 3 to 63 lowercase \
                          letters, digits, `.` or `-`, starting and ending with a letter or digit \
                          (not an s3:// URL or an ARN)";
    for bucket in [
        "s3://b",
        "ab",
        "My-Bucket",
        "a..b",
        "-abc",
        "abc.",
        "192.168.1.10",
    ] {
        case(
            "PUSHBUILD_BUCKET",
            bucket,
            &format!("{BUCKET}, found {bucket:?}"),
        );
    }
    case(
        "PUSHBUILD_BUCKET",
        &"a".repeat(64),
        &format!("{BUCKET}, found {:?}", "a".repeat(64)),
    );
    case(
        "PUSHBUILD_BUILDSPEC",
        "../b.yml",
        "PUSHBUILD_BUILDSPEC: expected a relative path in the repository such as \
         `buildspec.yml` (the path leaves the repository with `..`), found \"../b.yml\"",
    );
    case(
        "PUSHBUILD_BUILDSPEC",
        "/b.yml",
        "PUSHBUILD_BUILDSPEC: expected a relative path in the repository such as \
         `buildspec.yml` (the path is absolute), found \"/b.yml\"",
    );
    for reserve in ["0", "901", "-1", "1.5", "soon"] {
        case(
            "PUSHBUILD_UPLOAD_RESERVE_SECONDS",
            reserve,
            &format!(
                "PUSHBUILD_UPLOAD_RESERVE_SECONDS: expected a whole number from 1 to 900, \
                 found {reserve:?}"
            ),
        );
    }
    for concurrency in ["lots", "0", "257"] {
        case(
            "PUSHBUILD_SOURCE_CONCURRENCY",
            concurrency,
            &format!(
                "PUSHBUILD_SOURCE_CONCURRENCY: expected a whole number from 1 to 256, \
                 found {concurrency:?}"
            ),
        );
    }
    case(
        "PUSHBUILD_S3_PATH_STYLE",
        "yes",
        "PUSHBUILD_S3_PATH_STYLE: expected true or false, found \"yes\"",
    );
    case(
        "PUSHBUILD_WORK_DIR",
        "work",
        "PUSHBUILD_WORK_DIR: expected an absolute path, found \"work\"",
    );
    for price in ["-0.1", "free", "NaN", "inf", "1e307", "1000.5"] {
        case(
            "PUSHBUILD_PRICE_PER_MINUTE",
            price,
            &format!(
                "PUSHBUILD_PRICE_PER_MINUTE: expected a price in USD per build minute from 0 to \
                 1000, such as 0.0016, found {price:?}"
            ),
        );
    }
    case(
        "PUSHBUILD_ARCH",
        "aarch64",
        "PUSHBUILD_ARCH: expected arm64 or x86_64, found \"aarch64\"",
    );
    case(
        "PUSHBUILD_NAMESPACE",
        "AWS/Lambda",
        "PUSHBUILD_NAMESPACE: expected a CloudWatch namespace: up to 255 letters, digits, \
         spaces or `. - _ / # :`, not starting with `AWS/`, found \"AWS/Lambda\"",
    );
    case(
        "PUSHBUILD_MONTHLY_MINUTES",
        "1e3",
        "PUSHBUILD_MONTHLY_MINUTES: expected a whole number, found \"1e3\"",
    );
    for minute in ["0", "60001", "1m"] {
        case(
            "PUSHBUILD_BILLING_MINUTE_MS",
            minute,
            &format!(
                "PUSHBUILD_BILLING_MINUTE_MS: expected a whole number from 1 to 60000, \
                 found {minute:?}"
            ),
        );
    }
}

#[test]
fn repository_minutes_are_caps_per_repository() {
    let config = ok(&[
        ("PUSHBUILD_MONTHLY_MINUTES", "900"),
        ("PUSHBUILD_REPOSITORY_MINUTES", " web=600, api = 120 ,"),
    ]);
    let caps = vec![("web".to_string(), 600), ("api".to_string(), 120)];
    assert_eq!(config.repository_minutes, caps);
    assert_eq!(
        config.budget(),
        crate::billing::Budget {
            monthly_minutes: Some(900),
            per_repository: caps,
        }
    );
    assert!(ok(&[]).repository_minutes.is_empty());
    let expected = "PUSHBUILD_REPOSITORY_MINUTES: expected `repository=minutes` items separated \
                    by commas, such as `web=600,api=120`";
    for (value, item) in [
        ("web", "web"),
        ("web=600,api", "api"),
        ("web=ten", "web=ten"),
        ("=5", "=5"),
        ("a/b=5", "a/b=5"),
        ("web=-1", "web=-1"),
    ] {
        case(
            "PUSHBUILD_REPOSITORY_MINUTES",
            value,
            &format!("{expected}, found {item:?}"),
        );
    }
    case(
        "PUSHBUILD_REPOSITORY_MINUTES",
        "web=1,web=2",
        "PUSHBUILD_REPOSITORY_MINUTES: expected each repository once (`web` is given twice), \
         found \"web=2\"",
    );
}

#[test]
fn aws_values_are_never_shown() {
    for memory in ["2GB", "64", "99999"] {
        case(
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            memory,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE: expected the function's memory in MB, a whole \
             number from 128 to 10240",
        );
    }
}

#[test]
fn webhook_settings_are_read_and_their_errors_name_the_setting() {
    let config = ok(&[
        ("PUSHBUILD_FORK_PULL_REQUESTS", "build"),
        ("PUSHBUILD_GITHUB_URL", "https://github.example.com/"),
        ("PUSHBUILD_GITHUB_REPOSITORIES", "octo-org/*, me/app"),
        ("PUSHBUILD_GITHUB_TOKEN", "ghp_secret_value"),
        ("PUSHBUILD_GIT_CLONE_DEPTH", "0"),
    ]);
    assert!(config.webhooks.fork_pull_requests);
    assert_eq!(config.webhooks.github.url, "https://github.example.com");
    assert_eq!(config.webhooks.github.project_host(), "github.example.com");
    // A port in the host's URL stays in its projects' names.
    let on_a_port = ok(&[("PUSHBUILD_GITLAB_URL", "http://git.example.com:8443/")]);
    assert_eq!(
        on_a_port.webhooks.gitlab.project_host(),
        "git.example.com:8443"
    );
    assert_eq!(
        on_a_port
            .webhooks
            .gitlab
            .project("team/app")
            .unwrap()
            .as_str(),
        "git.example.com:8443/team/app"
    );
    assert_eq!(
        config.webhooks.github.repositories,
        ["octo-org/*", "me/app"]
    );
    assert_eq!(config.git.clone_depth, 0);
    assert!(!format!("{config:?}").contains("ghp_secret_value"));
    case(
        "PUSHBUILD_FILTER_GROUPS",
        r#"[[{"type": "EVENT", "pattern": "PUSH"}, {"type": "HEAD_REF", "pattern": "("}]]"#,
        "PUSHBUILD_FILTER_GROUPS: group 1, filter 2 (HEAD_REF): the pattern is not a regular \
         expression: regex parse error:\n    (\n    ^\nerror: unclosed group",
    );
    case(
        "PUSHBUILD_FORK_PULL_REQUESTS",
        "yes",
        "PUSHBUILD_FORK_PULL_REQUESTS: expected `build` (pull requests from forks are built) or \
         `skip` (the default), found \"yes\"",
    );
    case(
        "PUSHBUILD_GITHUB_URL",
        "https://user:pw@github.com",
        "PUSHBUILD_GITHUB_URL: expected an http:// or https:// URL without credentials in it, \
         such as https://github.example.com",
    );
    case(
        "PUSHBUILD_GITHUB_REPOSITORIES",
        "octo-org",
        "PUSHBUILD_GITHUB_REPOSITORIES: expected `owner/repo` or `owner/*` items separated by \
         commas, found \"octo-org\"",
    );
}

#[test]
fn the_index_table_is_a_dynamodb_table_name_and_the_function_requires_it() {
    assert_eq!(
        ok(&[("PUSHBUILD_INDEX_TABLE", " pushbuild-index.v2_a ")])
            .require_index_table()
            .unwrap(),
        "pushbuild-index.v2_a"
    );
    let missing = ok(&[]).require_index_table().unwrap_err().to_string();
    assert!(
        missing.starts_with("PUSHBUILD_INDEX_TABLE is required: the DynamoDB table"),
        "{missing}"
    );
    for table in [
        "ab",
        "my table",
        "arn:aws:dynamodb:us-east-1:1:table/t",
        &"t".repeat(256),
    ] {
        let err = Config::from_vars(|name| match name {
            "PUSHBUILD_BUCKET" => Some("pushbuild-artifacts".to_string()),
            "PUSHBUILD_INDEX_TABLE" => Some(table.to_string()),
            _ => None,
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("PUSHBUILD_INDEX_TABLE: expected a DynamoDB table name"),
            "{table}: {err}"
        );
    }
}

#[test]
fn the_codecommit_git_switch_is_true_or_false() {
    assert!(ok(&[]).codecommit_git);
    assert!(!ok(&[("PUSHBUILD_CODECOMMIT_GIT", "FALSE")]).codecommit_git);
    let err = Config::from_vars(|name| match name {
        "PUSHBUILD_BUCKET" => Some("pushbuild-artifacts".to_string()),
        "PUSHBUILD_CODECOMMIT_GIT" => Some("yes".to_string()),
        _ => None,
    })
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "PUSHBUILD_CODECOMMIT_GIT: expected true or false, found \"yes\""
    );
}

#[test]
fn codebuild_settings_are_read_and_checked() {
    let config = ok(&[
        ("PUSHBUILD_CODEBUILD_PROJECT", "pushbuild-overflow"),
        (
            "PUSHBUILD_CODEBUILD_REPOSITORIES",
            "big-repo, github.com/octo/app",
        ),
        ("PUSHBUILD_CODEBUILD_COMPUTE_TYPE", "BUILD_GENERAL1_LARGE"),
        ("PUSHBUILD_CODEBUILD_TIMEOUT_MINUTES", "120"),
    ]);
    let codebuild = &config.codebuild;
    assert_eq!(codebuild.project.as_deref(), Some("pushbuild-overflow"));
    let names: Vec<&str> = codebuild.repositories.iter().map(|r| r.as_str()).collect();
    assert_eq!(names, ["big-repo", "github.com/octo/app"]);
    assert_eq!(codebuild.compute_type.as_str(), "BUILD_GENERAL1_LARGE");
    assert_eq!(codebuild.timeout_minutes, 120);
    case(
        "PUSHBUILD_CODEBUILD_PROJECT",
        "my project",
        "PUSHBUILD_CODEBUILD_PROJECT: expected a CodeBuild project name (2 to 255 letters, \
         digits, `-` and `_`, starting with a letter or digit), found \"my project\"",
    );
    case(
        "PUSHBUILD_CODEBUILD_REPOSITORIES",
        "big-repo",
        "PUSHBUILD_CODEBUILD_REPOSITORIES: expected to be set with PUSHBUILD_CODEBUILD_PROJECT, \
         the project their builds run in, found \"big-repo\"",
    );
    case(
        "PUSHBUILD_CODEBUILD_COMPUTE_TYPE",
        "BUILD_GENERAL1_HUGE",
        "PUSHBUILD_CODEBUILD_COMPUTE_TYPE: expected one of BUILD_GENERAL1_SMALL, \
         BUILD_GENERAL1_MEDIUM, BUILD_GENERAL1_LARGE, BUILD_GENERAL1_XLARGE, \
         BUILD_GENERAL1_2XLARGE, found \"BUILD_GENERAL1_HUGE\"",
    );
    case(
        "PUSHBUILD_CODEBUILD_TIMEOUT_MINUTES",
        "3",
        "PUSHBUILD_CODEBUILD_TIMEOUT_MINUTES: expected a whole number from 5 to 2160, found \"3\"",
    );
    case(
        "PUSHBUILD_RUNTIMES_DIR",
        "opt/runtimes",
        "PUSHBUILD_RUNTIMES_DIR: expected an absolute path, found \"opt/runtimes\"",
    );
}

#[test]
fn the_status_link_defaults_to_the_builds_page_under_the_public_url() {
    let config = ok(&[("PUSHBUILD_PUBLIC_URL", "https://ci.example.com/")]);
    assert_eq!(
        config.git.status_target_url.as_deref(),
        Some("https://ci.example.com/builds/${PUSHBUILD_PROJECT}/${PUSHBUILD_BUILD_ID}")
    );
    let config = ok(&[
        ("PUSHBUILD_PUBLIC_URL", "https://ci.example.com"),
        (
            "PUSHBUILD_STATUS_TARGET_URL",
            "https://elsewhere/${PUSHBUILD_BUILD_ID}",
        ),
    ]);
    assert_eq!(
        config.git.status_target_url.as_deref(),
        Some("https://elsewhere/${PUSHBUILD_BUILD_ID}")
    );
    assert!(read(&[("PUSHBUILD_PUBLIC_URL", "ci.example.com")]).is_err());
}

#[test]
fn every_boolean_setting_reads_by_one_rule() {
    // The same text means the same everywhere (the command line's `--bucket` reads
    // PUSHBUILD_S3_PATH_STYLE with this rule too).
    for (text, want) in [
        ("true", true),
        (" TRUE ", true),
        ("False", false),
        ("", false),
    ] {
        assert_eq!(
            flag("PUSHBUILD_S3_PATH_STYLE", Some(text), false),
            Ok(want),
            "{text:?}"
        );
    }
    assert_eq!(flag("PUSHBUILD_CODECOMMIT_GIT", None, true), Ok(true));
    let err = flag("PUSHBUILD_S3_PATH_STYLE", Some("yes"), false).unwrap_err();
    assert!(err.to_string().contains("PUSHBUILD_S3_PATH_STYLE"), "{err}");
    assert!(
        read(&[("PUSHBUILD_S3_PATH_STYLE", "TRUE")])
            .unwrap()
            .s3_path_style
    );
    assert!(read(&[("PUSHBUILD_GIT_SUBMODULES", "yes")]).is_err());
}

#[test]
fn spare_files_are_kept_where_they_pay_unless_set() {
    assert_eq!(ok(&[]).git.spare_files, None);
    assert_eq!(
        ok(&[("PUSHBUILD_SPARE_FILES", "auto")]).git.spare_files,
        None
    );
    assert_eq!(
        ok(&[("PUSHBUILD_SPARE_FILES", "TRUE")]).git.spare_files,
        Some(true)
    );
    assert_eq!(
        ok(&[("PUSHBUILD_SPARE_FILES", "false")]).git.spare_files,
        Some(false)
    );
    case(
        "PUSHBUILD_SPARE_FILES",
        "yes",
        "PUSHBUILD_SPARE_FILES: expected auto, true or false, found \"yes\"",
    );
}

#[test]
fn batches_run_as_batches_unless_turned_off() {
    assert!(ok(&[]).batch);
    assert!(ok(&[("PUSHBUILD_BATCH", "auto")]).batch);
    assert!(!ok(&[("PUSHBUILD_BATCH", "off")]).batch);
    case(
        "PUSHBUILD_BATCH",
        "sometimes",
        "PUSHBUILD_BATCH: expected auto or off, found \"sometimes\"",
    );
}

#[test]
fn supersede_names_the_references_it_covers() {
    use super::Supersede;
    assert_eq!(ok(&[]).supersede, Supersede::Off);
    let branch = ok(&[("PUSHBUILD_SUPERSEDE", "branch")]).supersede;
    assert!(branch.covers("refs/heads/main") && !branch.covers("refs/pull/7/head"));
    let pulls = ok(&[("PUSHBUILD_SUPERSEDE", "pull-request")]).supersede;
    assert!(pulls.covers("refs/pull/7/head") && !pulls.covers("refs/heads/main"));
    let both = ok(&[("PUSHBUILD_SUPERSEDE", "both")]).supersede;
    assert!(both.covers("refs/pull/7/head") && both.covers("refs/heads/main"));
    assert!(!both.covers("refs/tags/v1"));
    assert!(!Supersede::Off.covers("refs/heads/main"));
    case(
        "PUSHBUILD_SUPERSEDE",
        "tags",
        "PUSHBUILD_SUPERSEDE: expected off, branch, pull-request or both, found \"tags\"",
    );
}

#[test]
fn a_notify_url_is_kept_secret_and_badges_are_off_unless_asked() {
    let config = ok(&[(
        "PUSHBUILD_NOTIFY_URL",
        "https://hooks.example.com/services/T0/B0/s3cr3t",
    )]);
    assert_eq!(
        config.notify_url.as_ref().map(|u| u.expose().to_string()),
        Some("https://hooks.example.com/services/T0/B0/s3cr3t".to_string())
    );
    assert!(!format!("{config:?}").contains("s3cr3t"));
    let err = read(&[("PUSHBUILD_NOTIFY_URL", "hooks.example.com/s3cr3t")]).unwrap_err();
    assert!(
        err.to_string().contains("PUSHBUILD_NOTIFY_URL") && !err.to_string().contains("s3cr3t")
    );
    assert!(!ok(&[]).badges);
    assert!(ok(&[("PUSHBUILD_BADGES", "true")]).badges);
}

#[test]
fn an_event_bus_is_a_name_or_an_arn_and_none_when_unset() {
    assert_eq!(ok(&[]).event_bus, None);
    assert_eq!(
        ok(&[("PUSHBUILD_EVENT_BUS", "default")])
            .event_bus
            .as_deref(),
        Some("default")
    );
    let arn = "arn:aws:events:eu-west-1:123456789012:event-bus/builds";
    assert_eq!(
        ok(&[("PUSHBUILD_EVENT_BUS", arn)]).event_bus.as_deref(),
        Some(arn)
    );
    let err = read(&[("PUSHBUILD_EVENT_BUS", "my bus!")]).unwrap_err();
    assert!(
        err.to_string().contains("PUSHBUILD_EVENT_BUS") && err.to_string().contains("my bus!"),
        "{err}"
    );
}
