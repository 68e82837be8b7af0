//! What the user wrote: `#[model(…)]`, `#[unique…]` and `#[unique_together(…)]`, parsed with spans and
//! nothing more. Cross-attribute rules live in `check.rs`.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Ident, LitInt, LitStr, Token};

use crate::ctxt::{Ctxt, did_you_mean};

// Attribute and key names, compared with `==` (serde's `symbol.rs`).
pub const MODEL: &str = "model";
pub const UNIQUE: &str = "unique";
pub const UNIQUE_TOGETHER: &str = "unique_together";
pub const INDEX: &str = "index";

pub const TABLE: &str = "table";
pub const PRIMARY_KEY: &str = "primary_key";
pub const AUTO_INCREMENT: &str = "auto_increment";
pub const COLUMN: &str = "column";
pub const MAX_LENGTH: &str = "max_length";
pub const REFERENCES: &str = "references";
pub const PRECISION: &str = "precision";
pub const SCALE: &str = "scale";
pub const NAME: &str = "name";
pub const CASE_INSENSITIVE: &str = "case_insensitive";
pub const NULLS_NOT_DISTINCT: &str = "nulls_not_distinct";
pub const DEFERRABLE: &str = "deferrable";
pub const CONDITION: &str = "condition";

const UNIQUE_KEYS: &[&str] = &[NAME, CASE_INSENSITIVE, NULLS_NOT_DISTINCT, CONDITION];

/// `condition(a == None, b == "x")`: the terms, as written.
fn parse_condition(meta: &ParseNestedMeta) -> syn::Result<Vec<syn::Expr>> {
    if !meta.input.peek(syn::token::Paren) {
        return Err(
            meta.error("write the rows the constraint covers: `condition(deleted_at == None)`")
        );
    }
    let content;
    syn::parenthesized!(content in meta.input);
    let terms = syn::punctuated::Punctuated::<syn::Expr, Token![,]>::parse_terminated(&content)?;
    if terms.is_empty() {
        return Err(meta.error("`condition()` is empty: `condition(deleted_at == None)`"));
    }
    Ok(terms.into_iter().collect())
}

const STRUCT_KEYS: &[&str] = &[TABLE];
const FIELD_KEYS: &[&str] = &[
    PRIMARY_KEY,
    AUTO_INCREMENT,
    COLUMN,
    MAX_LENGTH,
    REFERENCES,
    PRECISION,
    SCALE,
];

/// A value given at most once, remembering where.
pub struct Once<T> {
    pub value: Option<(Span, T)>,
}

impl<T> Default for Once<T> {
    fn default() -> Self {
        Once { value: None }
    }
}

impl<T> Once<T> {
    fn set(&mut self, cx: &Ctxt, key: &str, span: Span, value: T) {
        if self.value.is_some() {
            cx.error_at(span, format_args!("duplicate `{key}`: give it once"));
        } else {
            self.value = Some((span, value));
        }
    }

    pub fn get(&self) -> Option<&T> {
        self.value.as_ref().map(|(_, v)| v)
    }

    pub fn span(&self) -> Option<Span> {
        self.value.as_ref().map(|(s, _)| *s)
    }
}

/// `#[unique_together(a, b, name = "…", case_insensitive(b), nulls_not_distinct)]`.
pub struct Together {
    /// The attribute as a whole, for errors about it.
    pub tokens: TokenStream,
    pub fields: Vec<Ident>,
    pub name: Option<LitStr>,
    /// The fields listed in `case_insensitive(…)`.
    pub case_insensitive: Vec<Ident>,
    pub nulls_not_distinct: Option<Span>,
    /// The terms of `condition(…)`.
    pub condition: Vec<syn::Expr>,
}

/// `#[unique]` or `#[unique(name = "…", case_insensitive, nulls_not_distinct)]` on a field.
pub struct FieldUnique {
    pub tokens: TokenStream,
    pub name: Option<LitStr>,
    pub case_insensitive: Option<Span>,
    pub nulls_not_distinct: Option<Span>,
    pub condition: Vec<syn::Expr>,
}

