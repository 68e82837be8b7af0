//! The parsed model: table, columns, primary key and unique constraints, with names resolved. Built
//! from the attributes by `Model::from_input`, then checked by `check.rs`; the generator reads only
//! this.

use proc_macro2::{Span, TokenStream};
use syn::{Data, DeriveInput, Fields, Ident, Type, Visibility};

use crate::attr::{self, FieldAttrs};
use crate::ctxt::Ctxt;
use crate::naming;

pub struct Model<'a> {
    pub ident: &'a Ident,
    pub vis: &'a Visibility,
    pub table: String,
    pub table_span: Span,
    pub fields: Vec<Field<'a>>,
    /// Index into `fields`; `None` only while errors are being collected.
    pub primary_key: Option<usize>,
    pub uniques: Vec<Unique>,
    /// Plain (non-unique) indexes: field-level `#[index]` first, in field order, then the struct's
    /// `#[index(…)]`, in attribute order.
    pub indexes: Vec<Index>,
}

/// A plain index, with its name resolved.
pub struct Index {
    pub name: String,
    /// Where the name was written, when it was.
    pub name_span: Option<Span>,
    /// The attribute, for errors about the index as a whole.
    pub tokens: TokenStream,
    /// Indexes into `Model::fields`, in declaration order.
    pub columns: Vec<usize>,
    /// Where each column was named (the field for `#[index]` on a field), parallel to `columns`.
    pub column_spans: Vec<Span>,
}

pub struct Field<'a> {
    pub ident: &'a Ident,
    pub ty: &'a Type,
    pub column: String,
    pub column_span: Span,
    pub max_length: Option<(Span, u32)>,
    pub auto_increment: Option<Span>,
    pub primary_key: Option<Span>,
    pub references: Option<syn::Path>,
    /// `#[model(precision = p, scale = s)]`: where `precision` was written, `p`, `s`.
    pub decimal: Option<(Span, u32, u32)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Field,
    Together,
}

pub struct Unique {
    /// The resolved constraint name.
    pub name: String,
    /// Where the name was written, when it was.
    pub name_span: Option<Span>,
    /// The attribute, for errors about the constraint as a whole.
    pub tokens: TokenStream,
    /// Indexes into `Model::fields`, in declaration order.
    pub columns: Vec<usize>,
    /// Where each column was named (the field for `#[unique]`), parallel to `columns`.
    pub column_spans: Vec<Span>,
    pub origin: Origin,
    /// Indexes into `Model::fields` of the columns compared case-insensitively, with where each
    /// was named.
    pub folded: Vec<(usize, Span)>,
    /// `nulls_not_distinct`: a NULL collides with a NULL.
    pub nulls_not_distinct: bool,
    /// `condition(…)`: the rows the constraint covers.
    pub condition: Vec<Term>,
}

/// The options of a unique constraint besides its columns.
#[derive(Default)]
pub struct Kind {
    pub case_insensitive: Vec<(usize, Span)>,
    pub nulls_not_distinct: bool,
    pub condition: Vec<Term>,
}

/// One term of `condition(…)`, resolved: `field == None`, `field != None`, `field == literal`,
/// `field != literal`.
pub struct Term {
    /// Index into `Model::fields`.
    pub field: usize,
    /// `==` (or `!=`).
    pub equals: bool,
    /// The literal, with its sign; `None` for `None`.
    pub literal: Option<syn::Expr>,
    /// The right-hand side as written, for errors about its type.
    pub span: Span,
}

impl<'a> Model<'a> {
    /// The index of the field `name`, as an attribute (`what`) names it; otherwise an error on the
    /// name with the closest field or the list of fields.
    fn field_named(&self, cx: &Ctxt, name: &Ident, what: &str) -> Option<usize> {
        if let Some(index) = self.fields.iter().position(|f| f.ident == name) {
            return Some(index);
        }
        let names: Vec<String> = self.fields.iter().map(|f| f.ident.to_string()).collect();
        let hint =
            match crate::ctxt::did_you_mean(&name.to_string(), names.iter().map(String::as_str)) {
                Some(close) => format!("did you mean `{close}`?"),
                None => format!("the fields are: {}", names.join(", ")),
            };
        cx.error_spanned_by(
            name,
            format_args!(
                "`{what}` names `{name}`, which is not a field of `{}`; {hint}",
                self.ident
            ),
        );
        None
    }

