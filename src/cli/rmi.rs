//! `rbuild rmi`: remove images as buildah does — a name untags when the
//! image has other names, an ID removes the image (`--force` when it has
//! several names), `--all`, `--prune` for dangling images; blobs and layers
//! no image needs any more are collected afterwards. A manifest list's name
//! removes the list (`--all` removes every list first); an image a list
//! holds is refused until the list goes.

use anyhow::bail;

use super::GlobalOptions;
use crate::image::lookup::{lookup, Found};

#[derive(Debug, clap::Args)]
pub struct RmiArgs {
    /// Images (names or IDs).
    pub images: Vec<String>,
    /// Remove all images.
    #[arg(short, long)]
    pub all: bool,
    /// Remove images that have several names, by ID, and images working
    /// containers use (removing those containers).
    #[arg(short, long)]
    pub force: bool,
    /// Remove dangling images (no names) too.
    #[arg(short, long)]
    pub prune: bool,
}

pub fn run(global: &GlobalOptions, args: RmiArgs) -> anyhow::Result<i32> {
    // The caller's mount namespace: `--force` unmounts containers it removes.
    let access = super::store_access::open_host_mounts(global)?;
    let store = &access.store;
    if args.images.is_empty() && !args.all && !args.prune {
        bail!("rmi needs at least one image name or ID, --all or --prune");
    }
    if !args.images.is_empty() && args.all {
        bail!("when using the --all switch, you may not pass any images names or IDs");
    }
    if !args.images.is_empty() && args.prune {
        bail!("when using the --prune switch, you may not pass any images names or IDs");
    }
    let mut failed = false;
    // As buildah reports it: every name untagged first, then the IDs of
    // what went, whatever order the work happened in.
    let mut untagged: Vec<String> = Vec::new();
    let mut removed: Vec<crate::digest::Digest> = Vec::new();
    // Whatever went before an error is still reported.
    let work = (|| -> anyhow::Result<()> {
        if args.all {
            for list in store.lists()? {
                store.remove_list(&list.name)?;
                untagged.push(list.name.clone());
                if !removed.contains(&list.id) {
                    removed.push(list.id);
                }
            }
            for rec in store.images()? {
                if !release_containers(store, &access.runroot, &rec.id, args.force)? {
                    failed = true;
                    continue;
                }
                store.remove_image(&rec.id)?;
                untagged.extend(rec.names.iter().cloned());
                removed.push(rec.id);
            }
        }
        for name in &args.images {
            // A list name removes the list (this name of it), not its images.
            let rec = match lookup(store, name) {
                Ok(Found::Image(r)) => r,
                Ok(Found::List(list)) => {
                    store.remove_list(&list.name)?;
                    untagged.push(list.name.clone());
                    removed.push(list.id);
                    continue;
                }
                Err(e) => {
                    eprintln!("Error: {e}");
                    failed = true;
                    continue;
                }
            };
            let by_id = rec.id.hex().starts_with(name.trim_start_matches("sha256:"));
            if by_id || rec.names.len() <= 1 {
                if rec.names.len() > 1 && !args.force {
                    eprintln!(
                        "Error: image {} has {} names ({}); remove them one by one or use --force",
                        rec.id.short(),
                        rec.names.len(),
                        rec.names.join(", ")
                    );
                    failed = true;
                    continue;
                }
                if !release_containers(store, &access.runroot, &rec.id, args.force)? {
                    failed = true;
                    continue;
                }
                if let Err(e) = store.remove_image(&rec.id) {
                    eprintln!("Error: {e}");
                    failed = true;
                    continue;
                }
                untagged.extend(rec.names.iter().cloned());
                removed.push(rec.id);
            } else {
                let full = rec
                    .names
                    .iter()
                    .find(|n| lookup_name_matches(n, name))
                    .cloned()
                    .unwrap_or_else(|| rec.names[0].clone());
                store.untag(&full)?;
                untagged.push(full);
            }
        }
        if args.prune {
            let report = store.prune()?;
            removed.extend(report.images_removed.iter().copied());
        }
        Ok(())
    })();
    for n in &untagged {
        println!("untagged: {n}");
    }
    for id in &removed {
        println!("{}", id.hex());
    }
    work?;
    store.gc()?;
    // buildah exits 125 when any image could not be removed.
    Ok(if failed { 125 } else { 0 })
}

/// Whether the image may go: no working container uses it, or `--force`
/// (which removes those containers, as buildah does).
fn release_containers(
    store: &crate::store::Store,
    runroot: &std::path::Path,
    id: &crate::digest::Digest,
    force: bool,
) -> anyhow::Result<bool> {
    let users: Vec<String> = store
        .containers()?
        .into_iter()
        .filter(|c| c.image.as_ref() == Some(id))
        .map(|c| c.name)
        .collect();
    if users.is_empty() {
        return Ok(true);
    }
    if !force {
        eprintln!(
            "Error: image {} is in use by container(s) {}; remove them first (rbuild rm) or use --force",
            id.short(),
            users.join(", ")
        );
        return Ok(false);
    }
    for name in users {
        let wc = crate::container::WorkingContainer::open(store, &name)?;
        crate::container::mounts::umount(runroot, &wc)?;
        store.remove_container(&name)?;
    }
    Ok(true)
}

fn lookup_name_matches(stored: &str, typed: &str) -> bool {
    let Ok(typed) = crate::reference::Reference::parse(typed) else {
        return false;
    };
    let Ok(stored) = crate::reference::Reference::parse(stored) else {
        return false;
    };
    typed.match_stored(&stored).is_some()
}
