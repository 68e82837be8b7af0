//! What typical models expand to, as reviewed snapshots (`cargo insta review` after a change).

use quote::quote;

fn expand(input: proc_macro2::TokenStream) -> String {
    let output = crate::derive_model_inner(input);
    let file: syn::File = syn::parse2(output).expect("the expansion parses as items");
    prettyplease::unparse(&file)
}

#[test]
fn single_unique_field() {
    insta::assert_snapshot!(expand(quote! {
        #[model(table = "products")]
        pub struct Product {
            #[model(primary_key, auto_increment)]
            pub id: i64,
            #[unique]
            #[model(max_length = 100)]
            pub product_name: String,
            pub price: f64,
        }
    }));
}

#[test]
fn unique_together_with_a_foreign_key() {
    insta::assert_snapshot!(expand(quote! {
        #[unique_together(product_name, store_id, name = "unique_product_per_store")]
        struct StoreProduct {
            #[model(primary_key, auto_increment)]
            id: i64,
            #[model(max_length = 100, column = "name")]
            product_name: String,
            #[model(references = Store)]
            store_id: i64,
            ean: Option<i64>,
        }
    }));
}

#[test]
fn errors_come_with_a_stand_in_impl() {
    insta::assert_snapshot!(expand(quote! {
        #[unique_together(product_name, stroe_id)]
        struct Product {
            #[model(primary_key)]
            id: i64,
            product_name: String,
            store_id: i64,
        }
    }));
}

fn expand_column(input: proc_macro2::TokenStream) -> String {
    let output = crate::column::derive_column_inner(input);
    let file: syn::File = syn::parse2(output).expect("the expansion parses as items");
    prettyplease::unparse(&file)
}

#[test]
fn newtype_column() {
    insta::assert_snapshot!(expand_column(quote! {
        pub struct Sku(String);
    }));
}

#[test]
fn text_enum_column() {
    insta::assert_snapshot!(expand_column(quote! {
        #[column(text)]
        pub enum Status {
            Active,
            #[column(rename = "on-hold")]
            OnHold,
        }
    }));
}

#[test]
fn integer_enum_column() {
    insta::assert_snapshot!(expand_column(quote! {
        #[column(integer)]
        enum Priority {
            Low = -1,
            High = 10,
        }
    }));
}

#[test]
fn plain_indexes_and_a_sized_decimal() {
    insta::assert_snapshot!(expand(quote! {
        #[model(table = "products")]
        #[index(store_id, added, name = "products_by_store_and_date")]
        struct Product {
            #[model(primary_key, auto_increment)]
            id: i64,
            #[index]
            store_id: i64,
            added: chrono::NaiveDate,
            #[model(precision = 10, scale = 2)]
            price: rust_decimal::Decimal,
        }
    }));
}
