//! Rules across attributes and fields. Each error points at the offending token and says what to write
//! instead; all of them are reported in one pass.

use std::collections::BTreeSet;

use quote::ToTokens;

use crate::ast::{Model, Origin};
use crate::ctxt::Ctxt;
use crate::naming::{self, MAX_IDENT};

/// The most columns a model may have; the runtime's metadata tables are sized for it.
const MAX_COLUMNS: usize = 256;

pub fn check(cx: &Ctxt, model: &mut Model) {
    check_identifiers(cx, model);
    check_primary_key(cx, model);
    check_uniques(cx, model);
    check_indexes(cx, model);
    // Only meaningful once the constraints themselves are sound; otherwise it repeats their errors.
    if !cx.has_errors() {
        check_generated_names(cx, model);
        check_field_variants(cx, model);
    }
}

/// Table and column names are written into DDL; keep them to names every backend takes unquoted-safe.
fn check_identifiers(cx: &Ctxt, model: &Model) {
    identifier(
        cx,
        "table name",
        &model.table,
        model.table_span,
        "#[model(table = \"…\")]",
    );
    let mut seen: Vec<(&str, &syn::Ident)> = Vec::new();
    for field in &model.fields {
        identifier(
            cx,
            "column name",
            &field.column,
            field.column_span,
            "#[model(column = \"…\")]",
        );
        match seen.iter().find(|(column, _)| *column == field.column) {
            Some((_, other)) => cx.error_at(
                field.column_span,
                format_args!(
                    "column `{}` is already used by field `{other}`; give one of them another #[model(column = \"…\")]",
                    field.column
                ),
            ),
            None => seen.push((&field.column, field.ident)),
        }
    }
    if model.fields.len() > MAX_COLUMNS {
        cx.error_spanned_by(
            model.ident,
            format_args!(
                "a model may have at most {MAX_COLUMNS} columns; this one has {}",
                model.fields.len()
            ),
        );
    }
}

fn identifier(cx: &Ctxt, what: &str, name: &str, span: proc_macro2::Span, fix: &str) {
    if !naming::is_plain_identifier(name) {
        cx.error_at(
            span,
            format_args!(
                "{what} `{name}` must start with a letter or `_` and hold only ASCII letters, digits and `_`; set it with {fix}"
            ),
        );
    } else if name.len() > MAX_IDENT {
        cx.error_at(
            span,
            format_args!(
                "{what} `{name}` is {} bytes; PostgreSQL truncates names past {MAX_IDENT} bytes and MySQL rejects them: shorten it",
                name.len()
            ),
        );
    }
}

fn check_primary_key(cx: &Ctxt, model: &mut Model) {
    for (index, field) in model.fields.iter().enumerate() {
        if let Some(span) = field.primary_key {
            match model.primary_key {
                None => model.primary_key = Some(index),
                Some(first) => cx.error_at(
                    span,
                    format_args!(
                        "`{}` is already the primary key; a model has one primary key (for another unique combination, use #[unique_together({}, {})])",
                        model.fields[first].ident, model.fields[first].ident, field.ident
                    ),
                ),
            }
            if field.is_option() {
                cx.error_spanned_by(
                    field.ty,
                    "a primary key cannot be NULL: use the plain type instead of `Option<…>`",
                );
            }
        }
        if let (Some(span), None) = (field.auto_increment, field.primary_key) {
            cx.error_at(
                span,
                "`auto_increment` applies to the primary key: write #[model(primary_key, auto_increment)]",
            );
        }
    }
    if model.primary_key.is_none() && !model.fields.is_empty() && !cx.has_errors() {
        cx.error_spanned_by(
            model.ident,
            format_args!(
                "`{}` has no primary key: mark one field #[model(primary_key)] (for a database-assigned id: #[model(primary_key, auto_increment)] on an i64)",
                model.ident
            ),
        );
    } else if model.fields.is_empty() {
        cx.error_spanned_by(
            model.ident,
            "a model needs at least one field, its primary key",
        );
    }
}

fn check_uniques(cx: &Ctxt, model: &Model) {
    let mut seen_sets: Vec<(BTreeSet<usize>, &str)> = Vec::new();
    if let Some(pk) = model.primary_key {
        seen_sets.push((BTreeSet::from([pk]), "the primary key"));
    }
    let mut seen_names: Vec<&str> = Vec::new();
    for unique in &model.uniques {
        if unique.nulls_not_distinct && !unique.condition.is_empty() {
            cx.error_spanned_by(
                &unique.tokens,
                "`condition(…)` and `nulls_not_distinct` together are not supported: MariaDB's emulation of either uses the key's generated columns; keep one of them",
            );
        }
        // The same field twice in one constraint.
        let mut set = BTreeSet::new();
        let mut repeated = false;
        for (&column, &span) in unique.columns.iter().zip(&unique.column_spans) {
            if !set.insert(column) {
                repeated = true;
                cx.error_at(
                    span,
                    format_args!(
                        "`{}` is named twice in this constraint; name each field once",
                        model.fields[column].ident
                    ),
                );
            }
        }

        // Two constraints over the same columns: the second adds nothing but a second index.
        if !repeated {
            if let Some((_, other)) = seen_sets.iter().find(|(s, _)| *s == set) {
                let message = if *other == "the primary key" {
                    format!(
                        "`{}` is the primary key, which is already unique: remove this constraint",
                        model.fields[unique.columns[0]].ident
                    )
                } else {
                    format!(
                        "this constraint covers the same fields as `{other}`; remove one of them"
                    )
                };
                cx.error_spanned_by(&unique.tokens, message);
                // The constraint goes; its name is moot.
                continue;
            }
            seen_sets.push((set, &unique.name));
        }

        // Names.
        if let Some(name_span) = unique.name_span {
            if !naming::is_plain_identifier(&unique.name) {
                cx.error_at(
                    name_span,
                    format_args!(
                        "constraint name `{}` must start with a letter or `_` and hold only ASCII letters, digits and `_`",
                        unique.name
                    ),
                );
            } else if unique.name.len() > MAX_IDENT {
                cx.error_at(
                    name_span,
                    format_args!(
                        "constraint name `{}` is {} bytes; PostgreSQL truncates names past {MAX_IDENT} bytes and MySQL rejects them: shorten it",
                        unique.name,
                        unique.name.len()
                    ),
                );
            }
        }
        if seen_names.contains(&unique.name.as_str()) {
            let what = match unique.origin {
                Origin::Field => "#[unique(name = \"…\")]",
                Origin::Together => "#[unique_together(…, name = \"…\")]",
            };
            let message = format!(
                "another constraint of this model is already named `{}`; give this one another name with {what}",
                unique.name
            );
            match unique.name_span {
                Some(span) => cx.error_at(span, message),
                None => cx.error_spanned_by(&unique.tokens, message),
            }
        } else {
            seen_names.push(&unique.name);
        }
    }
}

