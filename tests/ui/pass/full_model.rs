// Must compile: every attribute together, as the guide's per-store product uses them.
use model_runtime::{Key, KeyId, Model};

#[derive(Model, Debug)]
#[model(table = "stores")]
pub struct Store {
    #[model(primary_key, auto_increment)]
    pub id: i64,
    #[unique(name = "stores_name_unique")]
    #[model(max_length = 100)]
    pub name: String,
}

#[derive(Model, Debug)]
#[model(table = "products")]
#[unique_together(product_name, store_id, name = "unique_product_per_store")]
#[unique_together(store_id, code)]
pub struct Product {
    #[model(primary_key, auto_increment)]
    pub id: i64,
    #[unique]
    #[model(max_length = 40, column = "stock_keeping_unit")]
    pub sku: String,
    #[model(max_length = 100)]
    pub product_name: String,
    #[model(references = Store)]
    pub store_id: i64,
    pub code: i32,
    pub ean: Option<i64>,
}

fn main() {
    assert_eq!(Product::META.uniques.len(), 3);
    assert_eq!(<ProductById as Key>::KEY, KeyId::PrimaryKey);
    assert_eq!(<ProductBySku as Key>::KEY, KeyId::Unique(0));
    assert_eq!(<ProductByProductNameAndStoreId as Key>::KEY, KeyId::Unique(1));
    assert_eq!(<ProductByStoreIdAndCode as Key>::KEY, KeyId::Unique(2));
    let _ = ProductBySku { sku: "A-1".into() };
    let _ = StoreByName { name: "Downtown".into() };
}
