//! Build environments: the function on an image with runtimes (a manifest like those in
//! `images/`, with toolchains the test makes) honours `runtime-versions`; and `images/install`,
//! the script that lays out an image's runtimes, with a stand-in for `dnf`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::function::{Harness, MINUTE, REPO, builds};

/// A toolchain directory per version, whose `node` (or `java`) prints its name and version.
fn toolchain(root: &Path, runtime: &str, version: &str, command: &str) -> PathBuf {
    let dir = root.join(runtime).join(version).join("bin");
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join(command);
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"{command} from {runtime} {version}\"\n"),
    )
    .unwrap();
    make_executable(&script);
    dir
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn version(path: &Path, env: Value, command: &str) -> Value {
    json!({
        "path": path,
        "env": env,
        "commands": {command: ["/bin/true"]},
        "probe": {"command": command, "args": [], "expect": "from"}
    })
}

/// An image's runtimes: nodejs 20 and 22 (default 22), java corretto17 and corretto21 (default
/// corretto21, with its JAVA_HOME).
fn runtimes_dir(root: &Path) -> PathBuf {
    let tools = root.join("toolchains");
    let manifest = json!({
        "image": "test",
        "runtimes": {
            "nodejs": {"default": "22", "versions": {
                "20": version(&toolchain(&tools, "nodejs", "20", "node"), json!({}), "node"),
                "22": version(&toolchain(&tools, "nodejs", "22", "node"), json!({}), "node"),
            }},
            "java": {"default": "corretto21", "versions": {
                "corretto17": version(&toolchain(&tools, "java", "corretto17", "java"),
                    json!({"JAVA_HOME": "/jvm/17"}), "java"),
                "corretto21": version(&toolchain(&tools, "java", "corretto21", "java"),
                    json!({"JAVA_HOME": "/jvm/21"}), "java"),
            }},
        }
    });
    let dir = root.join("runtimes");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("test.json"), manifest.to_string()).unwrap();
    dir
}

const NODE_20: &str = "version: 0.2\nphases:\n  install:\n    runtime-versions:\n      nodejs: 20\n  build:\n    commands:\n      - node\n      - java\n      - echo \"java home $JAVA_HOME\"\n";
const LATEST: &str = "version: 0.2\nphases:\n  install:\n    runtime-versions:\n      nodejs: latest\n      java: corretto17\n  build:\n    commands:\n      - node\n      - java\n      - echo \"java home $JAVA_HOME\"\n";
const MISSING: &str = "version: 0.2\nphases:\n  install:\n    runtime-versions:\n      nodejs: 18\n    commands:\n      - echo install ran\n  build:\n    commands:\n      - echo build ran\n";

fn manual(h: &Harness, buildspec: &str) -> (Value, String) {
    let event =
        json!({"repository": REPO, "sourceVersion": h.head(), "buildspecOverride": buildspec});
    let builds = builds(&h.invoke(event, MINUTE));
    let id = builds[0]["buildId"]
        .as_str()
        .expect("a build id")
        .to_string();
    let log = h.log(&id);
    (h.record(&id), log)
}

