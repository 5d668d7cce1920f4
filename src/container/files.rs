//! `rbuild copy` / `rbuild add`: COPY and ADD semantics (the same
//! `copy_into`/`add_into` a build uses) from host paths, an image or
//! another container into the container's merged view.

use std::path::{Path, PathBuf};

use crate::build::add::{add_into, AddOptions};
use crate::build::context::SourceTree;
use crate::build::copy::{copy_into, CopyOptions};
use crate::build::userdb::resolve_chown;
use crate::container::error::{ContainerError, Result};
use crate::container::mounts::{ReadView, View};
use crate::container::state::WorkingContainer;
use crate::image::lookup::lookup_image;
use crate::layer::rootfs::Rootfs;
use crate::store::Store;

/// What `copy`/`add` were asked for.
#[derive(Debug, Default)]
pub struct CopyRequest {
    /// Host paths (relative to the current directory), URLs for `add`, or
    /// paths inside `from`.
    pub sources: Vec<String>,
    pub dest: String,
    pub chown: Option<String>,
    /// Octal mode (`--chmod 0755`).
    pub chmod: Option<u32>,
    /// `--from IMAGE|CONTAINER`.
    pub from: Option<String>,
    /// ADD semantics: URLs and local archives are fetched and extracted.
    pub add: bool,
}

/// `--chmod` as an octal mode.
pub fn parse_chmod(spec: &str) -> Result<u32> {
    u32::from_str_radix(spec, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| {
            ContainerError::Invalid(format!(
                "--chmod {spec}: expected an octal mode such as 0755"
            ))
        })
}

enum Origin {
    Host,
    Container(ReadView),
    Image(crate::build::step::View),
}

/// Copies into the container; what was written stays in its upper dir.
pub fn copy(store: &Store, runroot: &Path, wc: &WorkingContainer, req: &CopyRequest) -> Result<()> {
    if req.sources.is_empty() {
        return Err(ContainerError::Invalid(
            "copy: no source given (rbuild copy CONTAINER SRC… DEST)".into(),
        ));
    }
    let origin = match &req.from {
        None => Origin::Host,
        Some(from) => match WorkingContainer::open(store, from) {
            Ok(other) => Origin::Container(ReadView::open(runroot, &other)?),
            Err(_) => {
                let rec = lookup_image(store, from).map_err(|e| {
                    ContainerError::Invalid(format!(
                        "--from {from}: no container or image by that name: {e}"
                    ))
                })?;
                Origin::Image(crate::build::step::View::mount(
                    store,
                    &rec.layers,
                    &runroot.join("mounts"),
                )?)
            }
        },
    };
    let (tree, sources) = match &origin {
        Origin::Host => {
            let cwd = std::env::current_dir()
                .map_err(ContainerError::io("read", "the current directory"))?;
            let sources = req
                .sources
                .iter()
                .map(|s| {
                    if s.starts_with("http://") || s.starts_with("https://") || s.starts_with('/') {
                        s.clone()
                    } else {
                        cwd.join(s).display().to_string()
                    }
                })
                .collect::<Vec<_>>();
            (
                SourceTree::context(PathBuf::from("/"), Default::default()),
                sources,
            )
        }
        Origin::Container(v) => (
            SourceTree::image(
                v.root().to_path_buf(),
                format!("container {:?}", req.from.as_deref().unwrap_or("")),
            ),
            req.sources.clone(),
        ),
        Origin::Image(v) => (
            SourceTree::image(
                v.root().to_path_buf(),
                format!("image {:?}", req.from.as_deref().unwrap_or("")),
            ),
            req.sources.clone(),
        ),
    };
    let view = View::open(store, runroot, wc)?;
    let written = (|| {
        let rootfs = Rootfs::new(view.root().to_path_buf());
        let opts = CopyOptions {
            chown: req
                .chown
                .as_deref()
                .map(|c| resolve_chown(&rootfs, c))
                .transpose()?,
            chmod: req.chmod,
            exclude: Vec::new(),
            parents: false,
            workdir: PathBuf::from(&wc.state.image.config.working_dir),
            preserve_ownership_from_source: req.from.is_some(),
        };
        if req.add {
            let add = AddOptions {
                copy: opts,
                checksum: None,
                keep_git_dir: false,
            };
            add_into(&rootfs, &tree, &sources, &req.dest, &add)?;
        } else {
            copy_into(&rootfs, &tree, &sources, &req.dest, &opts)?;
        }
        Ok::<_, ContainerError>(())
    })();
    let unmounted = view.finish();
    drop(origin);
    written?;
    unmounted
}
