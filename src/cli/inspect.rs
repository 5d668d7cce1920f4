//! `rbuild inspect [--type image|container|manifest] [--format T] NAME`: an
//! image, a working container or a manifest list as buildah prints them. A
//! list name inspects the list's image for this platform (libimage's
//! lookup); with no such image, or with `--type manifest`, the list itself
//! is printed as `manifest inspect` prints it, as buildah falls back.

use std::io::Write;

use anyhow::Context;

use super::GlobalOptions;
use crate::image::format::Template;
use crate::image::inspect::ImageInspect;
use crate::image::lookup::lookup_image;
use crate::image::manifest::ImageManifest;
use crate::image::Image;
use crate::registry::manifest_list::read_document;
use crate::store::StoreError;

use crate::image::lookup::lookup_list;

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The image or container (name or ID).
    pub name: String,
    /// What to inspect (default: an image, else a container; a list name
    /// without an image for this platform shows the list).
    #[arg(short, long = "type", value_parser = ["image", "container", "manifest"])]
    pub kind: Option<String>,
    /// Go template applied to the inspect data.
    #[arg(short, long)]
    pub format: Option<String>,
}

pub fn run(global: &GlobalOptions, args: InspectArgs) -> anyhow::Result<i32> {
    // buildah refuses a format with no action: it is almost always a typo
    // for a field (`--format .Config`), not text to print as is.
    if let Some(fmt) = &args.format {
        let action = fmt.find("{{").is_some_and(|i| fmt[i..].contains("}}"));
        if !action {
            anyhow::bail!("invalid format provided: {fmt} (expected a Go template such as '{{{{.FromImageID}}}}')");
        }
    }
    let access = super::store_access::open(global)?;
    let store = &access.store;
    let kind = args.kind.as_deref();
    if kind == Some("container") {
        return inspect_container(store, &access.runroot, &args);
    }
    if kind == Some("manifest") {
        return inspect_list(store, &lookup_list(store, &args.name)?, &args);
    }
    let rec = match lookup_image(store, &args.name) {
        Ok(r) => r,
        // A list without an image for this platform: the list itself,
        // unless `--type image` asked for an image only.
        Err(StoreError::ListNoInstance { list, .. }) if kind.is_none() => {
            return inspect_list(store, &store.list(&list)?, &args)
        }
        // buildah inspects a container when the name is one.
        Err(e) if kind.is_none() && e.is_not_found() && store.container(&args.name).is_ok() => {
            return inspect_container(store, &access.runroot, &args)
        }
        Err(e) => return Err(e.into()),
    };
    let config_bytes = store.read_blob(&rec.id)?;
    let manifest_bytes = store.read_blob(&rec.manifest)?;
    let image = Image::from_json(&config_bytes)?;
    let manifest = ImageManifest::from_json(&manifest_bytes)?;
    let name = rec
        .names
        .first()
        .cloned()
        .unwrap_or_else(|| args.name.clone());
    let inspect = ImageInspect::new(
        &name,
        &image,
        &config_bytes,
        &manifest_bytes,
        &manifest.annotations,
    );
    // Written, not println!'d: a closed pipe is an error to report, not a panic.
    let mut out = std::io::stdout().lock();
    match &args.format {
        Some(fmt) => {
            let template = Template::parse(fmt).with_context(|| format!("--format {fmt:?}"))?;
            let value = serde_json::to_value(&inspect)?;
            writeln!(
                out,
                "{}",
                template.render_with_zero_values(&value, &zero_values())?
            )?;
        }
        None => out.write_all(&inspect.to_json())?,
    }
    Ok(0)
}

