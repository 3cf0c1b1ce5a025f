//! The `pushbuild` command line.
fn main() -> std::process::ExitCode {
    pushbuild::cli::main()
}
