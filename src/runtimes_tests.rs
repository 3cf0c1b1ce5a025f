use super::*;

fn version(path: &str, env: &[(&str, &str)]) -> Version {
    Version {
        path: PathBuf::from(path),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        commands: BTreeMap::new(),
        probe: Probe {
            command: "true".into(),
            args: Vec::new(),
            expect: String::new(),
        },
    }
}

fn manifest(image: &str, runtimes: &[(&str, &str, &[&str])]) -> Manifest {
    Manifest {
        image: image.into(),
        runtimes: runtimes
            .iter()
            .map(|(name, default, versions)| {
                let versions = versions
                    .iter()
                    .map(|v| (v.to_string(), version(&format!("/tc/{name}/{v}/bin"), &[])))
                    .collect();
                (
                    name.to_string(),
                    Runtime {
                        default: default.to_string(),
                        versions,
                    },
                )
            })
            .collect(),
    }
}

fn runtimes(list: &[(&str, &str, &[&str])]) -> Runtimes {
    let mut all = Runtimes::default();
    all.add(manifest("test", list)).unwrap();
    all
}

fn wanted(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn chosen(all: &Runtimes, pairs: &[(&str, &str)]) -> Vec<(String, String, bool)> {
    all.select(&wanted(pairs))
        .unwrap()
        .into_iter()
        .map(|c| (c.runtime, c.version, c.manual))
        .collect()
}

#[test]
fn a_named_version_is_chosen_and_the_others_get_their_defaults() {
    let all = runtimes(&[
        ("nodejs", "22", &["20", "22", "24"]),
        ("python", "3.12", &["3.11", "3.12", "3.13"]),
    ]);
    assert_eq!(
        chosen(&all, &[("nodejs", "20")]),
        [
            ("nodejs".into(), "20".into(), true),
            ("python".into(), "3.12".into(), false)
        ]
    );
    assert_eq!(
        chosen(&all, &[]),
        [
            ("nodejs".into(), "22".into(), false),
            ("python".into(), "3.12".into(), false)
        ]
    );
}

#[test]
fn latest_and_major_versions_pick_the_newest_by_number() {
    let all = runtimes(&[
        ("python", "3.12", &["3.9", "3.11", "3.12", "3.13"]),
        (
            "java",
            "corretto21",
            &["corretto8", "corretto17", "corretto21"],
        ),
    ]);
    let one = |runtime: &str, asked: &str| {
        all.select(&wanted(&[(runtime, asked)])).unwrap()[0]
            .version
            .clone()
    };
    assert_eq!(one("python", "latest"), "3.13");
    assert_eq!(one("python", "3"), "3.13");
    assert_eq!(one("python", "3.x"), "3.13");
    assert_eq!(one("python", "3.9"), "3.9");
    assert_eq!(one("java", "latest"), "corretto21");
    assert_eq!(one("java", "corretto8"), "corretto8");
}

#[test]
fn a_runtime_or_version_the_image_lacks_names_what_it_has() {
    let all = runtimes(&[("nodejs", "22", &["20", "22"])]);
    let err = all.select(&wanted(&[("nodejs", "18")])).unwrap_err();
    assert_eq!(
        err,
        "Unknown runtime version named '18' of nodejs. This build image has the following versions: 22, 20"
    );
    let err = all.select(&wanted(&[("nodejs", "2")])).unwrap_err();
    assert!(err.contains("named '2'"), "{err}");
    let err = all.select(&wanted(&[("nodejs", "corretto")])).unwrap_err();
    assert!(err.contains("named 'corretto'"), "{err}");
    let err = all.select(&wanted(&[("ruby", "3.4")])).unwrap_err();
    assert_eq!(
        err,
        "Unknown runtime named 'ruby'. This build image has the following runtimes: nodejs"
    );
    let none = Runtimes::default();
    let err = none.select(&wanted(&[("ruby", "3.4")])).unwrap_err();
    assert!(err.ends_with("runtimes: none"), "{err}");
}

#[test]
fn chosen_versions_come_first_on_the_path_with_their_variables() {
    let mut all = Runtimes::default();
    let mut m = manifest("java", &[("java", "corretto21", &["corretto21"])]);
    m.runtimes.get_mut("java").unwrap().versions.insert(
        "corretto21".into(),
        version("/tc/java/21/bin", &[("JAVA_HOME", "/jvm/21")]),
    );
    all.add(m).unwrap();
    all.add(manifest("node", &[("nodejs", "22", &["22"])]))
        .unwrap();
    let chosen = all.select(&wanted(&[("nodejs", "22")])).unwrap();
    assert_eq!(
        variables(&chosen, "/usr/bin:/bin"),
        [
            ("JAVA_HOME".to_string(), "/jvm/21".to_string()),
            (
                "PATH".to_string(),
                "/tc/nodejs/22/bin:/tc/java/21/bin:/usr/bin:/bin".to_string()
            ),
        ]
    );
    assert_eq!(all.images(), ["java", "node"]);
}

#[test]
fn a_manifest_with_a_bad_default_or_a_relative_path_is_refused() {
    let mut all = Runtimes::default();
    let err = all
        .add(manifest("x", &[("nodejs", "18", &["20"])]))
        .unwrap_err();
    assert_eq!(
        err,
        "runtimes.nodejs.default: 18 is not one of its versions (20)"
    );
    let mut m = manifest("x", &[("go", "1.24", &["1.24"])]);
    m.runtimes
        .get_mut("go")
        .unwrap()
        .versions
        .get_mut("1.24")
        .unwrap()
        .path = "bin".into();
    assert!(all.add(m).unwrap_err().contains("versions.1.24.path"));
}

#[test]
fn manifests_load_from_a_directory_and_errors_name_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        Runtimes::load(&dir.path().join("absent"))
            .unwrap()
            .is_none()
    );
    std::fs::write(
        dir.path().join("a.json"),
        r#"{"image": "a", "runtimes": {"nodejs": {"default": "22", "versions": {"22": {
            "path": "/tc/nodejs/22/bin", "commands": {"node": ["/usr/bin/node-22"]},
            "probe": {"command": "node", "args": ["--version"], "expect": "v22."}}}}}}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a manifest").unwrap();
    let all = Runtimes::load(dir.path()).unwrap().unwrap();
    assert_eq!(all.images(), ["a"]);
    std::fs::write(
        dir.path().join("b.json"),
        r#"{"image": "b", "runtimes": {"go": {"default": "1.24", "versions": {"1.24": {"path": 7}}}}}"#,
    )
    .unwrap();
    let err = Runtimes::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("b.json"), "{err}");
    assert!(err.contains("runtimes.go.versions.1.24.path"), "{err}");
}