/// `deferrable` is refused wherever it is written, with the reason.
fn refuse_deferrable(cx: &Ctxt, meta: &ParseNestedMeta) {
    cx.error_spanned_by(
        &meta.path,
        "`deferrable` is not supported: PostgreSQL refuses `INSERT … ON CONFLICT` on a table with a deferrable unique constraint, and every get_or_create, update_or_create and bulk call relies on it",
    );
    if meta.input.peek(Token![=]) {
        let _ = meta.value().and_then(|v| v.parse::<syn::Expr>());
    }
}

#[derive(Default)]
pub struct StructAttrs {
    pub table: Once<LitStr>,
    pub together: Vec<Together>,
}

#[derive(Default)]
pub struct FieldAttrs {
    pub primary_key: Once<()>,
    pub auto_increment: Once<()>,
    pub column: Once<LitStr>,
    pub max_length: Once<LitInt>,
    pub references: Once<syn::Path>,
    pub unique: Once<FieldUnique>,
    pub precision: Once<LitInt>,
    pub scale: Once<LitInt>,
}

fn key_name(meta: &ParseNestedMeta) -> String {
    meta.path
        .get_ident()
        .map(Ident::to_string)
        .unwrap_or_else(|| {
            let path = &meta.path;
            quote::quote!(#path).to_string().replace(' ', "")
        })
}

fn unknown_key(cx: &Ctxt, meta: &ParseNestedMeta, here: &[&str], elsewhere: (&[&str], &str)) {
    let key = key_name(meta);
    let (other_keys, other_place) = elsewhere;
    let valid = here
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let message = if other_keys.contains(&key.as_str()) {
        format!("`{key}` belongs on {other_place}; here the valid keys are {valid}")
    } else if let Some(close) = did_you_mean(&key, here.iter().copied()) {
        format!("unknown key `{key}`: did you mean `{close}`? Valid keys here: {valid}")
    } else {
        format!("unknown key `{key}`; valid keys here: {valid}")
    };
    cx.error_spanned_by(&meta.path, message);
    // Skip the value so that parsing can go on with the next key.
    if meta.input.peek(Token![=]) {
        let _ = meta.value().and_then(|v| v.parse::<syn::Expr>());
    } else if meta.input.peek(syn::token::Paren) {
        let _ = meta.parse_nested_meta(|inner| {
            let _ = inner.input.parse::<proc_macro2::TokenStream>();
            Ok(())
        });
    }
}

fn flag(meta: &ParseNestedMeta, key: &str) -> syn::Result<()> {
    if meta.input.peek(Token![=]) || meta.input.peek(syn::token::Paren) {
        return Err(meta.error(format_args!("`{key}` takes no value: write `{key}` alone")));
    }
    Ok(())
}

fn string_value(meta: &ParseNestedMeta, key: &str) -> syn::Result<LitStr> {
    let value = meta
        .value()
        .map_err(|_| meta.error(format_args!("expected `{key} = \"…\"`")))?;
    value
        .parse::<LitStr>()
        .map_err(|e| syn::Error::new(e.span(), format_args!("expected a string: `{key} = \"…\"`")))
}

pub fn parse_struct_attrs(cx: &Ctxt, attrs: &[syn::Attribute]) -> StructAttrs {
    let mut out = StructAttrs::default();
    for attr in attrs {
        if attr.path().is_ident(MODEL) {
            let result = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident(TABLE) {
                    let value = string_value(&meta, TABLE)?;
                    out.table.set(cx, TABLE, meta.path.span(), value);
                } else {
                    unknown_key(cx, &meta, STRUCT_KEYS, (FIELD_KEYS, "a field"));
                }
                Ok(())
            });
            if let Err(e) = result {
                cx.push(malformed(e, "#[model(table = \"…\")]"));
            }
        } else if attr.path().is_ident(UNIQUE_TOGETHER) {
            if let Some(together) = parse_together(cx, attr) {
                out.together.push(together);
            }
        } else if attr.path().is_ident(UNIQUE) {
            cx.error_spanned_by(
                attr,
                "`#[unique]` goes on a field; on the struct, write `#[unique_together(field_a, field_b)]`",
            );
        }
    }
    out
}

