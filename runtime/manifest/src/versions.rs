//! The versions a contract accepts (issue #20): its released versions, which are retired, the
//! version of clients that declare none, and how an event of each release becomes an event of
//! the current version (a chain of [`Step`]s on the event's top-level JSON members).

/// A contract's release history, as `contractc build` checked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versions {
    /// The version of clients that send no `X-Contract-Version` (the reference's test client).
    pub default_client: String,
    /// Released versions before the current one, oldest first.
    pub releases: Vec<Release>,
}

/// One released version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub version: String,
    /// Retired: its events are refused with `retired_version` and kept in quarantine.
    pub retired: bool,
    /// The steps from this release to the current version, in order (every later release's
    /// migration, with the renames their ids imply).
    pub upcast: Vec<Step>,
}

/// One step of an upcast, on the event's top-level members by name. Values are JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A field kept its id under a new name.
    Rename { from: String, to: String },
    /// String values replaced (enum or variant values renamed); other values are kept.
    MapValues {
        field: String,
        map: Vec<(String, String)>,
    },
    /// `field` filled from `from`: its value, or, with a map, the mapped value (`otherwise`
    /// for values the map does not name, and for an absent `from`).
    Derive {
        field: String,
        from: String,
        map: Vec<(String, String)>,
        otherwise: Option<String>,
    },
    /// `field` set to a constant when absent or null.
    Default { field: String, value: String },
    /// A numeric value multiplied by `by` (JSON number text; integer × integer stays integer).
    Scale { field: String, by: String },
    /// A member the newer version no longer has, removed.
    Drop { field: String },
}

/// How an event is judged, from the version its client declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judging<'m> {
    /// The current version (also: a contract without a release history, whatever is declared).
    Current,
    /// A supported release: judged by its validator, then upcast.
    Release(usize, &'m Release),
    /// A retired release.
    Retired(&'m str),
    /// Not a version of this contract.
    Unknown,
}

impl Versions {
    /// How an event declaring `declared` (None: no header) is judged, when the contract's
    /// current version is `current`.
    pub fn judging<'m>(&'m self, current: &str, declared: Option<&str>) -> Judging<'m> {
        let version = declared.unwrap_or(&self.default_client);
        if version == current {
            return Judging::Current;
        }
        match self.releases.iter().position(|r| r.version == version) {
            Some(index) if self.releases[index].retired => {
                Judging::Retired(&self.releases[index].version)
            }
            Some(index) => Judging::Release(index, &self.releases[index]),
            None => Judging::Unknown,
        }
    }

    /// The versions clients may declare, oldest first (retired ones left out).
    pub fn supported<'m>(&'m self, current: &'m str) -> Vec<&'m str> {
        self.releases
            .iter()
            .filter(|r| !r.retired)
            .map(|r| r.version.as_str())
            .chain(std::iter::once(current))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions() -> Versions {
        let release = |version: &str, retired| Release {
            version: version.into(),
            retired,
            upcast: vec![],
        };
        Versions {
            default_client: "1.2.0".into(),
            releases: vec![release("1.1.0", true), release("1.2.0", false)],
        }
    }

    #[test]
    fn the_declared_version_picks_the_judging() {
        let v = versions();
        assert_eq!(v.judging("2.0.0", Some("2.0.0")), Judging::Current);
        assert!(matches!(v.judging("2.0.0", None), Judging::Release(1, _)));
        assert!(matches!(
            v.judging("2.0.0", Some("1.2.0")),
            Judging::Release(1, _)
        ));
        assert_eq!(v.judging("2.0.0", Some("1.1.0")), Judging::Retired("1.1.0"));
        assert_eq!(v.judging("2.0.0", Some("1.3.0")), Judging::Unknown);
        assert_eq!(v.judging("2.0.0", Some("")), Judging::Unknown);
        assert_eq!(v.supported("2.0.0"), vec!["1.2.0", "2.0.0"]);
    }
}