    /// Resolves the terms of a `condition(…)` against the fields, reporting what is not a term.
    fn terms(&self, cx: &Ctxt, exprs: &[syn::Expr]) -> Vec<Term> {
        const FORMS: &str = "`field == None`, `field != None`, `field == literal` or `field != literal` (a bool, integer or string literal)";
        let mut out = Vec::new();
        for expr in exprs {
            let syn::Expr::Binary(binary) = expr else {
                cx.error_spanned_by(expr, format_args!("expected {FORMS}"));
                continue;
            };
            let equals = match binary.op {
                syn::BinOp::Eq(_) => true,
                syn::BinOp::Ne(_) => false,
                _ => {
                    cx.error_spanned_by(binary.op, format_args!("expected `==` or `!=`: {FORMS}"));
                    continue;
                }
            };
            let field = match &*binary.left {
                syn::Expr::Path(path) if path.qself.is_none() => path.path.get_ident(),
                _ => None,
            };
            let Some(name) = field else {
                cx.error_spanned_by(
                    &binary.left,
                    format_args!("expected a field name on the left: {FORMS}"),
                );
                continue;
            };
            let Some(field) = self.field_named(cx, name, "condition") else {
                continue;
            };
            let right = &*binary.right;
            if let syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) = right
                && s.value().contains('\0')
            {
                cx.error_spanned_by(right, "a condition's string cannot hold a NUL character: PostgreSQL refuses it in SQL text and SQLite ends the text there");
                continue;
            }
            let literal = match right {
                syn::Expr::Path(path) if path.path.is_ident("None") => None,
                syn::Expr::Lit(lit)
                    if matches!(
                        lit.lit,
                        syn::Lit::Bool(_) | syn::Lit::Int(_) | syn::Lit::Str(_)
                    ) =>
                {
                    Some(right.clone())
                }
                syn::Expr::Unary(unary)
                    if matches!(unary.op, syn::UnOp::Neg(_))
                        && matches!(&*unary.expr, syn::Expr::Lit(l) if matches!(l.lit, syn::Lit::Int(_))) =>
                {
                    Some(right.clone())
                }
                _ => {
                    cx.error_spanned_by(
                        right,
                        format_args!(
                            "expected `None` or a bool, integer or string literal: {FORMS}"
                        ),
                    );
                    continue;
                }
            };
            out.push(Term {
                field,
                equals,
                literal,
                span: syn::spanned::Spanned::span(right),
            });
        }
        out
    }
}

impl<'a> Model<'a> {
    pub fn from_input(cx: &Ctxt, input: &'a DeriveInput) -> Option<Model<'a>> {
        let fields = match &input.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(named) => &named.named,
                Fields::Unnamed(_) => {
                    cx.error_spanned_by(
                        &data.fields,
                        "`#[derive(Model)]` needs named fields, one per column: `struct Product { id: i64, … }`",
                    );
                    return None;
                }
                Fields::Unit => {
                    cx.error_spanned_by(
                        &input.ident,
                        "`#[derive(Model)]` needs named fields, one per column; a unit struct has no columns",
                    );
                    return None;
                }
            },
            Data::Enum(e) => {
                cx.error_spanned_by(
                    e.enum_token,
                    "`#[derive(Model)]` works on structs with named fields, not enums",
                );
                return None;
            }
            Data::Union(u) => {
                cx.error_spanned_by(
                    u.union_token,
                    "`#[derive(Model)]` works on structs with named fields, not unions",
                );
                return None;
            }
        };
        if !input.generics.params.is_empty() {
            cx.error_spanned_by(
                &input.generics,
                "`#[derive(Model)]` does not support generic parameters: a model maps to one table with fixed column types",
            );
        }

        let struct_attrs = attr::parse_struct_attrs(cx, &input.attrs);
        let (table, table_span) = match &struct_attrs.table.value {
            Some((_, lit)) => (lit.value(), lit.span()),
            None => (
                naming::snake_case(&input.ident.to_string()),
                input.ident.span(),
            ),
        };