fn parse_together(cx: &Ctxt, attr: &syn::Attribute) -> Option<Together> {
    let mut together = Together {
        tokens: attr.to_token_stream(),
        fields: Vec::new(),
        name: None,
        case_insensitive: Vec::new(),
        nulls_not_distinct: None,
        condition: Vec::new(),
    };
    if let syn::Meta::Path(_) = attr.meta {
        cx.error_spanned_by(
            attr,
            "`#[unique_together]` needs the fields it covers: `#[unique_together(field_a, field_b)]`",
        );
        return None;
    }
    let result = attr.parse_nested_meta(|meta| {
        // `name = "…"` names the constraint; a bare identifier is a field (even one called `name`).
        if meta.input.peek(Token![=]) {
            if meta.path.is_ident(NAME) {
                if together.name.is_some() {
                    cx.error_spanned_by(&meta.path, "duplicate `name`: give it once");
                }
                together.name = Some(string_value(&meta, NAME)?);
            } else {
                unknown_key(cx, &meta, UNIQUE_KEYS, (&[], ""));
            }
            return Ok(());
        }
        if meta.path.is_ident(DEFERRABLE) {
            refuse_deferrable(cx, &meta);
            return Ok(());
        }
        if meta.path.is_ident(CASE_INSENSITIVE) {
            if !meta.input.peek(syn::token::Paren) {
                return Err(meta.error(
                    "name the text fields that compare case-insensitively: `case_insensitive(email)`",
                ));
            }
            return meta.parse_nested_meta(|inner| match inner.path.get_ident() {
                Some(ident) => {
                    together.case_insensitive.push(ident.clone());
                    Ok(())
                }
                None => Err(inner.error("expected a field name")),
            });
        }
        if meta.path.is_ident(NULLS_NOT_DISTINCT) {
            flag(&meta, NULLS_NOT_DISTINCT)?;
            together.nulls_not_distinct = Some(meta.path.span());
            return Ok(());
        }
        if meta.path.is_ident(CONDITION) {
            together.condition.extend(parse_condition(&meta)?);
            return Ok(());
        }
        match meta.path.get_ident() {
            Some(ident) if !meta.input.peek(syn::token::Paren) => {
                together.fields.push(ident.clone());
                Ok(())
            }
            _ => Err(meta.error("expected a field name")),
        }
    });
    if let Err(e) = result {
        cx.push(malformed(
            e,
            "#[unique_together(field_a, field_b)], with optional `name = \"…\"`, `case_insensitive(field_b)`, `nulls_not_distinct`",
        ));
        return None;
    }
    Some(together)
}

