//! `bud --squash` folds the layers a build adds into one on top of the
//! base's, `--squash-all` folds the whole image into one; deletions,
//! opaque directories and history stay right.

mod common;

use common::{oci_manifest, Runner, Sandbox};

const CONTAINERFILE: &str = "FROM busybox\n\
RUN mkdir -p /d && echo 1 > /d/one && echo x > /gone\n\
RUN rm /gone && echo 2 > /d/two\n\
RUN rm -rf /d && mkdir /d && echo 3 > /d/three\n";

fn layer_count(sb: &Sandbox, image: &str) -> usize {
    oci_manifest(&sb.push_oci(image))["layers"]
        .as_array()
        .unwrap()
        .len()
}

#[test]
fn squash_and_squash_all_keep_the_rootfs_and_fold_the_layers() {
    for runner in Runner::all() {
        let sb = Sandbox::new(runner);
        sb.import_busybox();
        let base_layers = layer_count(&sb, "busybox");
        sb.build("plain", CONTAINERFILE, &[], &[]);
        sb.build("squashed", CONTAINERFILE, &[], &["--squash"]);
        sb.build("all", CONTAINERFILE, &[], &["--squash-all"]);
        assert_eq!(layer_count(&sb, "plain"), base_layers + 3, "{runner:?}");
        assert_eq!(layer_count(&sb, "squashed"), base_layers + 1, "{runner:?}");
        assert_eq!(layer_count(&sb, "all"), 1, "{runner:?}");
        if runner == Runner::Root {
            for image in ["squashed", "all"] {
                let rootfs = sb.unpack(image);
                let mut d: Vec<String> = std::fs::read_dir(rootfs.join("d"))
                    .unwrap()
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect();
                d.sort();
                assert_eq!(
                    d,
                    ["three"],
                    "{image}: /d must hold only what the last RUN made"
                );
                assert!(!rootfs.join("gone").exists(), "{image}: /gone was deleted");
                assert!(
                    rootfs.join("bin/busybox").exists(),
                    "{image}: the base is kept"
                );
            }
        }
        // History keeps every step; rootfs.diff_ids still match the layers.
        let config = sb.config("squashed");
        let history = config["history"].as_array().unwrap();
        let non_empty = history
            .iter()
            .filter(|h| !h["empty_layer"].as_bool().unwrap_or(false))
            .count();
        assert_eq!(
            non_empty,
            config["rootfs"]["diff_ids"].as_array().unwrap().len(),
            "{runner:?}"
        );
    }
}
