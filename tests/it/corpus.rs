//! The buildspec parser against the shared corpus of real buildspecs.

use std::path::PathBuf;

use pushbuild::buildspec;

#[test]
fn dump() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/buildspecs");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for p in names {
        match buildspec::load(&p) {
            Ok(parsed) => {
                println!("OK  {}", p.file_name().unwrap().to_string_lossy());
                for w in parsed.warnings {
                    println!("      {w}");
                }
            }
            Err(e) => println!("ERR {e}"),
        }
    }
}
