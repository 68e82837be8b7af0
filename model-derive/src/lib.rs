//! `#[derive(Model)]` for [`model_runtime`](https://docs.rs/model-runtime): unique constraints as a
//! typed part of the model. Use it through `model_runtime::Model` (depend on `model-runtime`, not on
//! this crate): the generated code refers to `::model_runtime`. The attributes and what each model
//! gets are documented on `model_runtime`'s front page:
//! [Attributes](https://docs.rs/model-runtime/latest/model_runtime/#attributes),
//! [What each model gets](https://docs.rs/model-runtime/latest/model_runtime/#what-each-model-gets).
//!
//! The derive works in four steps, each in its own module: `attr` parses what the user wrote, `ast`
//! builds the model (table, columns, primary key, unique constraints with resolved names), `check`
//! applies the rules across them, and `expand` generates code from the checked model only.

mod ast;
mod attr;
mod check;
mod column;
mod ctxt;
mod expand;
mod naming;

use proc_macro::TokenStream;

/// Derives `model_runtime::Model` for a struct with named fields: `#[model(table = "…")]` and
/// `#[unique_together(a, b, name = "…")]` on the struct; `#[unique]`, `#[unique(name = "…")]` and
/// `#[model(primary_key, auto_increment, column = "…", max_length = N, references = Model,
/// precision = P, scale = S)]` on fields; `#[index]` on a field and `#[index(a, b, name = "…")]` on
/// the struct for plain indexes. What each attribute means and what the derive generates (`Model::META`, the `…Field`
/// enum, one key type with its constructor `by_…`, and `get_or_create_by_…`, `update_or_create_by_…`
/// per unique key) are on
/// [`model_runtime`'s front page](https://docs.rs/model-runtime/latest/model_runtime/#attributes).
#[proc_macro_derive(Model, attributes(model, unique, unique_together, index))]
pub fn derive_model(input: TokenStream) -> TokenStream {
    derive_model_inner(input.into()).into()
}

/// Derives `model_runtime::StoredAs` for a column type of the user's: a struct with one field
/// (stored as that field), or an enum without data stored as text (`#[column(text)]`, with
/// `#[column(rename = "…")]` on a variant) or as an integer (`#[column(integer)]`). Documented on
/// [`model_runtime::StoredAs`](https://docs.rs/model-runtime/latest/model_runtime/trait.StoredAs.html).
#[proc_macro_derive(Column, attributes(column))]
pub fn derive_column(input: TokenStream) -> TokenStream {
    column::derive_column_inner(input.into()).into()
}

/// The derive on `proc_macro2` tokens, callable from unit and snapshot tests.
fn derive_model_inner(input: proc_macro2::TokenStream) -> proc_macro2::TokenStream {
    let input = match syn::parse2::<syn::DeriveInput>(input) {
        Ok(input) => input,
        Err(error) => return error.to_compile_error(),
    };
    let cx = ctxt::Ctxt::default();
    let model = ast::Model::from_input(&cx, &input);
    let output = model.map(|mut model| {
        check::check(&cx, &mut model);
        (!cx.has_errors()).then(|| expand::expand(&model))
    });
    match (cx.check(), output) {
        (Ok(()), Some(Some(tokens))) => tokens,
        (Err(errors), _) if input.generics.params.is_empty() => {
            expand::fallback(&input.ident, errors)
        }
        (Err(errors), _) => errors.to_compile_error(),
        (Ok(()), _) => unreachable!("no model without an error"),
    }
}

#[cfg(test)]
mod snapshots;
