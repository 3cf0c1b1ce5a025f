//! Running a build again under `serve`: a "Build now" build with a variable, retried from its
//! page's Retry button and from `pushbuild retry`: each a new build of the same commit with the
//! same variable, whose record names the build it retries.

use std::process::Command;

use crate::hooks;
use crate::pushed::{Pushed, record_in};

const SPEC: &str =
    "version: 0.2\nphases:\n  build:\n    commands:\n      - echo \"greeting=$GREETING\"\n";

/// `pushbuild retry PROJECT BUILD_ID --store STORE` with `serve`'s settings for `pushed`.
fn retry_here(
    project: &str,
    build_id: &str,
    store: &std::path::Path,
    work: &std::path::Path,
    pushed: &Pushed,
) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pushbuild"))
        .args(["retry", project, build_id, "--store"])
        .arg(store)
        .env("PUSHBUILD_WORK_DIR", work)
        .envs(pushed.env())
        .env("NO_COLOR", "1")
        .output()
        .expect("pushbuild runs")
}

/// The build id a `303` to a build's page names.
fn redirected_build(answer: &reqwest::blocking::Response) -> String {
    assert_eq!(answer.status().as_u16(), 303);
    let location = answer.headers()["location"].to_str().unwrap();
    location.rsplit('/').next().unwrap().to_string()
}

#[test]
fn a_build_runs_again_from_its_page_and_from_the_command_line() {
    let pushed = Pushed::new(SPEC);
    let project = pushed.git.project(hooks::REPOSITORY);
    let (store, work) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let served = crate::served::serve(store.path(), work.path(), &["--jobs", "1"], &pushed.env());
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let token = form_token(&client, &served.url);
    let post = |path: &str, body: String| {
        client
            .post(format!("{}{path}", served.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .unwrap()
    };
    let first = redirected_build(&post(
        "/build-now",
        format!("token={token}&repository={project}&version=main&variables=GREETING%3Dhello"),
    ));
    let original = record_in(store.path(), &project, &first);
    assert_eq!(original["status"], "SUCCEEDED", "{original}");
    assert!(crate::pushed::log_in(store.path(), &project, &first).contains("greeting=hello"));

    // The Retry button of its page.
    let page = client
        .get(format!("{}/builds/{project}/{first}", served.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(page.contains("id=\"retry\""), "{page}");
    let again = redirected_build(&post(
        &format!("/builds/{project}/{first}/retry"),
        format!("token={token}"),
    ));
    assert_ne!(again, first);
    let retried = record_in(store.path(), &project, &again);
    assert_eq!(retried["status"], "SUCCEEDED", "{retried}");
    assert_eq!(retried["retries"], first.as_str());
    assert_eq!(retried["commit"], original["commit"]);
    assert!(crate::pushed::log_in(store.path(), &project, &again).contains("greeting=hello"));
    // A form from elsewhere (no token) runs nothing.
    let refused = post(&format!("/builds/{project}/{first}/retry"), String::new());
    assert_eq!(refused.status().as_u16(), 403);
    drop(served);

    // From the command line, over the same store.
    let out = retry_here(&project, &first, store.path(), work.path(), &pushed);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let third = stdout
        .strip_prefix("Build ")
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the new build")
        .to_string();
    assert!(
        stdout.contains(&format!("runs build {first} of {project} again: SUCCEEDED")),
        "{stdout}"
    );
    let record = record_in(store.path(), &project, &third);
    assert_eq!(record["retries"], first.as_str());
    assert!(crate::pushed::log_in(store.path(), &project, &third).contains("greeting=hello"));
    // A build that kept no target says so.
    let unknown = Command::new(env!("CARGO_BIN_EXE_pushbuild"))
        .args(["retry", &project, "20260101T000000Z-00000000", "--store"])
        .arg(store.path())
        .output()
        .expect("pushbuild runs");
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("cannot be run again"));
}

/// The form token of `serve`'s pages (what its forms carry).
fn form_token(client: &reqwest::blocking::Client, url: &str) -> String {
    let form = client
        .get(format!("{url}/build-now"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    form.split("name=\"token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the form's token")
        .to_string()
}

#[test]
fn a_batchs_retry_runs_again_only_the_children_that_did_not_succeed() {
    // `flaky` fails the first time it runs and succeeds after; `steady` always succeeds.
    let marks = tempfile::tempdir().unwrap();
    let mark = marks.path().join("flaky-ran");
    let runs = marks.path().join("steady-runs");
    let spec = format!(
        "version: 0.2\nbatch:\n  build-list:\n    - identifier: steady\n      env:\n        \
         variables:\n          ROLE: steady\n    - identifier: flaky\n      env:\n        \
         variables:\n          ROLE: flaky\nphases:\n  build:\n    commands:\n      - |\n        \
         if [ \"$ROLE\" = steady ]; then echo run >> {runs}; exit 0; fi\n        \
         if [ -f {mark} ]; then echo second time; else touch {mark}; exit 1; fi\n",
        runs = runs.display(),
        mark = mark.display()
    );
    let pushed = Pushed::new(&spec);
    let project = pushed.git.project(hooks::REPOSITORY);
    let (store, work) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let served = crate::served::serve(store.path(), work.path(), &["--jobs", "2"], &pushed.env());
    let first = pushed.deliver(&served.url, "batch-retry-1");
    let batch = crate::batch_served::batch_record(store.path(), &project, &first, 60);
    assert_eq!(batch["status"], "FAILED", "{batch}");

    // The Retry button of the push's build: a new batch where only `flaky` runs.
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let token = form_token(&client, &served.url);
    let answer = client
        .post(format!("{}/builds/{project}/{first}/retry", served.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .unwrap();
    let second = redirected_build(&answer);
    let again = crate::batch_served::batch_record(store.path(), &project, &second, 60);
    assert_eq!(again["status"], "SUCCEEDED", "{again}");
    assert_eq!(again["retries"], first.as_str());
    let child = |record: &serde_json::Value, id: &str| {
        record["children"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["identifier"] == id)
            .unwrap()
            .clone()
    };
    // `steady` kept its build from the first batch; `flaky` is a new build that succeeded.
    assert_eq!(
        child(&again, "steady")["buildId"],
        child(&batch, "steady")["buildId"]
    );
    assert_ne!(
        child(&again, "flaky")["buildId"],
        child(&batch, "flaky")["buildId"]
    );
    assert_eq!(std::fs::read_to_string(&runs).unwrap().lines().count(), 1);
    let page = client
        .get(format!("{}/batches/{project}/{second}", served.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(page.contains("id=\"retries\""), "{page}");
    drop(served);

    // From the command line: the first batch again, its children built here.
    std::fs::remove_file(&mark).unwrap();
    let out = retry_here(&project, &first, store.path(), work.path(), &pushed);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // `flaky` fails again (its mark was removed): the batch fails, `steady` not run again.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("FAILED (batch "), "{stdout}");
    assert!(
        stdout.contains("1 kept from the batch it retries"),
        "{stdout}"
    );
    assert_eq!(std::fs::read_to_string(&runs).unwrap().lines().count(), 1);
}
