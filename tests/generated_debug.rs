//! The generated types' `Debug`, `Clone`, `PartialEq` and `Hash` behave as derived ones would.
//!
//! `#[derive(Model)]` writes the `Debug` impls of its key types, field enums and field lists by hand
//! (inline, so that a crate of many models does not compile them all): each is compared here with
//! `#[derive(Debug)]` on a mirror type of the same shape, in both the plain and the alternate form.

use std::collections::HashSet;

use model_runtime::Model;

#[derive(Model, Debug, Clone, PartialEq)]
#[unique_together(r#type, label)]
struct Entry {
    #[model(primary_key, auto_increment)]
    id: i64,
    r#type: String,
    label: Option<String>,
    #[unique]
    code: i32,
}

/// The mirrors: what `#[derive(Debug)]` prints for the same names and fields.
#[allow(dead_code)] // read only by their Debug
mod mirror {
    #[derive(Debug)]
    pub struct EntryByTypeAndLabel {
        pub r#type: String,
        pub label: Option<String>,
    }
    #[derive(Debug)]
    pub struct EntryById {
        pub id: i64,
    }
    #[derive(Debug, Clone, Copy)]
    pub enum EntryField {
        Id,
        Type,
        Label,
        Code,
    }
}

#[test]
fn key_types_print_as_derived_debug_prints() {
    let awkward = "quote \" backslash \\ newline \n emoji 🦀 nul \0".to_owned();
    let key = EntryByTypeAndLabel {
        r#type: awkward.clone(),
        label: Some("x".into()),
    };
    let mirror = mirror::EntryByTypeAndLabel {
        r#type: awkward,
        label: Some("x".into()),
    };
    assert_eq!(format!("{key:?}"), format!("{mirror:?}"));
    assert_eq!(format!("{key:#?}"), format!("{mirror:#?}"));
    let none = EntryByTypeAndLabel {
        r#type: String::new(),
        label: None,
    };
    let mirror_none = mirror::EntryByTypeAndLabel {
        r#type: String::new(),
        label: None,
    };
    assert_eq!(format!("{none:?}"), format!("{mirror_none:?}"));
    assert_eq!(
        format!("{:?}", EntryById { id: i64::MIN }),
        format!("{:?}", mirror::EntryById { id: i64::MIN })
    );
    assert_eq!(
        format!("{:?}", EntryByCode { code: -1 }),
        "EntryByCode { code: -1 }"
    );
}

#[test]
fn field_enums_print_their_variant_names() {
    use mirror::EntryField as M;
    let pairs = [
        (EntryField::Id, M::Id),
        (EntryField::Type, M::Type),
        (EntryField::Label, M::Label),
        (EntryField::Code, M::Code),
    ];
    for (field, mirror) in pairs {
        assert_eq!(format!("{field:?}"), format!("{mirror:?}"));
        assert_eq!(format!("{field:#?}"), format!("{mirror:#?}"));
        // Padding and other flags are ignored by a derived fieldless enum's Debug too.
        assert_eq!(format!("{field:>8?}"), format!("{mirror:>8?}"));
    }
    let distinct: HashSet<EntryField> = pairs.iter().map(|(f, _)| *f).collect();
    assert_eq!(distinct.len(), 4, "each field hashes and compares apart");
    assert_ne!(EntryField::Id, EntryField::Code);
}

#[test]
fn field_lists_print_every_field_by_name() {
    let printed = format!("{:?}", Entry::FIELDS);
    assert!(
        printed.starts_with("EntryFields { id: "),
        "unexpected: {printed}"
    );
    for name in ["id: ", "type: ", "label: ", "code: "] {
        assert!(printed.contains(name), "{name} missing from {printed}");
    }
    assert!(!printed.contains("r#"), "{printed}");
}

#[test]
fn key_types_clone_and_compare() {
    let key = EntryByTypeAndLabel {
        r#type: "a".into(),
        label: None,
    };
    let copy = key.clone();
    assert_eq!(key, copy);
    assert_ne!(
        key,
        EntryByTypeAndLabel {
            r#type: "a".into(),
            label: Some(String::new()),
        }
    );
    let entry = Entry {
        id: 7,
        r#type: "t".into(),
        label: Some("l".into()),
        code: 3,
    };
    let of = <EntryByTypeAndLabel as model_runtime::Key>::of(&entry);
    assert_eq!(
        format!("{of:?}"),
        r#"EntryByTypeAndLabel { type: "t", label: Some("l") }"#
    );
}
