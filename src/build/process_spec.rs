//! The process a RUN step or `rbuild run` starts inside a rootfs: its user
//! resolved through the image's own passwd/group (as docker does, so a name
//! means what the image says it means), `HOME` from that user unless the
//! environment sets it, and the working directory created when the image
//! lacks it. Both callers then add what is theirs (mounts, network, stdio).

use std::path::Path;

use crate::build::userdb::{resolve_user, UserDbError};
use crate::layer::rootfs::{Rootfs, RootfsError};
use crate::sandbox::RunSpec;

/// A [`RunSpec`] for `argv` in the rootfs at `root`, run as `user_spec`
/// (`USER` syntax; empty is root) in `workdir` (absolute, inside the image).
pub fn process_spec<E>(
    root: &Path,
    argv: Vec<String>,
    mut env: Vec<(String, String)>,
    user_spec: &str,
    workdir: &str,
) -> Result<RunSpec, E>
where
    E: From<UserDbError> + From<RootfsError>,
{
    let rootfs = Rootfs::new(root.to_path_buf());
    let user = resolve_user(&rootfs, if user_spec.is_empty() { "0" } else { user_spec })?;
    if !env.iter().any(|(k, _)| k == "HOME") {
        env.push(("HOME".to_string(), user.home.display().to_string()));
    }
    if rootfs.metadata(workdir)?.is_none() {
        rootfs.create_dir_all(workdir, Default::default())?;
    }
    let mut spec = RunSpec::new(root, argv);
    spec.env = env;
    spec.cwd = workdir.to_string();
    spec.uid = user.uid;
    spec.gid = user.gid;
    spec.additional_gids = user.supplementary_gids;
    Ok(spec)
}
