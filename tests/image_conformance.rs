//! Byte-for-byte agreement with Go writers: a config written by umoci
//! (image-spec's Go structs) reads into [`Image`] and serialises back to the
//! same bytes, and the manifests rbuild writes equal the ones skopeo
//! (containers/image) makes when it converts between OCI and docker.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use rbuild::digest::{Digest, DigestWriter};
use rbuild::image::config::ImageConfigBuilder;
use rbuild::image::manifest::{ImageManifest, OciIndex, DOCKER_MANIFEST};
use rbuild::image::{
    export, BlobInfo, Compression, Destination, ExportOptions, ExportSource, Image, LayerBlob,
    LayerRef, ManifestFormat, Platform, SourceError, Timestamp,
};

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn umoci(args: &[&str]) {
    run(Command::new("umoci").args(args));
}

/// The config blob of `layout:tag`, found through index.json and the manifest.
fn config_blob(layout: &Path, tag: &str) -> Vec<u8> {
    let index: OciIndex =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let entry = index
        .manifests
        .iter()
        .find(|d| {
            d.annotations
                .get("org.opencontainers.image.ref.name")
                .map(String::as_str)
                == Some(tag)
        })
        .expect("tag in index");
    let blob = |d: &Digest| fs::read(layout.join("blobs/sha256").join(d.hex())).unwrap();
    let manifest = ImageManifest::from_json(&blob(&entry.digest)).unwrap();
    let mut bytes = blob(&manifest.config.digest);
    // umoci writes through json.Encoder, which ends with a newline; docker
    // and buildah use json.Marshal, which does not: compare the JSON itself.
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
    }
    bytes
}

#[test]
fn umoci_configs_round_trip_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let image = format!("{}:t", layout.display());
    umoci(&["init", "--layout", &layout.to_string_lossy()]);
    umoci(&["new", "--image", &image]);
    umoci(&[
        "config",
        "--image",
        &image,
        "--author",
        "Jane <jane@example.com>",
        "--created",
        "2024-02-03T04:05:06.7Z",
        "--config.user",
        "1000:1000",
        "--config.exposedports",
        "80/tcp",
        "--config.exposedports",
        "53/udp",
        "--config.env",
        "PATH=/usr/bin",
        "--config.env",
        "A=<&>",
        "--config.entrypoint",
        "/entry",
        "--config.cmd",
        "--flag",
        "--config.volume",
        "/data",
        "--config.label",
        "b=2",
        "--config.label",
        "a=1",
        "--config.workingdir",
        "/work",
        "--config.stopsignal",
        "SIGINT",
        "--history.created_by",
        "/bin/sh -c #(nop) ENV A=<&>",
        "--history.comment",
        "a comment",
        "--history.created",
        "2024-02-03T04:05:06Z",
    ]);
    let bytes = config_blob(&layout, "t");
    let parsed = Image::from_json(&bytes).unwrap();
    assert_eq!(parsed.config.env, vec!["PATH=/usr/bin", "A=<&>"]);
    assert_eq!(parsed.config.exposed_ports.len(), 2);
    assert_eq!(parsed.history[0].comment, "a comment");
    assert_eq!(
        String::from_utf8(parsed.to_oci_json()).unwrap(),
        String::from_utf8(bytes).unwrap(),
        "rbuild re-serialises umoci's config to the same bytes"
    );
}

#[test]
fn builder_output_matches_a_go_writer() {
    // umoci writes the same values the builder is given; the bytes must match.
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let image = format!("{}:t", layout.display());
    umoci(&["init", "--layout", &layout.to_string_lossy()]);
    umoci(&["new", "--image", &image]);
    let host = Platform::host();
    umoci(&[
        "config",
        "--image",
        &image,
        "--no-history",
        "--created",
        "2024-02-03T04:05:06Z",
        "--architecture",
        &host.architecture,
        "--os",
        "linux",
        "--config.env",
        "A=1",
        "--config.cmd",
        "run",
        "--config.exposedports",
        "8080/tcp",
        "--config.workingdir",
        "/srv",
        "--config.label",
        "k=v",
    ]);
    let theirs = config_blob(&layout, "t");

    let mut b = ImageConfigBuilder::scratch(Platform {
        variant: String::new(),
        ..host
    });
    b.set_created(Timestamp::parse("2024-02-03T04:05:06Z").unwrap());
    b.set_env("A", "1");
    b.set_cmd(vec!["run".into()]);
    b.expose("8080").unwrap();
    b.set_workdir("/srv");
    b.set_label("k", "v");
    let ours = b.build().to_oci_json();
    assert_eq!(
        String::from_utf8(ours).unwrap(),
        String::from_utf8(theirs).unwrap()
    );
}

/// One gzip layer made with flate2.
struct OneLayer {
    config: Vec<u8>,
    tar: Vec<u8>,
}