        let mut model = Model {
            ident: &input.ident,
            vis: &input.vis,
            table,
            table_span,
            fields: Vec::with_capacity(fields.len()),
            primary_key: None,
            uniques: Vec::new(),
            indexes: Vec::new(),
        };

        let mut field_uniques = Vec::new();
        for (index, field) in fields.iter().enumerate() {
            let attrs = attr::parse_field_attrs(cx, field);
            let ident = field.ident.as_ref().expect("named field");
            model
                .fields
                .push(Field::from_attrs(cx, ident, &field.ty, &attrs));
            if let Some((_, unique)) = attrs.unique.value {
                field_uniques.push((index, unique));
            }
        }

        for (index, unique) in field_uniques {
            let span = model.fields[index].span();
            let kind = Kind {
                case_insensitive: unique
                    .case_insensitive
                    .map(|span| (index, span))
                    .into_iter()
                    .collect(),
                nulls_not_distinct: unique.nulls_not_distinct.is_some(),
                condition: model.terms(cx, &unique.condition),
            };
            model.add_unique(
                vec![(index, span)],
                unique.name,
                unique.tokens,
                Origin::Field,
                kind,
            );
        }
        for together in struct_attrs.together {
            let mut columns = Vec::with_capacity(together.fields.len());
            for name in &together.fields {
                if let Some(index) = model.field_named(cx, name, "unique_together") {
                    columns.push((index, name.span()));
                }
            }
            if together.fields.is_empty() {
                cx.error_spanned_by(
                    &together.tokens,
                    "`unique_together()` is empty: name the fields it covers, `#[unique_together(field_a, field_b)]`",
                );
                continue;
            }
            let mut kind = Kind {
                case_insensitive: Vec::new(),
                nulls_not_distinct: together.nulls_not_distinct.is_some(),
                condition: model.terms(cx, &together.condition),
            };
            for name in &together.case_insensitive {
                match together.fields.iter().position(|f| f == name) {
                    Some(at) if at < columns.len() => {
                        kind.case_insensitive.push((columns[at].0, name.span()))
                    }
                    Some(_) => {}
                    None => cx.error_spanned_by(
                        name,
                        format_args!("`case_insensitive({name})` names a field this constraint does not cover; list it among the constraint's fields first"),
                    ),
                }
            }
            if columns.len() == together.fields.len() {
                model.add_unique(
                    columns,
                    together.name,
                    together.tokens,
                    Origin::Together,
                    kind,
                );
            }
        }
        model.add_indexes(cx, &input.attrs, fields);
        Some(model)
    }

    /// The `#[index]` of each field, then the struct's `#[index(…)]`.
    fn add_indexes<'f>(
        &mut self,
        cx: &Ctxt,
        attrs: &[syn::Attribute],
        fields: impl IntoIterator<Item = &'f syn::Field>,
    ) {
        for (position, field) in fields.into_iter().enumerate() {
            if let Some(index) = attr::parse_field_index(cx, field) {
                let span = self.fields[position].span();
                self.push_index(vec![(position, span)], index);
            }
        }
        for index in attr::parse_struct_indexes(cx, attrs) {
            let mut columns = Vec::with_capacity(index.fields.len());
            for name in &index.fields {
                if let Some(position) = self.field_named(cx, name, "index") {
                    columns.push((position, name.span()));
                }
            }
            if columns.len() == index.fields.len() {
                self.push_index(columns, index);
            }
        }
    }

    fn push_index(&mut self, named: Vec<(usize, Span)>, index: attr::IndexAttr) {
        let (columns, column_spans): (Vec<usize>, Vec<Span>) = named.into_iter().unzip();
        let (name, name_span) = match index.name {
            Some(lit) => (lit.value(), Some(lit.span())),
            None => {
                let parts = columns.iter().map(|&i| self.fields[i].column.as_str());
                (naming::constraint_name(&self.table, parts, "idx"), None)
            }
        };
        self.indexes.push(Index {
            name,
            name_span,
            tokens: index.tokens,
            columns,
            column_spans,
        });
    }

    fn add_unique(
        &mut self,
        named: Vec<(usize, Span)>,
        name: Option<syn::LitStr>,
        tokens: TokenStream,
        origin: Origin,
        kind: Kind,
    ) {
        let (columns, column_spans): (Vec<usize>, Vec<Span>) = named.into_iter().unzip();
        let (name, name_span) = match name {
            Some(lit) => (lit.value(), Some(lit.span())),
            None => {
                let parts = columns.iter().map(|&i| self.fields[i].column.as_str());
                (naming::constraint_name(&self.table, parts, "key"), None)
            }
        };
        self.uniques.push(Unique {
            name,
            name_span,
            tokens,
            columns,
            column_spans,
            origin,
            folded: kind.case_insensitive,
            nulls_not_distinct: kind.nulls_not_distinct,
            condition: kind.condition,
        });
    }
}

