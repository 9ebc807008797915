//! Server-side form validation: errors by field, shown next to the field.

use std::collections::BTreeMap;

/// Errors of one form, by field name ("" for the form as a whole).
#[derive(Debug, Default)]
pub struct FieldErrors(BTreeMap<&'static str, String>);

impl FieldErrors {
    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.entry(field).or_insert_with(|| message.into());
    }

    pub fn get(&self, field: &str) -> Option<&String> {
        self.0.get(field)
    }

    pub fn has(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Each error with its field, for the summary at the top of a form.
    pub fn all(&self) -> Vec<(&'static str, String)> {
        self.0.iter().map(|(k, v)| (*k, v.clone())).collect()
    }
}

/// The values of repeated fields `name` (checkboxes) in a parsed form.
pub fn all_of(form: &[(String, String)], name: &str) -> Vec<String> {
    form.iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .collect()
}
