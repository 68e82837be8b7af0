//! Code generation from the checked model. The generated code is metadata and thin typed wrappers;
//! the logic lives once in `model_runtime`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::Ident;

use crate::ast::{Model, Origin};
use crate::naming;

/// `sku`, `product_name_and_store_id`: the part after `by_` (the key's constructor) and
/// `get_or_create_by_`.
pub fn key_suffix(model: &Model, columns: &[usize]) -> String {
    columns
        .iter()
        .map(|&i| {
            model.fields[i]
                .ident
                .to_string()
                .trim_start_matches("r#")
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join("_and_")
}

/// `product_name` → `ProductName`: the variant of the field enum.
pub fn field_variant(field: &Ident) -> Ident {
    format_ident!(
        "{}",
        naming::camel_case(field.to_string().trim_start_matches("r#"))
    )
}

/// `ProductBySku`, `ProductByProductNameAndStoreId`.
fn key_type(model: &Model, columns: &[usize]) -> Ident {
    let parts: Vec<String> = columns
        .iter()
        .map(|&i| naming::camel_case(model.fields[i].ident.to_string().trim_start_matches("r#")))
        .collect();
    format_ident!("{}By{}", model.ident, parts.join("And"))
}

pub fn expand(model: &Model) -> TokenStream {
    let p = quote!(::model_runtime::__private);
    let ident = model.ident;
    let name = ident.to_string();
    let table = &model.table;
    let primary_key = model.primary_key.expect("checked: one primary key");
    let pk_ty = model.fields[primary_key].ty;

    let columns = model.fields.iter().map(|field| {
        let ty = field.ty;
        let field_name = field.ident.to_string().trim_start_matches("r#").to_owned();
        let column = &field.column;
        let max_length = match field.max_length {
            Some((_, n)) => quote!(::core::option::Option::Some(#n)),
            None => quote!(::core::option::Option::None),
        };
        let auto_increment = field.auto_increment.is_some();
        let references = match &field.references {
            Some(target) => {
                let fk_name = naming::constraint_name(table, [column.as_str()], "fkey");
                quote!(::core::option::Option::Some(#p::ForeignKey::__new(
                    #fk_name,
                    || <#target as #p::Model>::META,
                )))
            }
            None => quote!(::core::option::Option::None),
        };
        let kind = quote_spanned!(ty_span(ty)=> <#ty as #p::Column>::KIND);
        let decimal = field
            .decimal
            .map(|(_, precision, scale)| quote!(.__decimal(#precision, #scale)));
        quote! {
            #p::ColumnMeta::__new(
                #field_name,
                #column,
                #kind,
                <#ty as #p::Column>::NULLABLE,
                #max_length,
                #auto_increment,
                #references,
            )#decimal
        }
    });

    let uniques = model.uniques.iter().map(|unique| {
        let name = &unique.name;
        let columns = &unique.columns;
        let origin = match unique.origin {
            Origin::Field => quote!(#p::ConstraintOrigin::Field),
            Origin::Together => quote!(#p::ConstraintOrigin::Together),
        };
        let folded = unique.folded.iter().map(|(i, _)| i);
        let nulls_distinct = !unique.nulls_not_distinct;
        let terms = unique.condition.iter().map(|term| {
            let column = term.field;
            let test = match (&term.literal, term.equals) {
                (None, true) => quote!(#p::Test::IsNull),
                (None, false) => quote!(#p::Test::IsNotNull),
                (Some(literal), equals) => {
                    let literal = literal_tokens(&p, literal);
                    if equals {
                        quote!(#p::Test::Equals(#literal))
                    } else {
                        quote!(#p::Test::NotEquals(#literal))
                    }
                }
            };
            quote!(#p::Predicate::__new(#column, #test))
        });
        quote!(#p::UniqueConstraint::__new(
            #name,
            &[#(#columns),*],
            #origin,
            &[#(#folded),*],
            #nulls_distinct,
            &[#(#terms),*],
        ))
    });
    // A condition's terms type-check against the fields: `None` needs an `Option` field, and a
    // literal must compare with what the field is stored as (an enum's stored name, a newtype's
    // inner value).
    let condition_assertions = model.uniques.iter().flat_map(|unique| {
        unique.condition.iter().map(|term| {
            let ty = model.fields[term.field].ty;
            let span = term.span;
            match &term.literal {
                None => quote_spanned!(span=> const _: () = #p::assert_nullable::<#ty>();),
                Some(literal) => {
                    // A closed set of stored values (an enum of the user's own): the literal must
                    // be one of them, or the constraint would cover no row (or every row).
                    let member = match literal {
                        syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) => {
                            let message = format!(
                                "`condition`: {:?} is not a value `{}` stores (for an enum: a variant's stored name)",
                                s.value(),
                                quote!(#ty).to_string().replace(' ', "")
                            );
                            Some(quote_spanned!(span=>
                                const _: () = ::core::assert!(
                                    <<#ty as #p::Column>::Base as #p::SqlType>::STORED.allows_text(#s),
                                    #message
                                );
                            ))
                        }
                        syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Bool(_), .. }) => None,
                        other => {
                            let message = format!(
                                "`condition`: {} is not a value `{}` stores (for an enum: a variant's discriminant)",
                                quote!(#other).to_string().replace(' ', ""),
                                quote!(#ty).to_string().replace(' ', "")
                            );
                            Some(quote_spanned!(span=>
                                #[allow(clippy::unnecessary_cast)]
                                const _: () = ::core::assert!(
                                    <<#ty as #p::Column>::Base as #p::SqlType>::STORED.allows_int((#other) as i64),
                                    #message
                                );
                            ))
                        }
                    };
                    quote_spanned!(span=>
                        #[allow(clippy::bool_comparison, clippy::cmp_owned)]
                        const _: fn(&<<#ty as #p::Column>::Base as #p::SqlType>::Storage) -> bool =
                            |value| *value == #literal;
                        #member
                    )
                }
            }
        })
    });
    let folded_assertions = model.uniques.iter().flat_map(|unique| {
        unique.folded.iter().map(|&(index, span)| {
            let ty = model.fields[index].ty;
            quote_spanned!(span=> const _: () = #p::assert_case_insensitive::<#ty>();)
        })
    });

    let value_arms = model.fields.iter().enumerate().map(|(index, field)| {
        let member = field.ident;
        let ty = field.ty;
        quote!(#index => <#ty as #p::Column>::to_value(&self.#member, dialect))
    });

    let decode_fields = model.fields.iter().enumerate().map(|(index, field)| {
        let member = field.ident;
        let ty = field.ty;
        let column = &field.column;
        quote!(#member: #p::named(
            <#ty as #p::Column>::decode(row, #p::column_at(at, #index)),
            #column,
        )?)
    });
    let from_row = expand_from_row(model);

    let assertions = model.fields.iter().flat_map(|field| {
        let ty = field.ty;
        let mut out = Vec::new();
        if let Some((span, n)) = field.max_length {
            // The path is written here, not interpolated, so that the whole call has the attribute's
            // span: a failed length check in the constant's evaluation points at `max_length`.
            out.push(quote_spanned!(span=>
                const _: () = ::model_runtime::__private::assert_text::<#ty>(#n);
            ));
        }
        if let Some((span, _, _)) = field.decimal {
            out.push(quote_spanned!(span=>
                const _: () = ::model_runtime::__private::assert_decimal::<#ty>();
            ));
        }
        if let Some(span) = field.auto_increment {
            out.push(quote_spanned!(span=> const _: () = #p::assert_integer::<#ty>();));
        }
        if let Some(target) = &field.references {
            out.push(quote_spanned!(ty_span(ty)=>
                const _: () = #p::assert_references::<#target, #ty>();
            ));
        }
        out
    });

    let field_enum = format_ident!("{}Field", ident);
    let vis = model.vis;
    let variants: Vec<Ident> = model
        .fields
        .iter()
        .map(|f| field_variant(f.ident))
        .collect();
    let variant_docs: Vec<String> = model
        .fields
        .iter()
        .map(|f| {
            format!(
                "`{}` (column `{}`).",
                f.ident.to_string().trim_start_matches("r#"),
                f.column
            )
        })
        .collect();
    let indexes: Vec<proc_macro2::Literal> = (0..model.fields.len())
        .map(proc_macro2::Literal::usize_unsuffixed)
        .collect();
    let variant_names = variants.iter().map(Ident::to_string);
    let field_enum_doc =
        format!("The fields of [`{name}`], to name the columns an `update_or_create_by_…` writes.");
    let typed_struct = format_ident!("{}Fields", ident);
    let members: Vec<&Ident> = model.fields.iter().map(|f| f.ident).collect();
    let types: Vec<&syn::Type> = model.fields.iter().map(|f| f.ty).collect();
    let typed_doc = format!(
        "The fields of [`{name}`] with their types (`{name}::FIELDS`), for what only some types allow: increments and conditions of `model_runtime::Changes`."
    );
    let typed_const_doc = format!(
        "The fields of [`{name}`] with their types, for `Changes::increment` and `Changes::only_if_newer`."
    );

    let typed_debug = inline_debug(&typed_struct, &members);

    let keys = std::iter::once((
        quote!(#p::KeyId::PrimaryKey),
        vec![primary_key],
        "the primary key".to_owned(),
    ))
    .chain(model.uniques.iter().enumerate().map(|(i, unique)| {
        (
            quote!(#p::KeyId::Unique(#i)),
            unique.columns.clone(),
            format!("the unique constraint `{}`", unique.name),
        )
    }))
    .map(|(key_id, columns, what)| expand_key(model, &key_id, &columns, &what));
    let (keys, methods): (Vec<_>, Vec<_>) = keys.unzip();

    let plain_indexes = (!model.indexes.is_empty()).then(|| {
        let indexes = model.indexes.iter().map(|index| {
            let name = &index.name;
            let columns = &index.columns;
            quote!(#p::Index::__new(#name, &[#(#columns),*]))
        });
        quote!(.__indexes(&[#(#indexes),*]))
    });

    quote! {
        #[automatically_derived]
        impl #p::Model for #ident {
            const META: &'static #p::ModelMeta = &#p::ModelMeta::__new(
                #name,
                #table,
                &[#(#columns),*],
                #primary_key,
                &[#(#uniques),*],
            )#plain_indexes;

            type PrimaryKey = #pk_ty;
            type Field = #field_enum;

            #[inline]
            fn field_index(field: #field_enum) -> usize {
                field as usize
            }

            #[inline]
            fn column_value(&self, index: usize, dialect: #p::Dialect) -> #p::Value {
                match index {
                    #(#value_arms,)*
                    _ => #p::column_out_of_range(#name, index),
                }
            }

            #[inline]
            fn from_row_at(
                row: #p::RowRef<'_>,
                at: &[usize],
            ) -> ::core::result::Result<Self, #p::sqlx::Error> {
                ::core::result::Result::Ok(Self { #(#decode_fields,)* })
            }
        }

        const _: () = {
            #(#assertions)*
            #(#folded_assertions)*
            #(#condition_assertions)*
        };

        #from_row

        #[doc = #field_enum_doc]
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        #[allow(dead_code)]
        #vis enum #field_enum {
            #(#[doc = #variant_docs] #variants = #indexes,)*
        }

        #[automatically_derived]
        impl ::core::fmt::Debug for #field_enum {
            #[inline]
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(match self { #(Self::#variants => #variant_names,)* })
            }
        }

        #[doc = #typed_doc]
        #[derive(Clone, Copy)]
        #[allow(dead_code)]
        #vis struct #typed_struct {
            #(#[doc = #variant_docs] pub #members: #p::TypedField<#ident, #types>,)*
        }

        #typed_debug

        // One inherent impl for all of it: each impl block more is compared with every other one of
        // the type for overlapping names.
        #[allow(dead_code)]
        impl #ident {
            #[doc = #typed_const_doc]
            #vis const FIELDS: #typed_struct = #typed_struct {
                #(#members: #p::TypedField::__new(#indexes),)*
            };

            #(#methods)*
        }

        #(#keys)*
    }
}

/// One key type, and the model's methods that look it up (for the model's one inherent impl).
fn expand_key(
    model: &Model,
    key_id: &TokenStream,
    columns: &[usize],
    what: &str,
) -> (TokenStream, TokenStream) {
    let p = quote!(::model_runtime::__private);
    let model_ident = model.ident;
    let vis = model.vis;
    let key = key_type(model, columns);
    let members: Vec<&Ident> = columns.iter().map(|&i| model.fields[i].ident).collect();
    let types: Vec<&syn::Type> = columns.iter().map(|&i| model.fields[i].ty).collect();
    let column_list = columns
        .iter()
        .map(|&i| format!("`{}`", model.fields[i].column))
        .collect::<Vec<_>>()
        .join(", ");
    let table = &model.table;
    let where_list = columns
        .iter()
        .map(|&i| format!("{} = ?", model.fields[i].column))
        .collect::<Vec<_>>()
        .join(" AND ");
    let suffix = key_suffix(model, columns);
    let by = format_ident!("by_{}", suffix);
    let get_or_create = format_ident!("get_or_create_by_{}", suffix);
    let update_or_create = format_ident!("update_or_create_by_{}", suffix);
    let field_enum = format_ident!("{}Field", model_ident);

    let key_doc = format!(
        "The values of {what} of [`{model_ident}`] ({column_list}): a lookup that finds at most one row."
    );
    let by_doc = format!(
        "The key of the [`{model_ident}`] with these values of {column_list} ({what}), to look it up: `.get(conn)` (one `SELECT … FROM {table} WHERE {where_list}`), `.exists(conn)`, `.get_for_update(conn)` ([`model_runtime::Key`]'s methods; the trait must be in scope)."
    );
    let get_or_create_doc = format!(
        "Returns the [`{model_ident}`] whose {column_list} equal the candidate's, inserting the candidate when there is none, race-free, through {what}. The candidate's other fields are used only when creating.\n\nSends a `SELECT` by these columns; when it finds nothing, an `INSERT … ON CONFLICT DO NOTHING RETURNING` (SQLite, PostgreSQL) or `INSERT … RETURNING` (MariaDB), and a read of the winner's row if a concurrent caller inserted it first. See [`model_runtime::get_or_create`]."
    );
    let update_or_create_doc = format!(
        "Updates the listed fields of the [`{model_ident}`] whose {column_list} equal the candidate's, or inserts the candidate when there is none, race-free, through {what}.\n\nSends an `UPDATE … WHERE {where_list} RETURNING` and, when it matches nothing, the insert of `get_or_create` (SQLite, PostgreSQL); one guarded `INSERT … ON DUPLICATE KEY UPDATE … RETURNING` (MariaDB). See [`model_runtime::update_or_create`]."
    );
    let field_docs = columns
        .iter()
        .map(|&i| format!("The `{}` column.", model.fields[i].column));

    // Every method has the same shape: the caller's pool, connection or transaction (anything that
    // is a `Conn`), and a boxed `Send` future that the runtime's generic function returns.
    let method =
        |doc: String, name: &Ident, params: TokenStream, output: TokenStream, body: TokenStream| {
            quote! {
                #[doc = #doc]
                #vis fn #name<'a, 'c: 'a>(
                    conn: impl #p::Conn<'c> + 'a,
                    #params
                ) -> #p::BoxFuture<'a, ::core::result::Result<#output, #p::Error>> {
                    #body
                }
            }
        };
    let with_outcome = quote!((Self, #p::Outcome));
    let methods = [
        // A plain constructor: the lookups themselves are `Key`'s provided methods, compiled once
        // in the runtime instead of three generic functions per key in the user's crate.
        quote! {
            #[doc = #by_doc]
            #[inline]
            #vis fn #by(#(#members: impl ::core::convert::Into<#types>),*) -> #key {
                #key { #(#members: #members.into()),* }
            }
        },
        method(
            get_or_create_doc,
            &get_or_create,
            quote!(candidate: &'a Self,),
            with_outcome.clone(),
            quote!(#p::get_or_create::<#key>(conn, candidate)),
        ),
        method(
            update_or_create_doc,
            &update_or_create,
            quote!(candidate: &'a Self, update: &'a [#field_enum],),
            with_outcome,
            quote!(#p::update_or_create::<#key>(
                conn,
                candidate,
                #p::Changes::new(candidate, update),
            )),
        ),
    ];

    let key_debug = inline_debug(&key, &members);
    let items = quote! {
        #[doc = #key_doc]
        #[derive(Clone, PartialEq)]
        #[allow(dead_code)] // generated for every key; a model need not use them all
        #vis struct #key {
            #(#[doc = #field_docs] pub #members: #types,)*
        }

        #key_debug

        #[automatically_derived]
        impl #p::Key for #key {
            type Model = #model_ident;
            const KEY: #p::KeyId = #key_id;

            #[inline]
            fn values(&self, dialect: #p::Dialect) -> ::std::vec::Vec<#p::Value> {
                ::std::vec![#(<#types as #p::Column>::to_value(&self.#members, dialect)),*]
            }

            #[inline]
            fn of(model: &#model_ident) -> Self {
                Self { #(#members: ::core::clone::Clone::clone(&model.#members)),* }
            }
        }

        #[automatically_derived]
        impl #p::KeyOf<#model_ident> for #key {}
    };
    (items, quote!(#(#methods)*))
}

/// `Debug` for a generated struct, printed as `#[derive(Debug)]` prints it, but `#[inline]`: a
/// derived `Debug` of a non-generic type is compiled into the user's crate whether it is used or not,
/// and with it every key type and field list of every model. Inline, it is compiled where it is used.
/// (The other derives the runtime asks for are inline or generic already.)
fn inline_debug(ident: &Ident, members: &[&Ident]) -> TokenStream {
    let name = ident.to_string();
    let labels = members
        .iter()
        .map(|m| m.to_string().trim_start_matches("r#").to_owned());
    quote! {
        #[automatically_derived]
        impl ::core::fmt::Debug for #ident {
            #[inline]
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(#name)#(.field(#labels, &self.#members))*.finish()
            }
        }
    }
}

/// A condition's literal as a `Literal` of the runtime.
fn literal_tokens(p: &TokenStream, literal: &syn::Expr) -> TokenStream {
    match literal {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Bool(b),
            ..
        }) => quote!(#p::Literal::Bool(#b)),
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s),
            ..
        }) => quote!(#p::Literal::Text(#s)),
        // An integer, with its sign: checked against the field's own type by the assertion, and
        // carried as an i64.
        other => quote!(#p::Literal::Int((#other) as i64)),
    }
}

/// `sqlx::FromRow` for the row of every enabled backend, decoding each field by its column's name,
/// so that the user's own `sqlx::query_as` reads the model whatever the column order. The lookup by
/// name is the runtime's, once for every model; the model decodes by position (`from_row_at`).
fn expand_from_row(model: &Model) -> TokenStream {
    let p = quote!(::model_runtime::__private);
    let ident = model.ident;
    quote! {
        #[automatically_derived]
        impl<'r, R: #p::ModelRow> #p::sqlx::FromRow<'r, R> for #ident {
            #[inline]
            fn from_row(row: &'r R) -> ::core::result::Result<Self, #p::sqlx::Error> {
                #p::from_named_row(#p::ModelRow::row_ref(row))
            }
        }
    }
}

fn ty_span(ty: &syn::Type) -> proc_macro2::Span {
    syn::spanned::Spanned::span(ty)
}

/// What is emitted when the model has errors: the errors, plus a stand-in impl so that the rest of the
/// user's code does not drown them in "trait not implemented" errors.
pub fn fallback(ident: &Ident, errors: syn::Error) -> TokenStream {
    let p = quote!(::model_runtime::__private);
    let errors = errors.to_compile_error();
    let name = ident.to_string();
    quote! {
        #errors
        #[automatically_derived]
        impl #p::Model for #ident {
            const META: &'static #p::ModelMeta = &#p::ModelMeta::__invalid(#name);
            type PrimaryKey = i64;
            type Field = ();
            fn field_index(_: ()) -> usize {
                ::core::unreachable!()
            }
            fn column_value(&self, _: usize, _: #p::Dialect) -> #p::Value {
                ::core::unreachable!()
            }
            fn from_row_at(
                _: #p::RowRef<'_>,
                _: &[usize],
            ) -> ::core::result::Result<Self, #p::sqlx::Error> {
                ::core::unreachable!()
            }
        }
        #[automatically_derived]
        impl<'r, R: #p::ModelRow> #p::sqlx::FromRow<'r, R> for #ident {
            fn from_row(_: &'r R) -> ::core::result::Result<Self, #p::sqlx::Error> {
                ::core::unreachable!()
            }
        }
    }
}
