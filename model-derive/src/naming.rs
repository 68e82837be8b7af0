//! Default names: tables, constraints and generated items.

/// The longest identifier PostgreSQL keeps (it silently truncates longer ones; MySQL rejects past 64).
pub const MAX_IDENT: usize = 63;

/// `ProductVariant` → `product_variant`; `HTTPLog` → `http_log`.
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev_lower =
                i > 0 && (chars[i - 1].is_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            let prev_upper = i > 0 && chars[i - 1].is_uppercase();
            if i > 0 && (prev_lower || (prev_upper && next_lower)) && !out.ends_with('_') {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `product_name` → `ProductName`.
pub fn camel_case(name: &str) -> String {
    name.split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            let first = chars.next().expect("non-empty part");
            first.to_uppercase().chain(chars).collect::<String>()
        })
        .collect()
}

/// PostgreSQL's own style, `{table}_{col}_{col}_{suffix}`, kept within 63 bytes: a name that would
/// be longer keeps its first bytes and ends with a hash of the full name, so it stays deterministic
/// and distinct.
pub fn constraint_name<'a>(
    table: &str,
    columns: impl IntoIterator<Item = &'a str>,
    suffix: &str,
) -> String {
    let mut full = sanitize(table);
    for column in columns {
        full.push('_');
        full.push_str(&sanitize(column));
    }
    full.push('_');
    full.push_str(suffix);
    shorten(&full)
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn shorten(full: &str) -> String {
    if full.len() <= MAX_IDENT {
        return full.to_owned();
    }
    let hash = format!("{:08x}", fnv1a(full.as_bytes()));
    let keep = MAX_IDENT - hash.len() - 1;
    format!("{}_{hash}", &full[..keep])
}

/// FNV-1a, 32 bits: small, stable across Rust versions and platforms (unlike `DefaultHasher`).
fn fnv1a(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for &b in bytes {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// Whether a name is safe to write unquoted and unescaped: sea-query writes constraint names as they
/// are, so only `[A-Za-z_][A-Za-z0-9_]*` is accepted.
pub fn is_plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_of_struct_names() {
        assert_eq!(snake_case("Product"), "product");
        assert_eq!(snake_case("ProductVariant"), "product_variant");
        assert_eq!(snake_case("HTTPLog"), "http_log");
        assert_eq!(snake_case("Item2Tag"), "item2_tag");
    }

    #[test]
    fn camel_case_of_field_names() {
        assert_eq!(camel_case("product_name"), "ProductName");
        assert_eq!(camel_case("sku"), "Sku");
    }

    #[test]
    fn short_names_are_postgres_style() {
        assert_eq!(
            constraint_name("products", ["sku"], "key"),
            "products_sku_key"
        );
        assert_eq!(
            constraint_name("products", ["product_name", "store_id"], "key"),
            "products_product_name_store_id_key"
        );
    }

    #[test]
    fn long_names_are_cut_to_63_bytes_with_a_hash() {
        let a = constraint_name(
            "a_rather_long_table_name_for_testing",
            ["first_long_column", "second_long_column"],
            "key",
        );
        let b = constraint_name(
            "a_rather_long_table_name_for_testing",
            ["first_long_column", "second_long_columns"],
            "key",
        );
        assert_eq!(a.len(), 63);
        assert_eq!(b.len(), 63);
        assert_ne!(
            a, b,
            "names that differ only past the cut must stay distinct"
        );
        assert!(a.starts_with("a_rather_long_table_name_for_testing_first_long_column"));
        assert_eq!(
            a,
            constraint_name(
                "a_rather_long_table_name_for_testing",
                ["first_long_column", "second_long_column"],
                "key"
            )
        );
    }

    #[test]
    fn plain_identifiers() {
        assert!(is_plain_identifier("unique_product_per_store"));
        assert!(is_plain_identifier("_x1"));
        assert!(!is_plain_identifier("1x"));
        assert!(!is_plain_identifier("a-b"));
        assert!(!is_plain_identifier("a\"b"));
        assert!(!is_plain_identifier(""));
    }
}
