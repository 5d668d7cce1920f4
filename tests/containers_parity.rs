//! Working-container behaviour compared with buildah 1.45 (see the qacli
//! report): what `run` sets up that a buildah user relies on.

mod common;

use common::{Runner, Sandbox};

#[test]
fn run_hostname_is_the_short_container_id_or_hostname_flag() {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    sb.ok(&["from", "--name", "c", "busybox"]);
    let id = sb.ok(&["containers", "-q"]);
    let short = &id.trim()[..12];
    assert_eq!(sb.ok(&["run", "c", "hostname"]).trim(), short);
    let both = sb.ok(&[
        "run",
        "--hostname",
        "builder",
        "--isolation",
        "chroot",
        "c",
        "--",
        "sh",
        "-c",
        "hostname; cat /etc/hostname",
    ]);
    assert_eq!(both, "builder\nbuilder\n");
    let bad = sb.fails(&["run", "--hostname", &"x".repeat(65), "c", "true"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--hostname"));
}
