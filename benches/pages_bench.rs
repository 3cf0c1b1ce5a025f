//! The time to draw the build pages' list (`GET /`) and a build's page through the real
//! `pushbuild serve`, with 100 and with 100,000 builds in the store's index (the two stores
//! alternating request by request), and the billing page of a month of 100 builds. The list
//! reads one page of the index; it should not grow with the builds. (One repository's list has
//! 10 rows in the small store and 50 in the big one: compare `GET /`.)
//! Run: `cargo bench --bench pages_bench` (PAGES_BENCH_BUILDS sets the big store,
//! PAGES_BENCH_ROUNDS the requests per case).

#[path = "common/entries.rs"]
mod entries;
#[path = "../tests/it/served.rs"]
mod served;

use std::time::{Duration, Instant};

use entries::closed;
use pushbuild::index::{Index, SqliteIndex};

fn var(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

fn main() {
    let big = var("PAGES_BENCH_BUILDS", 100_000);
    let rounds = var("PAGES_BENCH_ROUNDS", 200);
    let cases = [100, big];
    let mut stores = Vec::new();
    for n in cases {
        let store = tempfile::tempdir().expect("temp dir");
        let work = tempfile::tempdir().expect("temp dir");
        let index = SqliteIndex::open(&SqliteIndex::path_in(store.path())).expect("the index");
        let seeding = Instant::now();
        for i in 0..n {
            index.add_closed(&closed(i)).expect("seeded");
        }
        println!(
            "{n} builds seeded in {:.1} s",
            seeding.elapsed().as_secs_f64()
        );
        drop(index);
        let served = served::serve(store.path(), work.path(), &[], &[]);
        stores.push((n, store, work, served));
    }
    let client = reqwest::blocking::Client::new();
    let get = |url: &str| {
        let started = Instant::now();
        let answer = client.get(url).send().expect("answered");
        assert_eq!(answer.status().as_u16(), 200, "{url}");
        let body = answer.text().expect("a body");
        (started.elapsed(), body)
    };
    // Warm up, and check what is drawn.
    for (n, _, _, served) in &stores {
        let (_, body) = get(&format!("{}/", served.url));
        assert_eq!(body.matches("<tr class=\"build\"").count(), (*n).min(50));
    }
    let mut lists: Vec<Vec<Duration>> = vec![Vec::new(); stores.len()];
    let mut pages: Vec<Vec<Duration>> = vec![Vec::new(); stores.len()];
    for round in 0..rounds {
        for (k, (n, _, _, served)) in stores.iter().enumerate() {
            lists[k].push(get(&format!("{}/", served.url)).0);
            let page = format!(
                "{}/?repository=repo-{}&after=",
                served.url,
                (round + *n) % 10
            );
            pages[k].push(get(&page).0);
        }
    }
    println!("{rounds} requests per case, the stores alternating:");
    for (k, (n, _, _, _)) in stores.iter().enumerate() {
        println!(
            "  {n:>7} builds: GET / (50 rows) median {:.2} ms, one repository's list ({} rows) median {:.2} ms",
            median(lists[k].clone()).as_secs_f64() * 1000.0,
            (n / 10).min(50),
            median(pages[k].clone()).as_secs_f64() * 1000.0
        );
    }
    let ratio = median(lists[1].clone()).as_secs_f64() / median(lists[0].clone()).as_secs_f64();
    let ratio_repo =
        median(pages[1].clone()).as_secs_f64() / median(pages[0].clone()).as_secs_f64();
    println!(
        "GET /, {} builds against 100: {ratio:.2}x; one repository's list: {ratio_repo:.2}x",
        cases[1]
    );
    let (billing, _) = get(&format!("{}/billing", stores[0].3.url));
    println!(
        "GET /billing, a month of 100 builds: {:.2} ms",
        billing.as_secs_f64() * 1000.0
    );
}