pub fn parse_field_attrs(cx: &Ctxt, field: &syn::Field) -> FieldAttrs {
    let mut out = FieldAttrs::default();
    for attr in &field.attrs {
        if attr.path().is_ident(MODEL) {
            let result = attr.parse_nested_meta(|meta| {
                let span = meta.path.span();
                if meta.path.is_ident(PRIMARY_KEY) {
                    flag(&meta, PRIMARY_KEY)?;
                    out.primary_key.set(cx, PRIMARY_KEY, span, ());
                } else if meta.path.is_ident(AUTO_INCREMENT) {
                    flag(&meta, AUTO_INCREMENT)?;
                    out.auto_increment.set(cx, AUTO_INCREMENT, span, ());
                } else if meta.path.is_ident(COLUMN) {
                    let value = string_value(&meta, COLUMN)?;
                    out.column.set(cx, COLUMN, span, value);
                } else if meta.path.is_ident(MAX_LENGTH) {
                    let value = meta
                        .value()
                        .and_then(|v| v.parse::<LitInt>())
                        .map_err(|e| {
                            syn::Error::new(e.span(), "expected a whole number: `max_length = 100`")
                        })?;
                    out.max_length.set(cx, MAX_LENGTH, span, value);
                } else if meta.path.is_ident(REFERENCES) {
                    let value = meta
                        .value()
                        .and_then(|v| v.parse::<syn::Path>())
                        .map_err(|e| {
                            syn::Error::new(e.span(), "expected a model type: `references = Store`")
                        })?;
                    out.references.set(cx, REFERENCES, span, value);
                } else if meta.path.is_ident(PRECISION) || meta.path.is_ident(SCALE) {
                    let key = if meta.path.is_ident(PRECISION) {
                        PRECISION
                    } else {
                        SCALE
                    };
                    let value = meta
                        .value()
                        .and_then(|v| v.parse::<LitInt>())
                        .map_err(|e| {
                            syn::Error::new(
                                e.span(),
                                format_args!("expected a whole number: `{key} = 10`"),
                            )
                        })?;
                    let slot = if key == PRECISION {
                        &mut out.precision
                    } else {
                        &mut out.scale
                    };
                    slot.set(cx, key, span, value);
                } else {
                    unknown_key(cx, &meta, FIELD_KEYS, (STRUCT_KEYS, "the struct"));
                }
                Ok(())
            });
            if let Err(e) = result {
                cx.push(malformed(
                    e,
                    "#[model(primary_key)], #[model(column = \"…\")], …",
                ));
            }
        } else if attr.path().is_ident(UNIQUE) {
            let unique = match &attr.meta {
                syn::Meta::Path(_) => Some(FieldUnique {
                    tokens: attr.to_token_stream(),
                    name: None,
                    case_insensitive: None,
                    nulls_not_distinct: None,
                    condition: Vec::new(),
                }),
                syn::Meta::List(_) => {
                    let mut unique = FieldUnique {
                        tokens: attr.to_token_stream(),
                        name: None,
                        case_insensitive: None,
                        nulls_not_distinct: None,
                        condition: Vec::new(),
                    };
                    let result = attr.parse_nested_meta(|meta| {
                        if meta.path.is_ident(NAME) {
                            if unique.name.is_some() {
                                cx.error_spanned_by(&meta.path, "duplicate `name`: give it once");
                            }
                            unique.name = Some(string_value(&meta, NAME)?);
                        } else if meta.path.is_ident(CASE_INSENSITIVE) {
                            flag(&meta, CASE_INSENSITIVE)?;
                            unique.case_insensitive = Some(meta.path.span());
                        } else if meta.path.is_ident(NULLS_NOT_DISTINCT) {
                            flag(&meta, NULLS_NOT_DISTINCT)?;
                            unique.nulls_not_distinct = Some(meta.path.span());
                        } else if meta.path.is_ident(CONDITION) {
                            unique.condition.extend(parse_condition(&meta)?);
                        } else if meta.path.is_ident(DEFERRABLE) {
                            refuse_deferrable(cx, &meta);
                        } else {
                            unknown_key(cx, &meta, UNIQUE_KEYS, (&[], ""));
                        }
                        Ok(())
                    });
                    match result {
                        Ok(()) => Some(unique),
                        Err(e) => {
                            cx.push(malformed(
                                e,
                                "#[unique], with optional `name = \"…\"`, `case_insensitive`, `nulls_not_distinct`",
                            ));
                            None
                        }
                    }
                }
                syn::Meta::NameValue(_) => {
                    cx.error_spanned_by(attr, "expected `#[unique]` or `#[unique(name = \"…\")]`");
                    None
                }
            };
            if let Some(unique) = unique {
                out.unique.set(cx, UNIQUE, attr.span(), unique);
            }
        } else if attr.path().is_ident(UNIQUE_TOGETHER) {
            cx.error_spanned_by(
                attr,
                "`#[unique_together(…)]` goes on the struct; on a field, write `#[unique]`",
            );
        }
    }
    out
}

