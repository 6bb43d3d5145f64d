//! Peripheral access on Linux (issue 15, 4.4): Go writes a GPIO register
//! through an mmap of /dev/mem, Node through the sysfs GPIO interface, in
//! real QEMU on virt-a53.

mod common;

use common::{lab_run_with, metric, repo};

#[test]
fn go_s_mapped_register_write_costs_less_than_node_s_sysfs_write() {
    let dir = tempfile::tempdir().unwrap();
    let file = repo().join("scenarios/raspi/peripheral.yaml");
    let mut lab = common::lab();
    lab.env("LAB_SNAPSHOTS", dir.path().join("snapshots"));
    let args = ["-k", "[go-virt]", "-k", "[node-virt]", "-j", "1"];
    let ran = lab_run_with(&mut lab, dir.path(), &file, &args);
    assert_eq!(ran.code(), Some(0), "{ran}");
    assert_eq!(ran.each("variant"), ["go-virt", "node-virt"]);
    let (go, node) = (&ran.results()[0], &ran.results()[1]);
    for r in [go, node] {
        assert_eq!(metric(r, "writes"), 10000.0, "{r}");
        assert!(metric(r, "ns_per_access") > 0.0, "{r}");
    }
    assert!(
        metric(go, "ns_per_access") < metric(node, "ns_per_access"),
        "{go}\n{node}"
    );
}
