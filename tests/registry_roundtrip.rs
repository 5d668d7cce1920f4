//! Pull and push against real `docker-registry` instances over plain HTTP:
//! round trips with skopeo both ways, byte-identical re-push, blobs not
//! uploaded twice, chunked uploads, two-platform indexes, a corrupted blob
//! refused, a cut connection resumed, and FROM pulling its base.

mod common;
mod registry_support;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::{Runner, Sandbox};
use registry_support::{raw_manifest, run, Mischief, Registry, RegistryConfig, Relay};

const INSECURE: &str = "--tls-verify=false";

fn sandbox_with_busybox() -> Sandbox {
    let sb = Sandbox::new(Runner::Root);
    sb.import_busybox();
    sb
}

fn manifest_json(image: &str) -> serde_json::Value {
    serde_json::from_str(&raw_manifest(image, &[])).unwrap()
}

fn layer_digests(image: &str) -> Vec<String> {
    manifest_json(image)["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn push_pull_round_trips_with_skopeo_and_pushes_back_byte_identical() {
    let reg = Registry::start(RegistryConfig::default());
    let sb = sandbox_with_busybox();
    let host = reg.host();
    let digestfile = sb.path().join("digest");
    sb.ok(&[
        "push",
        INSECURE,
        "--digestfile",
        digestfile.to_str().unwrap(),
        "busybox",
        &format!("docker://{host}/rt/busybox:1"),
    ]);
    let inspected: serde_json::Value = serde_json::from_str(&run(Command::new("skopeo")
        .args(["inspect", INSECURE])
        .arg(format!("docker://{host}/rt/busybox:1"))))
    .unwrap();
    assert_eq!(
        inspected["Digest"].as_str().unwrap(),
        fs::read_to_string(&digestfile).unwrap()
    );
    assert_eq!(inspected["Layers"].as_array().unwrap().len(), 1);

    // skopeo → OCI layout → a second repository; rbuild pulls that.
    let layout = sb.path().join("layout");
    run(Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{host}/rt/busybox:1"))
        .arg(format!("oci:{}:x", layout.display())));
    run(Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:x", layout.display()))
        .arg(format!("docker://{host}/rt/from-skopeo:2")));

    let other = Sandbox::new(Runner::Root);
    let id = other.ok(&["pull", INSECURE, &format!("{host}/rt/from-skopeo:2")]);
    let images = other.ok(&["images"]);
    assert!(
        images.contains(&format!("{host}/rt/from-skopeo")),
        "{images}"
    );
    assert!(id.trim().len() == 64, "{id}");

    // Push the pulled image elsewhere: the manifest comes back byte-identical.
    other.ok(&[
        "push",
        INSECURE,
        &format!("{host}/rt/from-skopeo:2"),
        &format!("docker://{host}/rt/again:3"),
    ]);
    assert_eq!(
        raw_manifest(&format!("{host}/rt/from-skopeo:2"), &[]),
        raw_manifest(&format!("{host}/rt/again:3"), &[])
    );

    // A second pull finds every layer in the store.
    let out = other.rbuild(&[
        "pull",
        INSECURE,
        "--policy",
        "always",
        &format!("{host}/rt/again:3"),
    ]);
    common::assert_success(&out, &["pull again"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("skipped: already exists"), "{err}");

    // skopeo reads what rbuild re-pushed into an OCI layout umoci accepts.
    let layout2 = sb.path().join("layout2");
    run(Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{host}/rt/again:3"))
        .arg(format!("oci:{}:y", layout2.display())));
    let bundle = sb.path().join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:y", layout2.display()))
        .arg(&bundle));
    assert!(bundle.join("rootfs/bin/busybox").is_file());
}

#[test]
fn recompression_keeps_the_configs_diff_ids() {
    let reg = Registry::start(RegistryConfig::default());
    let sb = sandbox_with_busybox();
    let host = reg.host();
    sb.ok(&[
        "push",
        INSECURE,
        "busybox",
        &format!("docker://{host}/rc/gz:1"),
    ]);
    let other = Sandbox::new(Runner::Root);
    other.ok(&["pull", INSECURE, &format!("{host}/rc/gz:1")]);
    other.ok(&[
        "push",
        INSECURE,
        "--compression-format",
        "zstd",
        &format!("{host}/rc/gz:1"),
        &format!("docker://{host}/rc/zstd:1"),
    ]);
    let m = manifest_json(&format!("{host}/rc/zstd:1"));
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    // The zstd blob must uncompress to the config's diff ID (umoci here
    // predates zstd): a fresh pull checks exactly that while extracting.
    let config: serde_json::Value = serde_json::from_str(&run(Command::new("skopeo")
        .args(["inspect", "--config", "--raw", INSECURE])
        .arg(format!("docker://{host}/rc/zstd:1"))))
    .unwrap();
    let gz_config = run(Command::new("skopeo")
        .args(["inspect", "--config", "--raw", INSECURE])
        .arg(format!("docker://{host}/rc/gz:1")));
    assert_eq!(
        config,
        serde_json::from_str::<serde_json::Value>(&gz_config).unwrap()
    );
    let third = Sandbox::new(Runner::Root);
    third.ok(&["pull", INSECURE, &format!("{host}/rc/zstd:1")]);
    // --format docker keeps gzip layers and docker media types.
    other.ok(&[
        "push",
        INSECURE,
        "--format",
        "docker",
        &format!("{host}/rc/gz:1"),
        &format!("docker://{host}/rc/docker:1"),
    ]);
    let d = manifest_json(&format!("{host}/rc/docker:1"));
    assert_eq!(
        d["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
}

#[test]
fn blobs_already_in_the_registry_are_not_uploaded_again() {
    let reg = Registry::start(RegistryConfig::default());
    let sb = sandbox_with_busybox();
    let host = reg.host();
    sb.ok(&[
        "push",
        INSECURE,
        "busybox",
        &format!("docker://{host}/dedup/app:1"),
    ]);
    let uploads = reg.count_requests("PUT", "/blobs/uploads/");
    assert_eq!(uploads, 2, "one layer and one config:\n{}", reg.log());
    let out = sb.rbuild(&[
        "push",
        INSECURE,
        "busybox",
        &format!("docker://{host}/dedup/app:2"),
    ]);
    common::assert_success(&out, &["second push"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("skipped: already exists"));
    assert_eq!(
        reg.count_requests("PUT", "/blobs/uploads/"),
        uploads,
        "nothing uploaded again:\n{}",
        reg.log()
    );
    assert_eq!(reg.count_requests("PUT", "/manifests/2"), 1);
    // Another repository on the same registry: nothing uploaded either (HEAD
    // misses there, so the blob is mounted from the repository it came from).
    let other = Sandbox::new(Runner::Root);
    other.ok(&["pull", INSECURE, &format!("{host}/dedup/app:1")]);
    let before = reg.count_requests("PUT", "/blobs/uploads/");
    other.ok(&[
        "push",
        INSECURE,
        &format!("{host}/dedup/app:1"),
        &format!("docker://{host}/elsewhere/app:1"),
    ]);
    assert_eq!(
        reg.count_requests("PUT", "/blobs/uploads/"),
        before,
        "{}",
        reg.log()
    );
    assert!(reg.count_requests("POST", "mount=") >= 1, "{}", reg.log());
}

#[test]
fn a_corrupted_blob_is_refused_and_never_stored() {
    let reg = Registry::start(RegistryConfig::default());
    let sb = sandbox_with_busybox();
    let host = reg.host();
    sb.ok(&[
        "push",
        INSECURE,
        "busybox",
        &format!("docker://{host}/bad/app:1"),
    ]);
    let layer = layer_digests(&format!("{host}/bad/app:1")).remove(0);
    let hex = layer.trim_start_matches("sha256:");
    let relay = Relay::start(reg.port, hex, Mischief::Corrupt);
    let other = Sandbox::new(Runner::Root);
    let out = other.rbuild(&[
        "pull",
        INSECURE,
        "--retry",
        "1",
        &format!("{}/bad/app:1", relay.host()),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    let seen = relay.blob_requests.lock().unwrap().clone();
    assert!(!out.status.success(), "{err}\n{seen:?}");
    assert!(
        err.contains(&layer) && err.contains("wrong content"),
        "{err}"
    );
    assert!(!other.store().join("blobs/sha256").join(hex).exists());
    let images = other.ok(&["images", "-q"]);
    assert!(images.trim().is_empty(), "{images}");
}

#[test]
fn a_connection_cut_mid_blob_resumes_with_a_range_request() {
    let reg = Registry::start(RegistryConfig::default());
    let sb = sandbox_with_busybox();
    let host = reg.host();
    sb.ok(&[
        "push",
        INSECURE,
        "busybox",
        &format!("docker://{host}/cut/app:1"),
    ]);
    let layer = layer_digests(&format!("{host}/cut/app:1")).remove(0);
    let hex = layer.trim_start_matches("sha256:").to_string();
    let relay = Relay::start(reg.port, &hex, Mischief::CutOnce);
    let other = Sandbox::new(Runner::Root);
    other.ok(&["pull", INSECURE, &format!("{}/cut/app:1", relay.host())]);
    let requests = relay.blob_requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(!requests[0].to_ascii_lowercase().contains("range:"));
    assert!(
        requests[1].to_ascii_lowercase().contains("range: bytes="),
        "{requests:?}"
    );
    assert!(other.store().join("blobs/sha256").join(&hex).is_file());
}

#[test]
fn chunked_uploads_and_parallel_layers() {
    let reg = Registry::start(RegistryConfig::default());
    let sb = sandbox_with_busybox();
    let host = reg.host();
    let ctx = sb.mkdir("ctx");
    fs::write(ctx.join("Containerfile"), "FROM busybox\nRUN echo one > /1\nRUN echo two > /2\nRUN head -c 300000 /bin/busybox > /3\n").unwrap();
    sb.ok(&["bud", "-q", "-t", "layered", ctx.to_str().unwrap()]);
    sb.ok(&[
        "push",
        INSECURE,
        "--max-parallel",
        "3",
        "--upload-chunk-size",
        "65536",
        "layered",
        &format!("docker://{host}/multi/layered:1"),
    ]);
    assert_eq!(layer_digests(&format!("{host}/multi/layered:1")).len(), 4);
    // The busybox layer (about 1 MiB compressed) went up in 64 KiB chunks.
    assert!(
        reg.count_requests("PATCH", "/blobs/uploads/") >= 8,
        "{}",
        reg.log()
    );
    let other = Sandbox::new(Runner::Root);
    other.ok(&[
        "pull",
        INSECURE,
        "--max-parallel",
        "4",
        &format!("{host}/multi/layered:1"),
    ]);
    let layout = sb.path().join("l");
    run(Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{host}/multi/layered:1"))
        .arg(format!("oci:{}:l", layout.display())));
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:l", layout.display()))
        .arg(sb.path().join("b")));
    assert_eq!(
        fs::read_to_string(sb.path().join("b/rootfs/2")).unwrap(),
        "two\n"
    );
}

/// An OCI layout holding an index with linux/amd64 and linux/arm64/v8 images.
fn two_platform_layout(dir: &Path) {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| -> (String, usize) {
        let hex = sha256_hex(bytes);
        fs::write(blobs.join(&hex), bytes).unwrap();
        (format!("sha256:{hex}"), bytes.len())
    };
    let src = dir.join("src");
    fs::create_dir_all(&src).unwrap();
    let mut manifests = Vec::new();
    for (arch, variant) in [("amd64", ""), ("arm64", "v8")] {
        fs::write(src.join("arch"), arch).unwrap();
        let tgz = dir.join(format!("{arch}.tar.gz"));
        run(Command::new("tar")
            .args([
                "--numeric-owner",
                "--owner=0",
                "--group=0",
                "--mtime=@0",
                "-czf",
            ])
            .arg(&tgz)
            .arg("-C")
            .arg(&src)
            .arg("arch"));
        let gz = fs::read(&tgz).unwrap();
        let plain = run(Command::new("sh")
            .arg("-c")
            .arg(format!("gzip -dc {} | sha256sum", tgz.display())));
        let diff_id = format!("sha256:{}", plain.split_whitespace().next().unwrap());
        let (layer, layer_size) = put(&gz);
        let variant_json = if variant.is_empty() {
            String::new()
        } else {
            format!(",\"variant\":\"{variant}\"")
        };
        let config = format!(
            r#"{{"architecture":"{arch}"{variant_json},"os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#
        );
        let (cfg, cfg_size) = put(config.as_bytes());
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cfg}","size":{cfg_size}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{layer}","size":{layer_size}}}]}}"#
        );
        let (m, m_size) = put(manifest.as_bytes());
        manifests.push(format!(r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{m}","size":{m_size},"platform":{{"architecture":"{arch}","os":"linux"{variant_json}}}}}"#));
    }
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{}]}}"#,
        manifests.join(",")
    );
    let (idx, idx_size) = put(index.as_bytes());
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    fs::write(
        dir.join("index.json"),
        format!(r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"{idx}","size":{idx_size},"annotations":{{"org.opencontainers.image.ref.name":"multi"}}}}]}}"#),
    )
    .unwrap();
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn an_index_with_two_platforms_gives_the_one_asked_for() {
    let reg = Registry::start(RegistryConfig::default());
    let sb = Sandbox::new(Runner::Root);
    let host = reg.host();
    let layout = sb.path().join("multi");
    two_platform_layout(&layout);
    run(Command::new("skopeo")
        .args(["copy", "--all", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:multi", layout.display()))
        .arg(format!("docker://{host}/idx/multi:1")));

    sb.ok(&[
        "pull",
        INSECURE,
        "--platform",
        "linux/arm64",
        &format!("{host}/idx/multi:1"),
    ]);
    let inspect = sb.ok(&["inspect", &format!("{host}/idx/multi:1")]);
    assert!(inspect.contains("arm64"), "{inspect}");
    let other = Sandbox::new(Runner::Root);
    other.ok(&[
        "pull",
        INSECURE,
        "--platform",
        "linux/amd64",
        &format!("{host}/idx/multi:1"),
    ]);
    let inspect = other.ok(&["inspect", &format!("{host}/idx/multi:1")]);
    assert!(
        inspect.contains("amd64") && !inspect.contains("arm64"),
        "{inspect}"
    );

    let out = other.rbuild(&[
        "pull",
        INSECURE,
        "--policy",
        "always",
        "--platform",
        "linux/s390x",
        &format!("{host}/idx/multi:1"),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("linux/s390x")
            && err.contains("linux/amd64")
            && err.contains("linux/arm64/v8"),
        "{err}"
    );
}

#[test]
fn all_platforms_pulls_every_image_and_pushes_the_index_back_unchanged() {
    let reg = Registry::start(RegistryConfig::default());
    let sb = Sandbox::new(Runner::Root);
    let host = reg.host();
    let layout = sb.path().join("multi");
    two_platform_layout(&layout);
    // The same images as an OCI index and as a docker manifest list.
    run(Command::new("skopeo")
        .args(["copy", "--all", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:multi", layout.display()))
        .arg(format!("docker://{host}/all/oci:1")));
    run(Command::new("skopeo")
        .args([
            "copy",
            "--all",
            "--format",
            "v2s2",
            "--dest-tls-verify=false",
        ])
        .arg(format!("oci:{}:multi", layout.display()))
        .arg(format!("docker://{host}/all/docker:1")));
    for (flavour, media_type) in [
        ("oci", "application/vnd.oci.image.index.v1+json"),
        (
            "docker",
            "application/vnd.docker.distribution.manifest.list.v2+json",
        ),
    ] {
        let source = format!("{host}/all/{flavour}:1");
        let raw = raw_manifest(&source, &[]);
        let index: serde_json::Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(index["mediaType"], media_type);
        let other = Sandbox::new(Runner::Root);
        other.ok(&["pull", INSECURE, "--all-platforms", &source]);
        // Two images and the list.
        assert_eq!(other.ok(&["images", "-q"]).lines().count(), 3);
        let inspected: serde_json::Value =
            serde_json::from_str(&other.ok(&["manifest", "inspect", &source])).unwrap();
        assert_eq!(inspected, index);
        let again = format!("{host}/all/{flavour}-again:2");
        let digestfile = other.path().join("digest");
        other.ok(&[
            "push",
            INSECURE,
            "--digestfile",
            digestfile.to_str().unwrap(),
            &source,
            &format!("docker://{again}"),
        ]);
        assert_eq!(raw_manifest(&again, &[]), raw, "{flavour}: the same bytes");
        assert_eq!(
            fs::read_to_string(&digestfile).unwrap(),
            format!("sha256:{}", sha256_hex(raw.as_bytes()))
        );
        // Each platform's image is the one the index names.
        for m in index["manifests"].as_array().unwrap() {
            let arch = m["platform"]["architecture"].as_str().unwrap();
            let config: serde_json::Value = serde_json::from_str(&run(Command::new("skopeo")
                .args(["inspect", "--config", "--raw", INSECURE])
                .arg(format!(
                    "docker://{host}/all/{flavour}-again@{}",
                    m["digest"].as_str().unwrap()
                ))))
            .unwrap();
            assert_eq!(config["architecture"], arch);
        }
    }

    // Re-compressed: new instance manifests, so a new index, still readable.
    let other = Sandbox::new(Runner::Root);
    other.ok(&[
        "pull",
        INSECURE,
        "--all-platforms",
        &format!("{host}/all/oci:1"),
    ]);
    other.ok(&[
        "push",
        INSECURE,
        "--compression-format",
        "zstd",
        &format!("{host}/all/oci:1"),
        &format!("docker://{host}/all/zstd:1"),
    ]);
    let zstd: serde_json::Value =
        serde_json::from_str(&raw_manifest(&format!("{host}/all/zstd:1"), &[])).unwrap();
    assert_eq!(zstd["manifests"].as_array().unwrap().len(), 2);
    let out_layout = other.path().join("zstd-layout");
    run(Command::new("skopeo")
        .args(["copy", "--all", "--src-tls-verify=false"])
        .arg(format!("docker://{host}/all/zstd:1"))
        .arg(format!("oci:{}:z", out_layout.display())));
    for m in zstd["manifests"].as_array().unwrap() {
        let manifest: serde_json::Value = serde_json::from_str(&raw_manifest(
            &format!("{host}/all/zstd@{}", m["digest"].as_str().unwrap()),
            &[],
        ))
        .unwrap();
        assert_eq!(
            manifest["layers"][0]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
    }
}

/// Adds a BuildKit-style attestation entry (`unknown/unknown`, an in-toto
/// layer) to the index of a layout made by [`two_platform_layout`].
fn add_attestation(dir: &Path) {
    let blobs = dir.join("blobs/sha256");
    let put = |bytes: &[u8]| -> (String, usize) {
        let hex = sha256_hex(bytes);
        fs::write(blobs.join(&hex), bytes).unwrap();
        (format!("sha256:{hex}"), bytes.len())
    };
    let (statement, statement_size) = put(br#"{"_type":"https://in-toto.io/Statement/v0.1"}"#);
    let (cfg, cfg_size) = put(br#"{"architecture":"unknown","os":"unknown","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cfg}","size":{cfg_size}}},"layers":[{{"mediaType":"application/vnd.in-toto+json","digest":"{statement}","size":{statement_size}}}]}}"#
    );
    let (m, m_size) = put(manifest.as_bytes());
    let top: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join("index.json")).unwrap()).unwrap();
    let old = top["manifests"][0]["digest"].as_str().unwrap();
    let old_path = blobs.join(old.trim_start_matches("sha256:"));
    let mut index: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&old_path).unwrap()).unwrap();
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": m, "size": m_size,
            "platform": {"architecture": "unknown", "os": "unknown"},
        }));
    let (idx, idx_size) = put(index.to_string().as_bytes());
    fs::write(
        dir.join("index.json"),
        format!(r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"{idx}","size":{idx_size},"annotations":{{"org.opencontainers.image.ref.name":"multi"}}}}]}}"#),
    )
    .unwrap();
}

