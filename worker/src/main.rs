//! `migrate-worker`: not built yet; see the pipeline issue. Exits 1 so nobody mistakes it for a working tool.
fn main() {
    eprintln!("migrate-worker is not implemented yet: use `hubsim` for now (see README.md)");
    std::process::exit(1);
}