/// Every image's manifest in `images/`: it loads, each version is selectable by its name and
/// its directory follows the images' layout, its probe runs one of its commands, and `latest`
/// is the newest.
#[test]
fn the_images_manifests_hold_together() {
    let images = Path::new(env!("CARGO_MANIFEST_DIR")).join("images");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&images).unwrap() {
        let dir = entry.unwrap().path();
        let file = dir.join("runtimes.json");
        if !file.exists() {
            continue;
        }
        let variant = dir.file_name().unwrap().to_str().unwrap().to_string();
        assert!(
            dir.join("packages").exists(),
            "{variant} has no packages list"
        );
        let text = std::fs::read_to_string(&file).unwrap();
        let manifest: Manifest = serde_json::from_str(&text).unwrap();
        assert_eq!(manifest.image, variant);
        for (name, runtime) in &manifest.runtimes {
            for (v, version) in &runtime.versions {
                assert_eq!(
                    version.path,
                    Path::new(&format!("/opt/pushbuild/toolchains/{name}/{v}/bin")),
                    "{variant}: {name} {v}"
                );
                assert!(
                    version.commands.contains_key(&version.probe.command),
                    "{variant}: {name} {v}'s probe runs a command it does not have"
                );
                for argv in version.commands.values() {
                    assert!(argv.first().is_some_and(|p| p.starts_with('/')), "{argv:?}");
                }
                assert!(!version.probe.expect.is_empty());
            }
        }
        let mut all = Runtimes::default();
        let names: Vec<(String, Vec<String>)> = manifest
            .runtimes
            .iter()
            .map(|(n, r)| (n.clone(), r.versions.keys().cloned().collect()))
            .collect();
        all.add(manifest).unwrap();
        for (name, versions) in names {
            for v in &versions {
                let chosen = all.select(&wanted(&[(&name, v)])).unwrap();
                assert_eq!(chosen[0].version, *v);
                assert!(chosen[0].manual);
            }
            let latest = all.select(&wanted(&[(&name, "latest")])).unwrap();
            let newest = versions.iter().max_by_key(|v| numbers(v)).unwrap();
            assert_eq!(&latest[0].version, newest);
            let err = all.select(&wanted(&[(&name, "0.1")])).unwrap_err();
            assert!(err.contains(newest.as_str()), "{err}");
        }
        seen.push(variant);
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "dotnet", "go", "java", "nodejs", "python", "ruby", "standard"
        ]
    );
}
