//! `#[derive(Column)]`: a column type of the user's, stored as a type the runtime supports. Small
//! enough for one file, in the same three steps as the model: `parse` reads the item and its
//! `#[column(…)]` attributes into a [`ColumnType`] and checks it, collecting every error; `expand`
//! writes the `StoredAs` impl from the checked value only.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, Ident, LitStr, Member, Type};

use crate::ctxt::{Ctxt, did_you_mean};
use crate::naming;

pub const COLUMN: &str = "column";
pub const TEXT: &str = "text";
pub const INTEGER: &str = "integer";
pub const RENAME: &str = "rename";

const ENUM_KEYS: &[&str] = &[TEXT, INTEGER];
const VARIANT_KEYS: &[&str] = &[RENAME];

/// What the user's type is stored as.
enum ColumnType<'a> {
    /// A struct with one field, stored as that field.
    Newtype { member: Member, ty: &'a Type },
    /// A fieldless enum stored as one name per variant.
    Text { variants: Vec<(&'a Ident, String)> },
    /// A fieldless enum stored as its discriminant, in `storage` (`i16`, `i32`, `i64`); `checked`
    /// when the discriminants may not fit it (no `#[repr]`: Rust's default is `isize`).
    Integer {
        variants: Vec<&'a Ident>,
        storage: Ident,
        checked: bool,
    },
}

/// The derive on `proc_macro2` tokens, callable from snapshot tests.
pub fn derive_column_inner(input: TokenStream) -> TokenStream {
    let input = match syn::parse2::<DeriveInput>(input) {
        Ok(input) => input,
        Err(error) => return error.to_compile_error(),
    };
    let cx = Ctxt::default();
    let parsed = parse(&cx, &input);
    match (cx.check(), parsed) {
        (Ok(()), Some(column)) => expand(&input.ident, &column),
        (Err(errors), _) => errors.to_compile_error(),
        (Ok(()), None) => unreachable!("no column type without an error"),
    }
}

fn parse<'a>(cx: &Ctxt, input: &'a DeriveInput) -> Option<ColumnType<'a>> {
    if !input.generics.params.is_empty() {
        cx.error_spanned_by(
            &input.generics,
            "`#[derive(Column)]` does not support generic parameters: a column has one stored type",
        );
    }
    match &input.data {
        Data::Struct(data) => {
            for attr in column_attrs(&input.attrs) {
                cx.error_spanned_by(
                    attr,
                    "`#[column(…)]` applies to enums; a struct is stored as its one field",
                );
            }
            newtype(cx, input, &data.fields)
        }
        Data::Enum(data) => fieldless_enum(cx, input, data),
        Data::Union(data) => {
            cx.error_spanned_by(
                data.union_token,
                "`#[derive(Column)]` works on a struct with one field or an enum without data, not a union",
            );
            None
        }
    }
}

fn column_attrs(attrs: &[syn::Attribute]) -> impl Iterator<Item = &syn::Attribute> {
    attrs.iter().filter(|a| a.path().is_ident(COLUMN))
}

fn newtype<'a>(cx: &Ctxt, input: &'a DeriveInput, fields: &'a Fields) -> Option<ColumnType<'a>> {
    let mut iter = fields.iter();
    match (iter.next(), iter.next()) {
        (Some(field), None) => Some(ColumnType::Newtype {
            member: match &field.ident {
                Some(ident) => Member::Named(ident.clone()),
                None => Member::Unnamed(0.into()),
            },
            ty: &field.ty,
        }),
        (None, _) => {
            cx.error_spanned_by(
                &input.ident,
                format_args!(
                    "`#[derive(Column)]` stores a struct as its one field, and `{}` has none: `struct {}(String)`",
                    input.ident, input.ident
                ),
            );
            None
        }
        (Some(_), Some(_)) => {
            cx.error_spanned_by(
                fields,
                format_args!(
                    "`#[derive(Column)]` stores a struct as its one field, and `{}` has {}: a column holds one value (for several, use one field per column on the model)",
                    input.ident,
                    fields.len()
                ),
            );
            None
        }
    }
}