#[test]
fn all_platforms_keeps_attestations_and_pushes_them_back_unchanged() {
    let reg = Registry::start(RegistryConfig::default());
    for (i, runner) in Runner::all().into_iter().enumerate() {
        attestations_round_trip(&reg, runner, &format!("att{i}"));
    }
}

fn attestations_round_trip(reg: &Registry, runner: Runner, repo: &str) {
    let sb = Sandbox::new(runner);
    let host = reg.host();
    let layout = sb.path().join("multi");
    two_platform_layout(&layout);
    add_attestation(&layout);
    run(Command::new("skopeo")
        .args(["copy", "--all", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:multi", layout.display()))
        .arg(format!("docker://{host}/{repo}/multi:1")));
    let raw = raw_manifest(&format!("{host}/{repo}/multi:1"), &[]);
    let out = sb.rbuild(&[
        "pull",
        INSECURE,
        "--all-platforms",
        &format!("{host}/{repo}/multi:1"),
    ]);
    common::assert_success(&out, &["pull --all-platforms"]);
    // skopeo counts every entry of the index, attestations included.
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("Copying 3 images generated from 3 images in list") && log.contains("(3/3)"),
        "{log}"
    );
    // The attestation is no image, but the stored list keeps its entry.
    let images = sb.ok(&["images", "-q", "--filter", "manifest=false"]);
    assert_eq!(images.lines().count(), 2, "{images}");
    let stored: serde_json::Value =
        serde_json::from_str(&sb.ok(&["manifest", "inspect", &format!("{host}/{repo}/multi:1")]))
            .unwrap();
    let archs: Vec<&str> = stored["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(archs, ["amd64", "arm64", "unknown"]);
    // The list's name gives the host's image (an image of each platform
    // is there; the attestation never matches).
    let list_name = format!("{host}/{repo}/multi:1");
    let inspected: serde_json::Value =
        serde_json::from_str(&sb.ok(&["inspect", "--type", "image", &list_name])).unwrap();
    let host_arch = if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "amd64"
    };
    assert_eq!(inspected["OCIv1"]["architecture"], host_arch, "{inspected}");
    let ctr = sb.ok(&["from", "--pull=never", &list_name]);
    assert!(ctr.trim().ends_with("working-container"), "{ctr}");
    sb.ok(&["rm", ctr.trim()]);
    // prune (gc) keeps its blobs: the push below needs them.
    sb.ok(&["prune"]);
    // Pushed elsewhere: the same index bytes, and the attestation manifest
    // and its in-toto blob are there.
    let digestfile = sb.path().join("digest");
    sb.ok(&[
        "push",
        INSECURE,
        "--digestfile",
        digestfile.to_str().unwrap(),
        &format!("{host}/{repo}/multi:1"),
        &format!("docker://{host}/{repo}/again:1"),
    ]);
    assert_eq!(raw_manifest(&format!("{host}/{repo}/again:1"), &[]), raw);
    assert_eq!(
        fs::read_to_string(&digestfile).unwrap(),
        format!("sha256:{}", sha256_hex(raw.as_bytes()))
    );
    let att = stored["manifests"][2]["digest"].as_str().unwrap();
    let att_manifest = raw_manifest(&format!("{host}/{repo}/again@{att}"), &[]);
    assert_eq!(
        format!("sha256:{}", sha256_hex(att_manifest.as_bytes())),
        att
    );
    let layout_out = sb.path().join("copied");
    run(Command::new("skopeo")
        .args(["copy", "--all", "--src-tls-verify=false"])
        .arg(format!("docker://{host}/{repo}/again:1"))
        .arg(format!("oci:{}:c", layout_out.display())));
    let statement = fs::read_dir(layout_out.join("blobs/sha256"))
        .unwrap()
        .filter_map(|e| fs::read_to_string(e.unwrap().path()).ok())
        .any(|t| t.contains("in-toto.io/Statement"));
    assert!(statement, "the in-toto blob went with the list");
}

#[test]
fn from_pulls_a_missing_base_and_respects_the_pull_policy() {
    let reg = Registry::start(RegistryConfig::default());
    let sb = sandbox_with_busybox();
    let host = reg.host();
    sb.ok(&[
        "push",
        INSECURE,
        "busybox",
        &format!("docker://{host}/base/busybox:1"),
    ]);
    let builder = Sandbox::new(Runner::Root);
    let ctx = builder.mkdir("ctx");
    fs::write(
        ctx.join("Containerfile"),
        format!("FROM {host}/base/busybox:1\nRUN echo built > /built\n"),
    )
    .unwrap();
    let out = builder.rbuild(&[
        "bud",
        "--pull=never",
        INSECURE,
        "-t",
        "app",
        ctx.to_str().unwrap(),
    ]);
    assert!(!out.status.success(), "never must not pull");
    builder.ok(&["bud", INSECURE, "-t", "app", ctx.to_str().unwrap()]);
    let images = builder.ok(&["images"]);
    assert!(images.contains(&format!("{host}/base/busybox")), "{images}");
    builder.ok(&[
        "push",
        INSECURE,
        "app",
        &format!("docker://{host}/built/app:1"),
    ]);
    assert_eq!(layer_digests(&format!("{host}/built/app:1")).len(), 2);
    // The base layer went back as the very blob that was pulled.
    assert_eq!(
        layer_digests(&format!("{host}/built/app:1"))[0],
        layer_digests(&format!("{host}/base/busybox:1"))[0]
    );
    let before = reg.count_requests("GET", "/manifests/");
    builder.ok(&[
        "bud",
        "--pull=always",
        INSECURE,
        "-t",
        "app",
        ctx.to_str().unwrap(),
    ]);
    assert!(reg.count_requests("GET", "/manifests/") > before);
}

#[test]
fn missing_images_and_tags_say_what_was_tried() {
    let reg = Registry::start(RegistryConfig::default());
    let sb = Sandbox::new(Runner::Root);
    let out = sb.rbuild(&["pull", INSECURE, &format!("{}/nothing/here:1", reg.host())]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nothing/here") && err.contains("not found"),
        "{err}"
    );
}

#[test]
fn rootless_pull_and_build_from_a_registry() {
    if !common::rootless_available() {
        eprintln!("note: rootless user missing; rootless registry test skipped");
        return;
    }
    let reg = Registry::start(RegistryConfig::default());
    let sb = sandbox_with_busybox();
    let host = reg.host();
    sb.ok(&[
        "push",
        INSECURE,
        "busybox",
        &format!("docker://{host}/rootless/busybox:1"),
    ]);
    let user = Sandbox::new(Runner::Rootless);
    user.ok(&["pull", INSECURE, &format!("{host}/rootless/busybox:1")]);
    let ctx = user.mkdir("ctx");
    user.write(
        "ctx/Containerfile",
        format!("FROM {host}/rootless/busybox:1\nRUN id -u > /uid\n"),
    );
    user.ok(&["bud", INSECURE, "-t", "mine", ctx.to_str().unwrap()]);
    user.ok(&[
        "push",
        INSECURE,
        "mine",
        &format!("docker://{host}/rootless/mine:1"),
    ]);
    assert_eq!(
        layer_digests(&format!("{host}/rootless/mine:1"))[0],
        layer_digests(&format!("{host}/rootless/busybox:1"))[0]
    );
}

#[test]
fn pull_policies_decide_whether_the_registry_is_asked() {
    let reg = Registry::start(RegistryConfig::default());
    let sb = sandbox_with_busybox();
    let host = reg.host();
    sb.ok(&[
        "push",
        INSECURE,
        "busybox",
        &format!("docker://{host}/pol/busybox:1"),
    ]);
    let other = Sandbox::new(Runner::Root);
    let name = format!("{host}/pol/busybox:1");
    let out = other.rbuild(&["pull", INSECURE, "--policy", "never", &name]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("never"));
    let id = other.ok(&["pull", INSECURE, "-q", &name]);
    let asked = reg.count_requests("GET", "/manifests/");
    // Default (missing): present, so the registry is not asked again.
    assert_eq!(other.ok(&["pull", INSECURE, "-q", &name]), id);
    assert_eq!(reg.count_requests("GET", "/manifests/"), asked);
    // always: asked again, same image.
    assert_eq!(
        other.ok(&["pull", INSECURE, "-q", "--policy", "always", &name]),
        id
    );
    assert!(reg.count_requests("GET", "/manifests/") > asked);
    // newer: the registry is gone, the stored image is used.
    drop(reg);
    assert_eq!(
        other.ok(&["pull", INSECURE, "-q", "--policy", "newer", "--retry", "0", &name]),
        id
    );
}

#[test]
fn all_tags_pulls_every_tag() {
    let reg = Registry::start(RegistryConfig::default());
    let sb = sandbox_with_busybox();
    let host = reg.host();
    for tag in ["1", "2", "latest"] {
        sb.ok(&[
            "push",
            INSECURE,
            "busybox",
            &format!("docker://{host}/tags/busybox:{tag}"),
        ]);
    }
    let other = Sandbox::new(Runner::Root);
    other.ok(&[
        "pull",
        INSECURE,
        "--all-tags",
        &format!("{host}/tags/busybox"),
    ]);
    let images = other.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    for tag in ["1", "2", "latest"] {
        assert!(
            images.contains(&format!("{host}/tags/busybox:{tag}")),
            "{images}"
        );
    }
}

#[test]
fn a_503_is_retried_after_the_servers_delay() {
    let reg = Registry::start(RegistryConfig::default());
    let sb = sandbox_with_busybox();
    let host = reg.host();
    sb.ok(&[
        "push",
        INSECURE,
        "busybox",
        &format!("docker://{host}/busy/app:1"),
    ]);
    let layer = layer_digests(&format!("{host}/busy/app:1")).remove(0);
    let relay = Relay::start(
        reg.port,
        layer.trim_start_matches("sha256:"),
        Mischief::Unavailable503Once,
    );
    let other = Sandbox::new(Runner::Root);
    other.ok(&["pull", INSECURE, &format!("{}/busy/app:1", relay.host())]);
    assert_eq!(relay.blob_requests.lock().unwrap().len(), 2);
    // With no retries allowed, the same 503 fails the pull.
    let relay = Relay::start(
        reg.port,
        layer.trim_start_matches("sha256:"),
        Mischief::Unavailable503Once,
    );
    let third = Sandbox::new(Runner::Root);
    let out = third.rbuild(&[
        "pull",
        INSECURE,
        "--retry",
        "0",
        &format!("{}/busy/app:1", relay.host()),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("503"));
}
