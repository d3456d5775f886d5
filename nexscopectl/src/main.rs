//! `nexscopectl`: see the library for what it does.

fn main() -> std::process::ExitCode {
    nexscopectl::run()
}
