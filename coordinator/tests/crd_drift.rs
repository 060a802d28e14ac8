//! The CRD files users apply (deploy/crd.yaml, the Helm chart's copy) are generated from the
//! Rust types by `migrate-coord crd`; this test fails when they drift apart.

use std::path::Path;

#[test]
fn generated_crd_files_match_the_types() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_migrate-coord"))
        .arg("crd")
        .output()
        .unwrap();
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    for file in ["deploy/crd.yaml", "helm/hubmigrate/crds/migration.yaml"] {
        let on_disk = std::fs::read_to_string(root.join(file)).unwrap_or_default();
        assert!(
            on_disk == generated,
            "{file} is out of date: regenerate it with `cargo run -p migrate-coord -- crd > {file}`"
        );
    }
}