fn fieldless_enum<'a>(
    cx: &Ctxt,
    input: &'a DeriveInput,
    data: &'a syn::DataEnum,
) -> Option<ColumnType<'a>> {
    let mut form: Option<(Span, &str)> = None;
    for attr in column_attrs(&input.attrs) {
        let result = attr.parse_nested_meta(|meta| {
            let key = meta.path.get_ident().map(Ident::to_string);
            match key.as_deref() {
                Some(k @ (TEXT | INTEGER)) => {
                    if meta.input.peek(syn::Token![=]) || meta.input.peek(syn::token::Paren) {
                        return Err(meta.error(format_args!("`{k}` takes no value: write `#[column({k})]`")));
                    }
                    match form {
                        Some((_, previous)) => cx.error_spanned_by(
                            &meta.path,
                            format_args!("the enum is already stored as `{previous}`: give one of `#[column(text)]` and `#[column(integer)]`"),
                        ),
                        None => form = Some((meta.path.span(), if k == TEXT { TEXT } else { INTEGER })),
                    }
                }
                _ => unknown_key(cx, &meta, ENUM_KEYS, VARIANT_KEYS, "a variant"),
            }
            Ok(())
        });
        if let Err(error) = result {
            cx.push(error);
        }
    }
    if data.variants.is_empty() {
        cx.error_spanned_by(
            &input.ident,
            format_args!(
                "`{}` has no variants: there is no value to store",
                input.ident
            ),
        );
    }
    for variant in &data.variants {
        if !matches!(variant.fields, Fields::Unit) {
            cx.error_spanned_by(
                &variant.fields,
                format_args!(
                    "`#[derive(Column)]` stores an enum as one value per variant, and `{}` holds data: keep the data in fields of its own on the model",
                    variant.ident
                ),
            );
        }
    }
    let Some((_, form)) = form else {
        cx.error_spanned_by(
            &input.ident,
            format_args!(
                "say how `{}` is stored: `#[column(text)]` (a name per variant, in snake_case unless renamed) or `#[column(integer)]` (its discriminants)",
                input.ident
            ),
        );
        return None;
    };
    if form == TEXT {
        text_enum(cx, data)
    } else {
        integer_enum(cx, input, data)
    }
}

fn text_enum<'a>(cx: &Ctxt, data: &'a syn::DataEnum) -> Option<ColumnType<'a>> {
    let mut variants: Vec<(&Ident, String)> = Vec::new();
    for variant in &data.variants {
        let mut rename: Option<LitStr> = None;
        for attr in column_attrs(&variant.attrs) {
            let result = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident(RENAME) {
                    let value = meta
                        .value()
                        .and_then(|v| v.parse::<LitStr>())
                        .map_err(|e| syn::Error::new(e.span(), "expected `rename = \"…\"`"))?;
                    if value.value().is_empty() {
                        cx.error_spanned_by(&value, "a stored name cannot be empty");
                    }
                    if rename.is_some() {
                        cx.error_spanned_by(&meta.path, "duplicate `rename`: give it once");
                    }
                    rename = Some(value);
                } else {
                    unknown_key(cx, &meta, VARIANT_KEYS, ENUM_KEYS, "the enum");
                }
                Ok(())
            });
            if let Err(error) = result {
                cx.push(error);
            }
        }
        let name = rename.as_ref().map_or_else(
            || naming::snake_case(&variant.ident.to_string()),
            LitStr::value,
        );
        match variants.iter().find(|(_, stored)| *stored == name) {
            Some((other, _)) => {
                let span = rename.as_ref().map_or(variant.ident.span(), LitStr::span);
                cx.error_at(
                    span,
                    format_args!(
                        "`{}` would be stored as \"{name}\", as `{other}` is: give one of them another #[column(rename = \"…\")]",
                        variant.ident
                    ),
                );
            }
            None => variants.push((&variant.ident, name)),
        }
    }
    Some(ColumnType::Text { variants })
}

fn integer_enum<'a>(
    cx: &Ctxt,
    input: &'a DeriveInput,
    data: &'a syn::DataEnum,
) -> Option<ColumnType<'a>> {
    for variant in &data.variants {
        for attr in column_attrs(&variant.attrs) {
            cx.error_spanned_by(
                attr,
                "`rename` applies to enums stored as text; an enum stored as an integer is stored as its discriminant (`Variant = 3`)",
            );
        }
    }
    let mut storage: Option<Ident> = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("repr")) {
        let _ = attr.parse_nested_meta(|meta| {
            if let Some(ident) = meta.path.get_ident() {
                match ident.to_string().as_str() {
                    "i16" | "i32" | "i64" => storage = Some(ident.clone()),
                    "i8" | "u8" | "u16" | "u32" | "u64" | "i128" | "u128" | "isize" | "usize" => {
                        cx.error_spanned_by(
                            ident,
                            format_args!("an enum stored as an integer is stored as an `i16`, `i32` or `i64`: use #[repr(i16)], #[repr(i32)] or #[repr(i64)] instead of #[repr({ident})], or no #[repr] (`i32`)"),
                        );
                    }
                    _ => {}
                }
            }
            // Skip `align(…)` and the like.
            if meta.input.peek(syn::token::Paren) {
                let _ = meta.input.parse::<proc_macro2::Group>();
            }
            Ok(())
        });
    }
    let checked = storage.is_none();
    Some(ColumnType::Integer {
        variants: data.variants.iter().map(|v| &v.ident).collect(),
        storage: storage.unwrap_or_else(|| Ident::new("i32", Span::call_site())),
        checked,
    })
}