impl ExportSource for OneLayer {
    fn config(&self) -> Result<Vec<u8>, SourceError> {
        Ok(self.config.clone())
    }
    fn layers(&self) -> Vec<LayerRef> {
        vec![LayerRef {
            diff_id: Digest::of(&self.tar),
        }]
    }
    fn write_layer_blob(
        &self,
        _: usize,
        compression: Compression,
        out: &mut dyn Write,
    ) -> Result<LayerBlob, SourceError> {
        let mut w = DigestWriter::new(out);
        match compression {
            Compression::None => w.write_all(&self.tar)?,
            Compression::Gzip => {
                let mut gz = flate2::write::GzEncoder::new(&mut w, flate2::Compression::default());
                gz.write_all(&self.tar)?;
                gz.finish()?;
            }
            Compression::Zstd => return Err("not used here".into()),
        }
        let (_, digest, size) = w.finish();
        Ok(LayerBlob {
            diff_id: Digest::of(&self.tar),
            blob: BlobInfo { digest, size },
        })
    }
}

fn one_layer() -> OneLayer {
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_path("hello").unwrap();
    h.set_size(3);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append(&h, &b"hi\n"[..]).unwrap();
    let tar = tar.into_inner().unwrap();
    let t = Timestamp::parse("2024-01-01T00:00:00Z").unwrap();
    let mut b = ImageConfigBuilder::scratch(Platform::host());
    b.set_created(t);
    b.add_layer(Digest::of(&tar), t, "/bin/sh -c #(nop) COPY file:x in / ");
    OneLayer {
        config: b.build().to_oci_json(),
        tar,
    }
}

#[test]
fn manifests_match_skopeo_conversions() {
    let tmp = tempfile::tempdir().unwrap();
    let src = one_layer();
    let oci_dir = tmp.path().join("oci");
    let docker_dir = tmp.path().join("docker");
    let oci: Destination = format!("dir:{}", oci_dir.display()).parse().unwrap();
    let docker: Destination = format!("dir:{}", docker_dir.display()).parse().unwrap();
    let gzip = ExportOptions::default();
    let as_docker = ExportOptions {
        format: ManifestFormat::Docker,
        ..ExportOptions::default()
    };
    export(&src, &oci, &gzip).unwrap();
    export(&src, &docker, &as_docker).unwrap();

    // skopeo converts our OCI image to docker schema2: same bytes as ours.
    let converted = tmp.path().join("converted-docker");
    run(Command::new("skopeo").args([
        "--insecure-policy",
        "copy",
        "--format",
        "v2s2",
        &format!("dir:{}", oci_dir.display()),
        &format!("dir:{}", converted.display()),
    ]));
    let skopeo_docker = fs::read(converted.join("manifest.json")).unwrap();
    assert!(String::from_utf8_lossy(&skopeo_docker).contains(DOCKER_MANIFEST));
    assert_eq!(
        String::from_utf8(skopeo_docker).unwrap(),
        String::from_utf8(fs::read(docker_dir.join("manifest.json")).unwrap()).unwrap()
    );

    // And back: our docker image converted to OCI equals our OCI manifest.
    let back = tmp.path().join("converted-oci");
    run(Command::new("skopeo").args([
        "--insecure-policy",
        "copy",
        "--format",
        "oci",
        &format!("dir:{}", docker_dir.display()),
        &format!("dir:{}", back.display()),
    ]));
    assert_eq!(
        String::from_utf8(fs::read(back.join("manifest.json")).unwrap()).unwrap(),
        String::from_utf8(fs::read(oci_dir.join("manifest.json")).unwrap()).unwrap()
    );
}

/// skopeo renders `inspect --format` with Go's text/template: the same
/// templates over the same data give the same text with rbuild's renderer.
#[test]
fn templates_render_like_go_text_template() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let image = format!("{}:t", layout.display());
    umoci(&["init", "--layout", &layout.to_string_lossy()]);
    umoci(&["new", "--image", &image]);
    umoci(&[
        "config",
        "--image",
        &image,
        "--config.env",
        "A=1",
        "--config.env",
        "B=<2>",
        "--config.label",
        "x=<y>",
        "--config.label",
        "a.b=c d",
    ]);
    let target = format!("oci:{image}");
    let data: serde_json::Value =
        serde_json::from_str(&run(Command::new("skopeo").args(["inspect", &target]))).unwrap();
    let templates = [
        "{{.Digest}} {{.Architecture}}/{{.Os}}",
        "{{range .Env}}<{{.}}>{{end}}",
        r#"{{index .Labels "x"}}|{{index .Labels "a.b"}}|{{index .Labels "nope"}}"#,
        "{{.Layers}} {{.Labels}} {{.Env}} {{.RepoTags}}",
        "{{len .Env}} {{len .Labels}}",
        "{{if .Layers}}layers{{else}}no layers{{end}} {{if .Env}}env{{end}}",
        r#"{{printf "%-8s|%q|%5s" .Os .Os "x"}}"#,
        "{{with .Labels}}{{.x}}{{end}}{{with .Layers}}never{{else}}empty{{end}}",
        "{{range .Labels}}[{{.}}]{{end}}",
        "{{- .Os -}}  \n  {{- .Architecture}}",
        "{{.Labels | len}}",
    ];
    for template in templates {
        let go = run(Command::new("skopeo").args(["inspect", "--format", template, &target]));
        let ours = rbuild::image::format::Template::parse(template)
            .unwrap()
            .render(&data)
            .unwrap();
        // skopeo adds a newline after the template output.
        assert_eq!(
            ours,
            go.strip_suffix('\n').unwrap_or(&go),
            "template {template:?}"
        );
    }
}
