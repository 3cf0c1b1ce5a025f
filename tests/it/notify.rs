//! Notifications under `serve`: a failing push is posted to a Slack-compatible incoming webhook
//! (a loopback server here) with its reason and its page's link, the push that fixes the branch
//! is posted as a fix, and an incoming webhook that fails does not change the build.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use serde_json::Value;

use crate::hooks;
use crate::loopback::Loopback;
use crate::pushed::{Pushed, record_in};

const FAILING: &str =
    "version: 0.2\nphases:\n  build:\n    commands:\n      - echo broken\n      - exit 3\n";
const GOOD: &str = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo fixed\n";
const GOOD_AGAIN: &str =
    "version: 0.2\nphases:\n  build:\n    commands:\n      - echo still good\n";

/// An incoming webhook: the bodies it was sent, answered with `status`.
struct Receiver {
    server: Loopback,
    bodies: Arc<Mutex<Vec<Value>>>,
}

struct Hook {
    bodies: Arc<Mutex<Vec<Value>>>,
    status: u16,
}

async fn receive(
    hook: Arc<Hook>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if let Ok(value) = serde_json::from_slice(&body) {
        hook.bodies.lock().unwrap().push(value);
    }
    Ok(Response::builder()
        .status(hook.status)
        .body(Full::new(Bytes::from_static(b"ok")))
        .expect("a response"))
}

impl Receiver {
    fn start(status: u16) -> Receiver {
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let hook = Arc::new(Hook {
            bodies: bodies.clone(),
            status,
        });
        let server = Loopback::serve("127.0.0.1", "incoming-webhook", hook, receive);
        Receiver { server, bodies }
    }

    /// Its URL, with a secret path as Slack's have.
    fn url(&self) -> String {
        format!("http://{}/services/T000/B000/s3cr3tpath", self.server.addr)
    }

    /// The `n`th message's text, once it has come.
    fn text(&self, n: usize) -> String {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(body) = self.bodies.lock().unwrap().get(n) {
                return body["text"].as_str().unwrap_or_default().to_string();
            }
            assert!(Instant::now() < until, "message {n} never came");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn a_failure_and_its_fix_are_posted_and_a_failing_hook_changes_nothing() {
    let hook = Receiver::start(200);
    let pushed = Pushed::successive(&[FAILING, GOOD, GOOD_AGAIN]);
    let (store, work) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut env = pushed.env();
    env.push(("PUSHBUILD_NOTIFY_URL", hook.url()));
    env.push(("PUSHBUILD_PUBLIC_URL", "https://ci.example.com".to_string()));
    let served = crate::served::serve(store.path(), work.path(), &["--jobs", "1"], &env);
    let project = pushed.git.project(hooks::REPOSITORY);

    let failed = pushed.deliver_nth(&served.url, 0, "notify-0");
    assert_eq!(
        record_in(store.path(), &project, &failed)["status"],
        "FAILED"
    );
    let text = hook.text(0);
    assert!(
        text.contains(&format!("build {failed} FAILED on main")),
        "{text}"
    );
    assert!(text.contains("exit status 3"), "{text}");
    assert!(
        text.contains(&format!(
            "<https://ci.example.com/builds/{project}/{failed}>"
        )),
        "{text}"
    );
    let fixed = pushed.deliver_nth(&served.url, 1, "notify-1");
    assert_eq!(
        record_in(store.path(), &project, &fixed)["status"],
        "SUCCEEDED"
    );
    let text = hook.text(1);
    assert!(
        text.starts_with(&format!(
            "Fixed: {project} on main builds again (build {fixed}"
        )),
        "{text}"
    );
    // A success after a success says nothing.
    let again = pushed.deliver_nth(&served.url, 2, "notify-2");
    assert_eq!(
        record_in(store.path(), &project, &again)["status"],
        "SUCCEEDED"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(hook.bodies.lock().unwrap().len(), 2);

    // An incoming webhook that answers 500: the build is as it would be, and its log and record
    // do not hold the webhook's URL.
    let broken = Receiver::start(500);
    let (store, work) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut env = pushed.env();
    env.push(("PUSHBUILD_NOTIFY_URL", broken.url()));
    let served = crate::served::serve(store.path(), work.path(), &["--jobs", "1"], &env);
    let failed = pushed.deliver_nth(&served.url, 0, "notify-broken");
    let record = record_in(store.path(), &project, &failed);
    assert_eq!(record["status"], "FAILED");
    assert!(broken.text(0).contains("FAILED"));
    let holding = hooks::files_holding(store.path(), "s3cr3tpath");
    assert!(holding.is_empty(), "the webhook's URL is in {holding:?}");
}