fn unknown_key(
    cx: &Ctxt,
    meta: &syn::meta::ParseNestedMeta,
    here: &[&str],
    elsewhere: &[&str],
    other_place: &str,
) {
    let key = meta
        .path
        .get_ident()
        .map_or_else(|| "…".to_owned(), Ident::to_string);
    let valid = here
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let message = if elsewhere.contains(&key.as_str()) {
        format!("`{key}` belongs on {other_place}; here the valid keys are {valid}")
    } else if let Some(close) = did_you_mean(&key, here.iter().copied()) {
        format!("unknown key `{key}`: did you mean `{close}`? Valid keys here: {valid}")
    } else {
        format!("unknown key `{key}`; valid keys here: {valid}")
    };
    cx.error_spanned_by(&meta.path, message);
    if meta.input.peek(syn::Token![=]) {
        let _ = meta.value().and_then(|v| v.parse::<syn::Expr>());
    } else if meta.input.peek(syn::token::Paren) {
        let _ = meta.input.parse::<proc_macro2::Group>();
    }
}

fn expand(ident: &Ident, column: &ColumnType) -> TokenStream {
    let p = quote!(::model_runtime::__private);
    let name = ident.to_string();
    let error = quote!(
        ::std::boxed::Box<dyn ::std::error::Error + ::core::marker::Send + ::core::marker::Sync>
    );
    let body = match column {
        ColumnType::Newtype { member, ty } => {
            // The stored type's own errors (not a column type) land on the field's type.
            let stored = quote_spanned!(ty.span()=> type Stored = #ty;);
            quote! {
                #stored
                fn to_stored(&self) -> #ty {
                    ::core::clone::Clone::clone(&self.#member)
                }
                fn from_stored(stored: #ty) -> ::core::result::Result<Self, #error> {
                    ::core::result::Result::Ok(Self { #member: stored })
                }
            }
        }
        ColumnType::Text { variants } => {
            let idents = variants.iter().map(|(v, _)| v);
            let idents2 = idents.clone();
            let names = variants.iter().map(|(_, n)| n);
            let names2 = names.clone();
            let names3 = names.clone();
            let longest = variants
                .iter()
                .map(|(_, n)| n.chars().count())
                .max()
                .unwrap_or(0);
            let longest = u32::try_from(longest).unwrap_or(u32::MAX);
            quote! {
                type Stored = ::std::string::String;
                const MAX_CHARS: ::core::option::Option<u32> = ::core::option::Option::Some(#longest);
                const STORED: #p::Stored = #p::Stored::Texts(&[#(#names3),*]);
                fn to_stored(&self) -> ::std::string::String {
                    let name: &'static str = match self {
                        #(Self::#idents => #names,)*
                    };
                    ::std::string::String::from(name)
                }
                fn from_stored(stored: ::std::string::String) -> ::core::result::Result<Self, #error> {
                    match stored.as_str() {
                        #(#names2 => ::core::result::Result::Ok(Self::#idents2),)*
                        _ => ::core::result::Result::Err(::std::boxed::Box::new(
                            #p::UnknownVariant::new(#name, stored),
                        )),
                    }
                }
            }
        }
        ColumnType::Integer {
            variants,
            storage,
            checked,
        } => {
            let fits = checked.then(|| {
                let message = format!(
                    "a discriminant of `{name}` does not fit the `i32` it is stored as: give the enum #[repr(i64)]"
                );
                quote! {
                    const _: () = {
                        #(::core::assert!((#ident::#variants as i128) == (#ident::#variants as #storage as i128), #message);)*
                    };
                }
            });
            return quote! {
                #[automatically_derived]
                impl #p::StoredAs for #ident {
                    type Stored = #storage;
                    const STORED: #p::Stored =
                        #p::Stored::Ints(&[#((Self::#variants as #storage) as i64),*]);
                    fn to_stored(&self) -> #storage {
                        match self {
                            #(Self::#variants => Self::#variants as #storage,)*
                        }
                    }
                    fn from_stored(stored: #storage) -> ::core::result::Result<Self, #error> {
                        #(if stored == Self::#variants as #storage {
                            return ::core::result::Result::Ok(Self::#variants);
                        })*
                        ::core::result::Result::Err(::std::boxed::Box::new(
                            #p::UnknownVariant::new(#name, stored),
                        ))
                    }
                }
                #fits
            };
        }
    };
    quote! {
        #[automatically_derived]
        impl #p::StoredAs for #ident {
            #body
        }
    }
}