#[test]
fn runtime_versions_choose_from_the_image_and_a_version_it_lacks_fails_install() {
    let root = tempfile::tempdir().unwrap();
    let dir = runtimes_dir(root.path());
    let h = Harness::start(
        &[
            ("node20.yml", NODE_20.as_bytes()),
            ("latest.yml", LATEST.as_bytes()),
            ("missing.yml", MISSING.as_bytes()),
        ],
        "runtimes",
        &[("PUSHBUILD_RUNTIMES_DIR", dir.to_str().unwrap())],
    );

    let (record, log) = manual(&h, "node20.yml");
    assert_eq!(record["status"], "SUCCEEDED", "{log}");
    assert!(
        log.contains("Selecting 'nodejs' runtime version '20' based on manual selections..."),
        "{log}"
    );
    assert!(
        log.contains("Using 'java' runtime version 'corretto21', the image's default"),
        "{log}"
    );
    assert!(log.contains("node from nodejs 20"), "{log}");
    assert!(log.contains("java from java corretto21"), "{log}");
    assert!(log.contains("java home /jvm/21"), "{log}");
    assert!(
        !log.contains("Ignoring phases.install.runtime-versions"),
        "{log}"
    );

    let (record, log) = manual(&h, "latest.yml");
    assert_eq!(record["status"], "SUCCEEDED", "{log}");
    assert!(log.contains("node from nodejs 22"), "{log}");
    assert!(log.contains("java from java corretto17"), "{log}");
    assert!(log.contains("java home /jvm/17"), "{log}");

    let (record, log) = manual(&h, "missing.yml");
    assert_eq!(record["status"], "FAILED", "{log}");
    let phases = record["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 1, "{record}");
    assert_eq!(phases[0]["phase"], "INSTALL");
    assert_eq!(
        phases[0]["message"],
        "YAML_FILE_ERROR: Unknown runtime version named '18' of nodejs. This build image has the \
         following versions: 22, 20"
    );
    assert!(!log.contains("install ran"), "{log}");
    assert!(!log.contains("build ran"), "{log}");
}

#[test]
fn without_an_image_manifest_runtime_versions_is_noted_and_the_machines_tools_run() {
    let h = Harness::start(
        &[("missing.yml", MISSING.as_bytes())],
        "no image",
        &[("PUSHBUILD_RUNTIMES_DIR", "/nonexistent/pushbuild/runtimes")],
    );
    let (record, log) = manual(&h, "missing.yml");
    assert_eq!(record["status"], "SUCCEEDED", "{log}");
    assert!(
        log.contains("Ignoring phases.install.runtime-versions (nodejs 18)"),
        "{log}"
    );
    assert!(log.contains("build ran"), "{log}");
}

/// Runs `images/install VARIANT OUT` from a copy of `images/` holding `manifest`, with a `dnf`
/// that records its arguments.
fn install(manifest: &Value) -> (std::process::Output, tempfile::TempDir) {
    let work = tempfile::tempdir().unwrap();
    let images = work.path().join("images");
    std::fs::create_dir_all(images.join("standard")).unwrap();
    std::fs::create_dir_all(images.join("fake")).unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("images");
    std::fs::copy(source.join("install"), images.join("install")).unwrap();
    std::fs::copy(
        source.join("standard/packages"),
        images.join("standard/packages"),
    )
    .unwrap();
    std::fs::write(images.join("fake/packages"), "# a comment\nfake-tool\n\n").unwrap();
    std::fs::write(images.join("fake/runtimes.json"), manifest.to_string()).unwrap();
    let bin = work.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(
        bin.join("dnf"),
        format!(
            "#!/bin/sh\necho \"$@\" >> {}/dnf.calls\n",
            work.path().display()
        ),
    )
    .unwrap();
    make_executable(&bin.join("dnf"));
    let out = Command::new("bash")
        .arg(images.join("install"))
        .arg("fake")
        .arg(work.path().join("runtimes"))
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .output()
        .unwrap();
    (out, work)
}

fn fake_manifest(work_hint: &Path, expect: &str) -> Value {
    json!({
        "image": "fake",
        "runtimes": {"tool": {"default": "2", "versions": {"2": {
            "path": work_hint.join("tc/tool/2/bin"),
            "env": {"TOOL_HOME": "/opt/tool"},
            "commands": {"tool": ["/bin/sh", "-c", "echo \"tool 2.1 at $TOOL_HOME\" \"$@\"", "tool"]},
            "probe": {"command": "tool", "args": ["--version"], "expect": expect}
        }}}}
    })
}

#[test]
fn the_image_install_script_lays_out_each_version_and_checks_its_probe() {
    let base = tempfile::tempdir().unwrap();
    let (out, work) = install(&fake_manifest(base.path(), "tool 2.1 at /opt/tool"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let calls = std::fs::read_to_string(work.path().join("dnf.calls")).unwrap();
    assert!(
        calls.starts_with("install -y --setopt=install_weak_deps=False git tar "),
        "{calls}"
    );
    assert!(calls.contains(" awscli-2 fake-tool\n"), "{calls}");
    assert!(calls.ends_with("clean all\n"), "{calls}");
    let tool = base.path().join("tc/tool/2/bin/tool");
    let ran = Command::new(&tool)
        .arg("hello")
        .env("TOOL_HOME", "/x")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&ran.stdout),
        "tool 2.1 at /x hello\n"
    );
    let installed: Value =
        serde_json::from_slice(&std::fs::read(work.path().join("runtimes/fake.json")).unwrap())
            .unwrap();
    assert_eq!(installed["image"], "fake");

    let other = tempfile::tempdir().unwrap();
    let (out, work) = install(&fake_manifest(other.path(), "tool 3"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(
            "tool 2: `tool --version` said \"tool 2.1 at /opt/tool --version\", not \"tool 3\""
        ),
        "{stderr}"
    );
    assert!(!work.path().join("runtimes/fake.json").exists());
}