/// What buildah's Go structs print for the fields rbuild's JSON leaves out
/// when empty: `{{.OCIv1.Config.Cmd}}` is `[]` there, not `<no value>`.
fn zero_values() -> serde_json::Value {
    let config = serde_json::json!({
        "User": "", "ExposedPorts": {}, "Env": [], "Entrypoint": [], "Cmd": [],
        "Volumes": {}, "WorkingDir": "", "Labels": {}, "StopSignal": "",
    });
    let mut docker_config = config.clone();
    docker_config["OnBuild"] = serde_json::json!([]);
    docker_config["Shell"] = serde_json::json!([]);
    serde_json::json!({
        "OCIv1": {
            "author": "", "os.version": "", "os.features": [], "variant": "",
            "config": config, "history": [],
        },
        "Docker": {
            "author": "", "os.version": "", "os.features": [], "variant": "",
            "config": docker_config.clone(), "container_config": docker_config, "history": [],
        },
        "ImageAnnotations": {}, "ImageCreatedBy": "",
    })
}

/// A manifest list as `manifest inspect` prints it (`--format` applies to
/// the index document).
fn inspect_list(
    store: &crate::store::Store,
    list: &crate::store::ManifestList,
    args: &InspectArgs,
) -> anyhow::Result<i32> {
    let doc = read_document(store, list)?;
    let mut out = std::io::stdout().lock();
    match &args.format {
        Some(fmt) => {
            let template = Template::parse(fmt).with_context(|| format!("--format {fmt:?}"))?;
            let value: serde_json::Value = serde_json::from_slice(&doc.to_json())?;
            writeln!(out, "{}", template.render(&value)?)?;
        }
        None => writeln!(out, "{}", String::from_utf8_lossy(&doc.to_pretty_json()))?,
    }
    Ok(0)
}

/// The container as buildah's `inspect --type container` shows a builder.
fn inspect_container(
    store: &crate::store::Store,
    runroot: &std::path::Path,
    args: &InspectArgs,
) -> anyhow::Result<i32> {
    use crate::container::mounts::{is_mounted, mount_point};
    let wc = crate::container::WorkingContainer::open(store, &args.name)?;
    let rec = &wc.container.record;
    let path = mount_point(runroot, &wc);
    let image = &wc.state.image;
    // buildah keeps the base image's manifest and config (as JSON text) and
    // its manifest digest on the builder; a scratch container has none.
    let base = rec.image.and_then(|id| store.image(&id).ok());
    let blob_text = |d: &crate::digest::Digest| {
        store
            .read_blob(d)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let value = serde_json::json!({
        "Type": "rbuild 0.0.1",
        "FromImage": rec.image_name.clone().unwrap_or_default(),
        "FromImageID": rec.image.map(|d| d.hex().to_string()).unwrap_or_default(),
        "Container": rec.name,
        "ContainerID": wc.state.id,
        "Created": rec.created,
        "FromImageDigest": base.as_ref().map(|b| b.manifest.to_string()).unwrap_or_default(),
        "Config": base.as_ref().map(|b| blob_text(&b.id)).unwrap_or_default(),
        "Manifest": base.as_ref().map(|b| blob_text(&b.manifest)).unwrap_or_default(),
        "MountPoint": if is_mounted(&path) { path.display().to_string() } else { String::new() },
        "ImageAnnotations": wc.state.annotations,
        "ImageCreatedBy": wc.state.created_by.clone().unwrap_or_default(),
        "OCIv1": serde_json::from_slice::<serde_json::Value>(&image.to_oci_json())?,
        "Docker": serde_json::from_slice::<serde_json::Value>(&image.to_docker_json())?,
        "History": serde_json::to_value(&image.history)?,
        "Layers": wc.layers(store)?.iter().map(|c| c.digest().to_string()).collect::<Vec<_>>(),
        "UpperDir": wc.container.upper(),
    });
    let mut out = std::io::stdout().lock();
    match &args.format {
        Some(fmt) => {
            let template = Template::parse(fmt).with_context(|| format!("--format {fmt:?}"))?;
            writeln!(
                out,
                "{}",
                template.render_with_zero_values(&value, &zero_values())?
            )?;
        }
        None => writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?,
    }
    Ok(0)
}