/// Field enum variants come from field names in CamelCase; `a_b` and `aB` would collide.
fn check_field_variants(cx: &Ctxt, model: &Model) {
    let mut seen: Vec<String> = Vec::new();
    for field in &model.fields {
        let variant = crate::expand::field_variant(field.ident).to_string();
        if seen.contains(&variant) {
            cx.error_spanned_by(
                field.ident,
                format_args!("the generated field variant `{}Field::{variant}` would exist twice; rename a field", model.ident),
            );
        } else {
            seen.push(variant);
        }
    }
}

/// Each key becomes a `{Model}By…` type and `by_…`, `get_or_create_by_…` methods; field names like `a_and_b` could make
/// two keys collide.
fn check_generated_names(cx: &Ctxt, model: &Model) {
    let mut seen: Vec<String> = Vec::new();
    let keys = model
        .primary_key
        .map(|pk| (vec![pk], model.fields[pk].ident.to_token_stream()))
        .into_iter()
        .chain(
            model
                .uniques
                .iter()
                .map(|u| (u.columns.clone(), u.tokens.clone())),
        );
    for (columns, tokens) in keys {
        let name = crate::expand::key_suffix(model, &columns);
        if seen.contains(&name) {
            cx.error_spanned_by(
                tokens,
                format_args!(
                    "the generated key constructor `by_{name}` would exist twice; rename a field"
                ),
            );
        } else {
            seen.push(name);
        }
    }
}

/// Plain indexes: each field once, no two over the same columns, none that a key already gives
/// (a unique constraint and the primary key are indexes), and names no other object of the table
/// has (PostgreSQL keeps index names beside the table's and its constraints' in one namespace).
fn check_indexes(cx: &Ctxt, model: &Model) {
    // (columns, what indexes them, whether that is a key)
    let mut taken: Vec<(Vec<usize>, String, bool)> = Vec::new();
    if let Some(pk) = model.primary_key {
        taken.push((vec![pk], "the primary key".to_owned(), true));
    }
    for unique in &model.uniques {
        taken.push((
            unique.columns.clone(),
            format!("the unique constraint `{}`", unique.name),
            true,
        ));
    }
    let mut names: Vec<String> = model.uniques.iter().map(|u| u.name.clone()).collect();
    names.push(model.table.clone());
    for field in model.fields.iter().filter(|f| f.references.is_some()) {
        names.push(naming::constraint_name(
            &model.table,
            [field.column.as_str()],
            "fkey",
        ));
    }
    for index in &model.indexes {
        let mut seen = BTreeSet::new();
        let mut repeated = false;
        for (&column, &span) in index.columns.iter().zip(&index.column_spans) {
            if !seen.insert(column) {
                repeated = true;
                cx.error_at(
                    span,
                    format_args!(
                        "`{}` is named twice in this index; name each field once",
                        model.fields[column].ident
                    ),
                );
            }
        }
        if !repeated {
            match taken
                .iter()
                .find(|(columns, _, _)| *columns == index.columns)
            {
                Some((_, other, true)) => {
                    cx.error_spanned_by(
                        &index.tokens,
                        format_args!(
                            "{other} already indexes these columns in this order: remove this index"
                        ),
                    );
                    continue;
                }
                Some((_, other, false)) => {
                    cx.error_spanned_by(
                        &index.tokens,
                        format_args!("the index `{other}` already covers these columns in this order: remove one of them"),
                    );
                    continue;
                }
                None => taken.push((index.columns.clone(), index.name.clone(), false)),
            }
        }
        if let Some(span) = index.name_span {
            if !naming::is_plain_identifier(&index.name) {
                cx.error_at(
                    span,
                    format_args!(
                        "index name `{}` must start with a letter or `_` and hold only ASCII letters, digits and `_`",
                        index.name
                    ),
                );
            } else if index.name.len() > MAX_IDENT {
                cx.error_at(
                    span,
                    format_args!(
                        "index name `{}` is {} bytes; PostgreSQL truncates names past {MAX_IDENT} bytes and MySQL rejects them: shorten it",
                        index.name,
                        index.name.len()
                    ),
                );
            }
        }
        if names.contains(&index.name) {
            let message = format!(
                "the table or another constraint or index of this model is already named `{}`; give this index another name with #[index(…, name = \"…\")]",
                index.name
            );
            match index.name_span {
                Some(span) => cx.error_at(span, message),
                None => cx.error_spanned_by(&index.tokens, message),
            }
        } else {
            names.push(index.name.clone());
        }
    }
}
