//! Each build's state changes as EventBridge events, through the real function binary and
//! moto's EventBridge and SQS (the tests' moto server): rules on the default bus with SQS
//! targets, written as one writes them for CodeBuild's events with `source` changed, receive a
//! build's `IN_PROGRESS` and its end; a rule for failed builds receives only those; a bus that
//! refuses the events does not change the build.

use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

use crate::dynamo_server::{ACCESS_KEY, DynamoServer, REGION, SECRET_KEY};
use crate::function::{Harness, MINUTE, builds, sample};

const GOOD: &str = "version: 0.2\nphases:\n  build:\n    commands:\n      - mkdir -p out && echo ok > out/a.txt\nartifacts:\n  base-directory: out\n  files: ['**/*']\n";
const FAILING: &str =
    "version: 0.2\nphases:\n  build:\n    commands:\n      - echo broken\n      - exit 3\n";

/// moto's EventBridge and SQS through boto3: `setup NAME PATTERN` makes a queue and a rule on
/// the default bus targeting it and prints the queue's URL; `receive URL` prints the bodies of
/// the messages waiting there as a JSON list.
const MOTO: &str = r#"
import json, sys, boto3
endpoint, region, key, secret, command = sys.argv[1:6]
kw = dict(endpoint_url=endpoint, region_name=region, aws_access_key_id=key, aws_secret_access_key=secret)
sqs, events = boto3.client("sqs", **kw), boto3.client("events", **kw)
if command == "setup":
    name, pattern = sys.argv[6:8]
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventPattern=pattern)
    events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": arn}])
    print(url)
else:
    bodies = []
    while True:
        got = sqs.receive_message(QueueUrl=sys.argv[6], MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            break
        for message in got:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=sys.argv[6], ReceiptHandle=message["ReceiptHandle"])
    print(json.dumps(bodies))
"#;

fn moto(args: &[&str]) -> String {
    let server = DynamoServer::shared();
    let python = crate::tools::python().expect("the tests' Python");
    let output = std::process::Command::new(python)
        .args(["-c", MOTO, &server.endpoint, REGION, ACCESS_KEY, SECRET_KEY])
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// A queue receiving what `pattern` matches on the default bus; its URL.
fn rule(pattern: &Value) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "pushbuild-events-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    moto(&["setup", &name, &pattern.to_string()])
}

fn received(queue: &str) -> Vec<Value> {
    serde_json::from_str(&moto(&["receive", queue])).expect("a JSON list")
}

/// The function with moto's EventBridge, putting events on `bus`.
fn function(bus: &str) -> Harness {
    let endpoint = DynamoServer::shared().endpoint.clone();
    Harness::start(
        &[("ci/buildspec.yml", GOOD.as_bytes())],
        "events",
        &[
            ("AWS_ENDPOINT_URL_EVENTBRIDGE", &endpoint),
            ("PUSHBUILD_EVENT_BUS", bus),
        ],
    )
}

#[test]
fn a_builds_beginning_and_end_reach_rules_written_for_codebuilds_events() {
    let h = function("default");
    // Other tests' builds put no events; these two rules only see this test's builds.
    let every = rule(&json!({
        "source": ["pushbuild"],
        "detail-type": ["CodeBuild Build State Change"],
    }));
    let failed = rule(&json!({
        "source": ["pushbuild"],
        "detail-type": ["CodeBuild Build State Change"],
        "detail": { "build-status": ["FAILED", "TIMED_OUT"] },
    }));
    let good = builds(&h.invoke(sample("codecommit-push.json", &h.head()), MINUTE));
    assert_eq!(good[0]["status"], "SUCCEEDED", "{good:?}");
    let commit = h.commit(&[("ci/buildspec.yml", FAILING.as_bytes())], "break it");
    let mut event = sample("codecommit-push.json", &commit);
    event["Records"][0]["eventId"] = json!(format!("push-{commit}"));
    let bad = builds(&h.invoke(event, MINUTE));
    assert_eq!(bad[0]["status"], "FAILED", "{bad:?}");
    let (good_id, bad_id) = (good[0]["buildId"].clone(), bad[0]["buildId"].clone());

    let events = received(&every);
    let of = |id: &Value, status: &str| {
        events
            .iter()
            .filter(|e| e["detail"]["build-id"] == *id && e["detail"]["build-status"] == status)
            .collect::<Vec<_>>()
    };
    for (id, end) in [(&good_id, "SUCCEEDED"), (&bad_id, "FAILED")] {
        assert_eq!(of(id, "IN_PROGRESS").len(), 1, "{id} began: {events:#?}");
        assert_eq!(of(id, end).len(), 1, "{id} ended {end}: {events:#?}");
    }
    assert_eq!(events.len(), 4, "{events:#?}");
    let begun = of(&good_id, "IN_PROGRESS")[0];
    assert_eq!(begun["source"], "pushbuild");
    assert_eq!(begun["detail-type"], "CodeBuild Build State Change");
    assert_eq!(begun["detail"]["project-name"], crate::function::REPO);
    assert_eq!(begun["detail"]["current-phase"], "SUBMITTED");
    assert_eq!(
        begun["detail"]["additional-information"]["build-complete"],
        false
    );
    let ended = of(&good_id, "SUCCEEDED")[0];
    assert_eq!(ended["detail"]["current-phase"], "COMPLETED");
    let more = &ended["detail"]["additional-information"];
    assert_eq!(more["build-complete"], true);
    let location = more["artifact"]["location"].as_str().unwrap_or_default();
    assert!(
        location.starts_with(&format!("arn:aws:s3:::{}/", h.bucket())),
        "{ended:#}"
    );
    assert_eq!(ended["detail"]["pushbuild"]["billed-minutes"], 1);
    let failure = of(&bad_id, "FAILED")[0];
    let context = failure["detail"]["current-phase-context"]
        .as_str()
        .unwrap_or_default();
    assert!(context.contains("exit 3"), "{failure:#}");

    // The rule for failed builds saw the failure only.
    let failures = received(&failed);
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert_eq!(failures[0]["detail"]["build-id"], bad_id);
}

#[test]
fn a_bus_that_refuses_the_events_does_not_change_the_build() {
    let h = function("no-such-bus");
    let answer = builds(&h.invoke(sample("codecommit-push.json", &h.head()), MINUTE));
    assert_eq!(answer[0]["status"], "SUCCEEDED", "{answer:?}");
    let said = std::fs::read_to_string(h.work_dir().join("function.stderr")).unwrap_or_default();
    assert!(said.contains("the state change was not put"), "{said}");
}
