//! Tag drift: what to change so a resource carries the tags deploy wants.
//!
//! Deploy owns the keys under `contractc:` and nothing else: a wanted tag that is missing or
//! has another value is set, a `contractc:` key deploy no longer wants is removed, and tags
//! under other keys (a team's cost centre, an owner) are someone else's and left alone.

use std::collections::BTreeMap;

/// The namespace of the tag keys deploy manages.
pub const PREFIX: &str = "contractc:";

/// The tags of a resource, as read back.
pub type Tags = BTreeMap<String, String>;

/// The calls that bring a resource's tags to the wanted ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    /// Tags to add or overwrite.
    pub set: Vec<(String, String)>,
    /// Keys to remove.
    pub remove: Vec<String>,
}

impl Change {
    /// What the plan shows: `tags (set k=v, remove k)`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self.set.iter().map(|(k, v)| format!("{k}={v}")).collect();
        parts.extend(self.remove.iter().map(|k| format!("-{k}")));
        format!("tags {}", parts.join(" "))
    }
}

/// The change from `have` to `wanted` (deploy's own keys only); `None` when there is none.
pub fn change(wanted: &[(String, String)], have: &Tags) -> Option<Change> {
    let set: Vec<(String, String)> = wanted
        .iter()
        .filter(|(k, v)| have.get(k) != Some(v))
        .cloned()
        .collect();
    let remove: Vec<String> = have
        .keys()
        .filter(|k| k.starts_with(PREFIX) && !wanted.iter().any(|(w, _)| w == *k))
        .cloned()
        .collect();
    (!set.is_empty() || !remove.is_empty()).then_some(Change { set, remove })
}

/// Tags from an SDK's map (absent: none).
pub fn from_map(map: Option<&std::collections::HashMap<String, String>>) -> Tags {
    map.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted() -> Vec<(String, String)> {
        vec![
            ("contractc:contract".into(), "game_events".into()),
            ("contractc:prefix".into(), "contractc".into()),
        ]
    }

    #[test]
    fn equal_tags_need_no_change_and_foreign_keys_are_left_alone() {
        let mut have: Tags = wanted().into_iter().collect();
        have.insert("team".into(), "analytics".into());
        assert_eq!(change(&wanted(), &have), None);
    }

    #[test]
    fn missing_changed_and_stale_own_tags_are_fixed() {
        let have: Tags = [
            ("contractc:contract", "edited"),
            ("contractc:owner", "gone"),
            ("team", "analytics"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let change = change(&wanted(), &have).expect("a change");
        assert_eq!(change.set, wanted());
        assert_eq!(change.remove, vec!["contractc:owner".to_string()]);
        assert_eq!(
            change.describe(),
            "tags contractc:contract=game_events contractc:prefix=contractc -contractc:owner"
        );
    }
}
