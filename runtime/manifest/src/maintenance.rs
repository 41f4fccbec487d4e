//! Table maintenance settings both engines read from a table's properties (Iceberg's names,
//! plus contractc's own): `serve`'s maintenance (`runtime/serve/src/maintenance.rs`) and the
//! generated Glue maintenance job (`compiler/templates/maintenance_job.py.tera`) take the same
//! defaults and floors, so both keep their tables alike.

use std::collections::BTreeMap;

/// One setting: the table property, the value taken where a table sets none (or sets no
/// number), and the least value taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub property: &'static str,
    pub default: u64,
    pub floor: u64,
}

impl Setting {
    /// The setting's value for a table with `properties`.
    pub fn of(&self, properties: &BTreeMap<String, String>) -> u64 {
        properties
            .get(self.property)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(self.default)
            .max(self.floor)
    }
}

/// Compaction writes files up to this size and leaves files of at least 3/4 of it alone
/// (Iceberg's default, 512 MiB).
pub const TARGET_FILE_SIZE: Setting = Setting {
    property: "write.target-file-size-bytes",
    default: 512 * 1024 * 1024,
    floor: 1,
};

/// A partition is compacted once this many small files of one tier are in it (Iceberg's
/// rewrite action's `min-input-files`, 5).
pub const MIN_INPUT_FILES: Setting = Setting {
    property: "contractc.compaction.min-input-files",
    default: 5,
    floor: 2,
};

/// Snapshots older than this are expired. Iceberg's default is 5 days, which at one commit
/// every 2 s (serve) or 100 s (the Glue job) is far too many snapshots in every metadata file:
/// 10 minutes.
pub const MAX_SNAPSHOT_AGE_MS: Setting = Setting {
    property: "history.expire.max-snapshot-age-ms",
    default: 10 * 60 * 1000,
    floor: 0,
};

/// At least this many snapshots are kept (Iceberg's default, 1).
pub const MIN_SNAPSHOTS_TO_KEEP: Setting = Setting {
    property: "history.expire.min-snapshots-to-keep",
    default: 1,
    floor: 1,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setting_is_the_property_else_the_default_never_under_the_floor() {
        let properties = BTreeMap::from([
            (MIN_INPUT_FILES.property.to_string(), "1".to_string()),
            (
                TARGET_FILE_SIZE.property.to_string(),
                " 1048576 ".to_string(),
            ),
            (
                MIN_SNAPSHOTS_TO_KEEP.property.to_string(),
                "nonsense".to_string(),
            ),
        ]);
        assert_eq!(MIN_INPUT_FILES.of(&properties), 2);
        assert_eq!(TARGET_FILE_SIZE.of(&properties), 1_048_576);
        assert_eq!(MIN_SNAPSHOTS_TO_KEEP.of(&properties), 1);
        assert_eq!(MAX_SNAPSHOT_AGE_MS.of(&properties), 600_000);
    }
}