impl<'a> Field<'a> {
    fn from_attrs(cx: &Ctxt, ident: &'a Ident, ty: &'a Type, attrs: &FieldAttrs) -> Field<'a> {
        let (column, column_span) = match &attrs.column.value {
            Some((_, lit)) => (lit.value(), lit.span()),
            None => (ident.unraw().to_string(), ident.span()),
        };
        let max_length = attrs
            .max_length
            .get()
            .and_then(|lit| match lit.base10_parse::<u32>() {
                Ok(0) | Err(_) => {
                    cx.error_spanned_by(
                        lit,
                        "`max_length` must be a whole number from 1 to 4294967295",
                    );
                    None
                }
                Ok(n) => Some((lit.span(), n)),
            });
        Field {
            ident,
            ty,
            column,
            column_span,
            max_length,
            auto_increment: attrs.auto_increment.span(),
            primary_key: attrs.primary_key.span(),
            references: attrs.references.get().cloned(),
            decimal: decimal(cx, attrs),
        }
    }

    /// Whether the field's type is written `Option<…>`: a nullable column.
    pub fn is_option(&self) -> bool {
        match self.ty {
            Type::Path(path) if path.qself.is_none() => path
                .path
                .segments
                .last()
                .is_some_and(|s| s.ident == "Option" && !s.arguments.is_empty()),
            _ => false,
        }
    }

    pub fn span(&self) -> Span {
        self.ident.span()
    }
}

/// The most digits a `NUMERIC(p, s)` column may declare: every value of that shape fits in a
/// `rust_decimal::Decimal` (96 bits, at most 28 digits after the point).
pub const MAX_PRECISION: u32 = 28;

/// `precision` and `scale`, checked against each other.
fn decimal(cx: &Ctxt, attrs: &FieldAttrs) -> Option<(Span, u32, u32)> {
    let number = |lit: &syn::LitInt, what: &str, min: u32| match lit.base10_parse::<u32>() {
        Ok(n) if (min..=MAX_PRECISION).contains(&n) => Some(n),
        _ => {
            cx.error_spanned_by(
                lit,
                format_args!("`{what}` must be a whole number from {min} to {MAX_PRECISION} (the digits a rust_decimal::Decimal holds)"),
            );
            None
        }
    };
    match (attrs.precision.get(), attrs.scale.get()) {
        (None, None) => None,
        (None, Some(scale)) => {
            cx.error_spanned_by(
                scale,
                "`scale` needs a `precision`: #[model(precision = 10, scale = 2)] is NUMERIC(10, 2)",
            );
            None
        }
        (Some(precision), scale) => {
            let p = number(precision, "precision", 1)?;
            let s = match scale {
                Some(scale) => number(scale, "scale", 0)?,
                None => 0,
            };
            if s > p {
                cx.error_spanned_by(
                    scale.expect("a scale above 0 was written"),
                    format_args!("`scale` ({s}) counts the digits after the point, out of `precision` ({p}) in all: it cannot exceed it"),
                );
                return None;
            }
            Some((precision.span(), p, s))
        }
    }
}

/// `r#type` → `type`.
trait Unraw {
    fn unraw(&self) -> Ident;
}

impl Unraw for Ident {
    fn unraw(&self) -> Ident {
        let s = self.to_string();
        match s.strip_prefix("r#") {
            Some(rest) => Ident::new(rest, self.span()),
            None => self.clone(),
        }
    }
}
