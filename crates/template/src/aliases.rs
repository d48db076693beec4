//! Template aliases: a name that stands for another template, so a client
//! that asks for a name Warren does not build (E2B's SDKs default to
//! `code-interpreter-v1`) gets the template that serves it.
//!
//! Aliases live in `<templates_dir>/.aliases.json` (`{"alias": "target"}`),
//! replaced whole by rename under an `flock` on `.aliases.json.lock`, so
//! daemons sharing the directory never lose each other's changes. Built-in
//! aliases ([`BUILTIN`]) apply unless the file names the alias too. An
//! alias names a template, never another alias, and only applies while no
//! template of its own name exists: a real template always wins. The
//! reference's tag or version carries over to the target
//! (`code-interpreter-v1:stable` → `code-interpreter:stable`).

use std::collections::BTreeMap;
use std::fs::OpenOptions;

use serde::Serialize;

use crate::error::TemplateError;
use crate::meta;
use crate::store::TemplateStore;

const FILE: &str = ".aliases.json";
const LOCK_FILE: &str = ".aliases.json.lock";

/// Aliases every store has unless it overrides them.
pub const BUILTIN: [(&str, &str); 1] = [("code-interpreter-v1", "code-interpreter")];

/// One alias as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alias {
    pub alias: String,
    pub target: String,
    /// Whether it is one of [`BUILTIN`] (not stored in the directory).
    pub builtin: bool,
}

impl TemplateStore {
    /// Every alias, sorted by name: the stored ones and the built-ins they
    /// do not override.
    pub fn aliases(&self) -> Result<Vec<Alias>, TemplateError> {
        let stored = self.stored_aliases()?;
        let mut all: BTreeMap<String, Alias> = BUILTIN
            .iter()
            .map(|(alias, target)| {
                let a = Alias {
                    alias: (*alias).into(),
                    target: (*target).into(),
                    builtin: true,
                };
                (a.alias.clone(), a)
            })
            .collect();
        for (alias, target) in stored {
            all.insert(
                alias.clone(),
                Alias {
                    alias,
                    target,
                    builtin: false,
                },
            );
        }
        Ok(all.into_values().collect())
    }

    /// The template `name` stands for, when it is an alias and no template
    /// of that name exists.
    pub(crate) fn alias_target(&self, name: &str) -> Result<Option<String>, TemplateError> {
        if self.template_dir(name).exists() {
            return Ok(None);
        }
        Ok(self
            .aliases()?
            .into_iter()
            .find(|a| a.alias == name)
            .map(|a| a.target))
    }

    /// Makes `alias` stand for the template `target` (which need not be
    /// built yet). Refused when `alias` is a template's own name or
    /// `target` is an alias.
    pub fn set_alias(&self, alias: &str, target: &str) -> Result<Alias, TemplateError> {
        crate::store::validate(alias)?;
        crate::store::validate(target)?;
        if alias == target {
            return Err(TemplateError::Alias(format!(
                "'{alias}' cannot stand for itself"
            )));
        }
        if self.template_dir(alias).exists() {
            return Err(TemplateError::Alias(format!(
                "'{alias}' is a template's own name; remove that template first"
            )));
        }
        self.update(|stored| {
            let chained = BUILTIN.iter().any(|(a, _)| *a == target) || stored.contains_key(target);
            if chained {
                return Err(TemplateError::Alias(format!(
                    "'{target}' is itself an alias; point '{alias}' at a template"
                )));
            }
            stored.insert(alias.into(), target.into());
            Ok(())
        })?;
        Ok(Alias {
            alias: alias.into(),
            target: target.into(),
            builtin: false,
        })
    }

    /// Removes a stored alias (a built-in one it overrode applies again).
    pub fn remove_alias(&self, alias: &str) -> Result<(), TemplateError> {
        crate::store::validate(alias)?;
        self.update(|stored| match stored.remove(alias) {
            Some(_) => Ok(()),
            None => Err(TemplateError::NoAlias {
                alias: alias.into(),
            }),
        })
    }

    fn stored_aliases(&self) -> Result<BTreeMap<String, String>, TemplateError> {
        Ok(meta::read(&self.dir().join(FILE))?.unwrap_or_default())
    }

    /// Reads, changes and replaces the stored aliases under the lock.
    fn update(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, String>) -> Result<(), TemplateError>,
    ) -> Result<(), TemplateError> {
        let lock_path = self.dir().join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(TemplateError::io("open", &lock_path))?;
        lock.lock().map_err(TemplateError::io("lock", &lock_path))?;
        let mut stored = self.stored_aliases()?;
        change(&mut stored)?;
        meta::write(self.dir(), FILE, &stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, TemplateStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = TemplateStore::new(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn builtin_aliases_apply_until_overridden_and_come_back_when_removed() {
        let (_dir, store) = store();
        assert_eq!(
            store
                .alias_target("code-interpreter-v1")
                .unwrap()
                .as_deref(),
            Some("code-interpreter")
        );
        store.set_alias("code-interpreter-v1", "base").unwrap();
        assert_eq!(
            store
                .alias_target("code-interpreter-v1")
                .unwrap()
                .as_deref(),
            Some("base")
        );
        let listed = store.aliases().unwrap();
        assert_eq!(listed.len(), 1);
        assert!(!listed[0].builtin);
        store.remove_alias("code-interpreter-v1").unwrap();
        assert_eq!(
            store
                .alias_target("code-interpreter-v1")
                .unwrap()
                .as_deref(),
            Some("code-interpreter")
        );
    }

    #[test]
    fn aliases_do_not_chain_and_a_real_template_wins() {
        let (dir, store) = store();
        store.set_alias("py", "code-interpreter").unwrap();
        let err = store.set_alias("python", "py").unwrap_err();
        assert!(err.to_string().contains("itself an alias"), "{err}");
        assert!(store.set_alias("same", "same").is_err());
        std::fs::create_dir(dir.path().join("py")).unwrap();
        assert_eq!(store.alias_target("py").unwrap(), None);
        let err = store.set_alias("py", "base").unwrap_err();
        assert!(err.to_string().contains("own name"), "{err}");
    }

    #[test]
    fn removing_an_unknown_alias_and_bad_names_are_typed_errors() {
        let (_dir, store) = store();
        assert!(matches!(
            store.remove_alias("nothing"),
            Err(TemplateError::NoAlias { .. })
        ));
        assert!(matches!(
            store.set_alias("../x", "base"),
            Err(TemplateError::InvalidName(_))
        ));
        assert!(matches!(
            store.set_alias("x", "../base"),
            Err(TemplateError::InvalidName(_))
        ));
    }
}
