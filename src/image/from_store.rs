//! [`StoreImage`]: the name `push` opens a stored image by. It is
//! [`StoreSource`] with the default tar options — the executor clamps
//! mtimes on disk at commit, so re-tarring a layer reproduces its diff ID
//! without knowing the clamp — and with its blob cache and transcoding
//! (a layer with a blob in another compression keeps its exact diff ID).

use crate::image::store_source::{StoreSource, StoreSourceError};
use crate::layer::TarOptions;
use crate::store::{ImageRecord, Store};

/// A stored image, ready to export.
pub type StoreImage<'a> = StoreSource<'a>;

impl<'a> StoreSource<'a> {
    /// Opens `record` for export.
    pub fn open(
        store: &'a Store,
        record: &ImageRecord,
    ) -> Result<StoreImage<'a>, StoreSourceError> {
        StoreSource::new(store, record, TarOptions::default())
    }
}