/// A parse error, with the form the attribute should have had.
fn malformed(error: syn::Error, expected: &str) -> syn::Error {
    // Our own messages already show the expected form in backticks; syn's generic ones do not.
    if error.to_string().contains('`') {
        error
    } else {
        syn::Error::new(
            error.span(),
            format_args!("{error}; the form is {expected}"),
        )
    }
}

/// `#[index(a, b, name = "…")]` on the struct, `#[index]` or `#[index(name = "…")]` on a field: a
/// plain (non-unique) index.
pub struct IndexAttr {
    /// The attribute as a whole, for errors about it.
    pub tokens: TokenStream,
    /// The fields listed (none on a field: the index covers that field).
    pub fields: Vec<Ident>,
    pub name: Option<LitStr>,
}

/// Every `#[index(…)]` on the struct.
pub fn parse_struct_indexes(cx: &Ctxt, attrs: &[syn::Attribute]) -> Vec<IndexAttr> {
    let mut out = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident(INDEX)) {
        if let syn::Meta::Path(_) = attr.meta {
            cx.error_spanned_by(
                attr,
                "`#[index]` on the struct needs the fields it covers: `#[index(field_a, field_b)]` (or put `#[index]` on a field)",
            );
            continue;
        }
        if let Some(index) = parse_index_list(cx, attr) {
            if index.fields.is_empty() {
                cx.error_spanned_by(
                    attr,
                    "`#[index()]` names no field: `#[index(field_a, field_b)]`",
                );
            } else {
                out.push(index);
            }
        }
    }
    out
}

/// `#[index]` or `#[index(name = "…")]` on a field.
pub fn parse_field_index(cx: &Ctxt, field: &syn::Field) -> Option<IndexAttr> {
    let mut out: Option<IndexAttr> = None;
    for attr in field.attrs.iter().filter(|a| a.path().is_ident(INDEX)) {
        let index = match &attr.meta {
            syn::Meta::Path(_) => Some(IndexAttr {
                tokens: attr.to_token_stream(),
                fields: Vec::new(),
                name: None,
            }),
            syn::Meta::List(_) => parse_index_list(cx, attr),
            syn::Meta::NameValue(_) => {
                cx.error_spanned_by(attr, "expected `#[index]` or `#[index(name = \"…\")]`");
                None
            }
        };
        let Some(index) = index else { continue };
        if let Some(first) = index.fields.first() {
            cx.error_spanned_by(
                first,
                "`#[index]` on a field covers that field; for an index over several fields, write `#[index(field_a, field_b)]` on the struct",
            );
        } else if out.is_some() {
            cx.error_spanned_by(attr, "duplicate `#[index]`: give it once");
        } else {
            out = Some(index);
        }
    }
    out
}

fn parse_index_list(cx: &Ctxt, attr: &syn::Attribute) -> Option<IndexAttr> {
    let mut index = IndexAttr {
        tokens: attr.to_token_stream(),
        fields: Vec::new(),
        name: None,
    };
    let result = attr.parse_nested_meta(|meta| {
        if meta.input.peek(Token![=]) {
            if meta.path.is_ident(NAME) {
                if index.name.is_some() {
                    cx.error_spanned_by(&meta.path, "duplicate `name`: give it once");
                }
                index.name = Some(string_value(&meta, NAME)?);
            } else {
                unknown_key(cx, &meta, &[NAME], (&[], ""));
            }
            return Ok(());
        }
        match meta.path.get_ident() {
            Some(ident) if !meta.input.peek(syn::token::Paren) => {
                index.fields.push(ident.clone());
                Ok(())
            }
            _ => Err(meta.error("expected a field name")),
        }
    });
    match result {
        Ok(()) => Some(index),
        Err(e) => {
            cx.push(malformed(
                e,
                "#[index(field_a, field_b)] or #[index(field_a, name = \"…\")] on the struct, #[index] on a field",
            ));
            None
        }
    }
}
