//! Writes manifest values as Rust expressions that rebuild them, for the generated crate
//! (`MANIFEST`): the runtime gets typed data, with nothing to parse at startup.
//!
//! Paths go through `contract_support::manifest`, the generated crate's one dependency.

use std::collections::BTreeMap;

use contract_manifest::{
    Alert, Auth, Bound, Condition, Dedup, Element, Enrichment, EnrichmentSource, Field, FormatItem,
    Ingest, Issuer, Literal, Manifest, PartitionField, Pii, Policy, Release, Rule, RuleKind,
    SortField, Source, Step, Table, TimeBound, TimestampFormat, Transform, Type, UnknownFields,
    Variant, Variants, Versions, WriteMode,
};
use proc_macro2::TokenStream;
use quote::quote;

/// A value that can write itself as a Rust expression.
pub trait Bake {
    fn bake(&self) -> TokenStream;
}

impl Bake for String {
    fn bake(&self) -> TokenStream {
        let text = self.as_str();
        quote!(String::from(#text))
    }
}

impl Bake for bool {
    fn bake(&self) -> TokenStream {
        quote!(#self)
    }
}

macro_rules! bake_number {
    ($($t:ty),*) => {$(
        impl Bake for $t {
            fn bake(&self) -> TokenStream {
                quote!(#self)
            }
        }
    )*};
}
bake_number!(u8, u32, u64, i64);

impl Bake for f64 {
    fn bake(&self) -> TokenStream {
        // Contract bounds are finite (the checker refuses anything else).
        let literal = proc_macro2::Literal::f64_suffixed(*self);
        quote!(#literal)
    }
}

impl<T: Bake> Bake for Option<T> {
    fn bake(&self) -> TokenStream {
        match self {
            Some(value) => {
                let value = value.bake();
                quote!(Some(#value))
            }
            None => quote!(None),
        }
    }
}

impl<T: Bake> Bake for Vec<T> {
    fn bake(&self) -> TokenStream {
        let items = self.iter().map(Bake::bake);
        quote!(vec![#(#items),*])
    }
}

impl<T: Bake> Bake for Box<T> {
    fn bake(&self) -> TokenStream {
        let inner = (**self).bake();
        quote!(Box::new(#inner))
    }
}

impl<A: Bake, B: Bake> Bake for (A, B) {
    fn bake(&self) -> TokenStream {
        let (a, b) = (self.0.bake(), self.1.bake());
        quote!((#a, #b))
    }
}

impl<K: Bake, V: Bake> Bake for BTreeMap<K, V> {
    fn bake(&self) -> TokenStream {
        let pairs = self.iter().map(|(k, v)| {
            let (k, v) = (k.bake(), v.bake());
            quote!((#k, #v))
        });
        quote!(std::collections::BTreeMap::from([#(#pairs),*]))
    }
}

/// `contract_support::manifest::$name { field: value.bake(), ... }`
macro_rules! bake_struct {
    ($name:ident { $($field:ident),* $(,)? }) => {
        impl Bake for $name {
            fn bake(&self) -> TokenStream {
                $(let $field = self.$field.bake();)*
                quote!(contract_support::manifest::$name { $($field: #$field),* })
            }
        }
    };
}

bake_struct!(Manifest {
    name,
    version,
    owner,
    description,
    source,
    fields,
    variants,
    enrichments,
    table,
    ingest,
    docs,
    versions,
    subject,
    alerts
});
bake_struct!(Alert {
    name,
    description,
    condition,
    window_minutes
});

impl Bake for Condition {
    fn bake(&self) -> TokenStream {
        match self {
            Condition::BadShare { over } => {
                let over = over.bake();
                quote!(contract_support::manifest::Condition::BadShare { over: #over })
            }
            Condition::NoEvents => variant("NoEvents", None, "Condition"),
            Condition::QuarantineGrowth { over } => {
                quote!(contract_support::manifest::Condition::QuarantineGrowth { over: #over })
            }
            Condition::CommitFailures { over } => {
                quote!(contract_support::manifest::Condition::CommitFailures { over: #over })
            }
        }
    }
}
bake_struct!(Versions {
    default_client,
    releases
});
bake_struct!(Release {
    version,
    retired,
    upcast
});

impl Bake for Step {
    fn bake(&self) -> TokenStream {
        let step = quote!(contract_support::manifest::Step);
        match self {
            Step::Rename { from, to } => {
                let (from, to) = (from.bake(), to.bake());
                quote!(#step::Rename { from: #from, to: #to })
            }
            Step::MapValues { field, map } => {
                let (field, map) = (field.bake(), map.bake());
                quote!(#step::MapValues { field: #field, map: #map })
            }
            Step::Derive {
                field,
                from,
                map,
                otherwise,
            } => {
                let (field, from, map, otherwise) =
                    (field.bake(), from.bake(), map.bake(), otherwise.bake());
                quote!(#step::Derive { field: #field, from: #from, map: #map, otherwise: #otherwise })
            }
            Step::Default { field, value } => {
                let (field, value) = (field.bake(), value.bake());
                quote!(#step::Default { field: #field, value: #value })
            }
            Step::Scale { field, by } => {
                let (field, by) = (field.bake(), by.bake());
                quote!(#step::Scale { field: #field, by: #by })
            }
            Step::Drop { field } => {
                let field = field.bake();
                quote!(#step::Drop { field: #field })
            }
        }
    }
}
bake_struct!(Source { path, fingerprint });
bake_struct!(Field {
    name,
    id,
    ty,
    required,
    description,
    pii,
    rules
});
bake_struct!(Element {
    id,
    ty,
    required,
    rules
});
bake_struct!(TimestampFormat { pattern, items });
bake_struct!(Rule {
    kind,
    policy,
    message
});
bake_struct!(TimeBound {
    offset_seconds,
    skew_seconds
});
bake_struct!(Variants {
    discriminator,
    cases
});
bake_struct!(Variant {
    value,
    ident,
    description,
    fields,
    require,
    rules
});
bake_struct!(Table {
    database,
    name,
    partition,
    sort,
    write,
    properties
});
bake_struct!(PartitionField {
    source,
    source_id,
    transform
});
bake_struct!(SortField {
    source,
    source_id,
    descending,
    nulls_first
});
bake_struct!(Ingest {
    route,
    batch_route,
    max_body_bytes,
    max_batch_events,
    unknown_fields,
    auth,
    dedup
});
bake_struct!(Dedup {
    field,
    window_seconds
});
bake_struct!(Auth {
    issuer,
    jwks_url,
    audience,
    scopes
});
bake_struct!(Enrichment {
    name,
    id,
    source,
    description,
    pii
});

/// A unit variant, or a variant holding one baked value.
fn variant(name: &str, value: Option<TokenStream>, ty: &str) -> TokenStream {
    let ty = proc_macro2::Ident::new(ty, proc_macro2::Span::call_site());
    let name = proc_macro2::Ident::new(name, proc_macro2::Span::call_site());
    match value {
        Some(value) => quote!(contract_support::manifest::#ty::#name(#value)),
        None => quote!(contract_support::manifest::#ty::#name),
    }
}

impl Bake for Type {
    fn bake(&self) -> TokenStream {
        let ty = |name: &str, value| variant(name, value, "Type");
        match self {
            Type::String => ty("String", None),
            Type::Boolean => ty("Boolean", None),
            Type::Int => ty("Int", None),
            Type::Long => ty("Long", None),
            Type::Float => ty("Float", None),
            Type::Double => ty("Double", None),
            Type::Decimal { precision, scale } => {
                quote!(contract_support::manifest::Type::Decimal { precision: #precision, scale: #scale })
            }
            Type::Date => ty("Date", None),
            Type::Timestamp { format } => {
                let format = format.bake();
                quote!(contract_support::manifest::Type::Timestamp { format: #format })
            }
            Type::TimestampTz => ty("TimestampTz", None),
            Type::Uuid => ty("Uuid", None),
            Type::List(element) => ty("List", Some(element.bake())),
            Type::Map { key, value } => {
                let (key, value) = (key.bake(), value.bake());
                quote!(contract_support::manifest::Type::Map { key: #key, value: #value })
            }
            Type::Struct(fields) => ty("Struct", Some(fields.bake())),
        }
    }
}

impl Bake for FormatItem {
    fn bake(&self) -> TokenStream {
        let item = |name: &str| variant(name, None, "FormatItem");
        match self {
            FormatItem::Literal(text) => variant("Literal", Some(text.bake()), "FormatItem"),
            FormatItem::Year => item("Year"),
            FormatItem::Month => item("Month"),
            FormatItem::Day => item("Day"),
            FormatItem::Hour => item("Hour"),
            FormatItem::Minute => item("Minute"),
            FormatItem::Second => item("Second"),
            FormatItem::Fraction => item("Fraction"),
        }
    }
}

impl Bake for Policy {
    fn bake(&self) -> TokenStream {
        let name = match self {
            Policy::Reject => "Reject",
            Policy::Quarantine => "Quarantine",
            Policy::Warn => "Warn",
        };
        variant(name, None, "Policy")
    }
}

impl Bake for RuleKind {
    fn bake(&self) -> TokenStream {
        let (name, value) = match self {
            RuleKind::Min(b) => ("Min", b.bake()),
            RuleKind::Max(b) => ("Max", b.bake()),
            RuleKind::MinLength(n) => ("MinLength", n.bake()),
            RuleKind::MaxLength(n) => ("MaxLength", n.bake()),
            RuleKind::Pattern(p) => ("Pattern", p.bake()),
            RuleKind::OneOf(values) => ("OneOf", values.bake()),
            RuleKind::NotBefore(t) => ("NotBefore", t.bake()),
            RuleKind::NotAfter(t) => ("NotAfter", t.bake()),
        };
        variant(name, Some(value), "RuleKind")
    }
}

impl Bake for Bound {
    fn bake(&self) -> TokenStream {
        match self {
            Bound::Int(i) => variant("Int", Some(i.bake()), "Bound"),
            Bound::Float(x) => variant("Float", Some(x.bake()), "Bound"),
        }
    }
}

impl Bake for Literal {
    fn bake(&self) -> TokenStream {
        match self {
            Literal::String(s) => variant("String", Some(s.bake()), "Literal"),
            Literal::Int(i) => variant("Int", Some(i.bake()), "Literal"),
        }
    }
}

impl Bake for Transform {
    fn bake(&self) -> TokenStream {
        let t = |name: &str, value| variant(name, value, "Transform");
        match self {
            Transform::Identity => t("Identity", None),
            Transform::Year => t("Year", None),
            Transform::Month => t("Month", None),
            Transform::Day => t("Day", None),
            Transform::Hour => t("Hour", None),
            Transform::Bucket(n) => t("Bucket", Some(n.bake())),
            Transform::Truncate(w) => t("Truncate", Some(w.bake())),
        }
    }
}

impl Bake for WriteMode {
    fn bake(&self) -> TokenStream {
        match self {
            WriteMode::Append => variant("Append", None, "WriteMode"),
            WriteMode::Upsert { key, latest_by } => {
                let (key, latest_by) = (key.bake(), latest_by.bake());
                quote!(contract_support::manifest::WriteMode::Upsert { key: #key, latest_by: #latest_by })
            }
        }
    }
}

impl Bake for UnknownFields {
    fn bake(&self) -> TokenStream {
        let name = match self {
            UnknownFields::Reject => "Reject",
            UnknownFields::Quarantine => "Quarantine",
            UnknownFields::Warn => "Warn",
            UnknownFields::Drop => "Drop",
        };
        variant(name, None, "UnknownFields")
    }
}

impl Bake for Issuer {
    fn bake(&self) -> TokenStream {
        match self {
            Issuer::Dev => variant("Dev", None, "Issuer"),
            Issuer::Url(url) => variant("Url", Some(url.bake()), "Issuer"),
        }
    }
}

impl Bake for Pii {
    fn bake(&self) -> TokenStream {
        let name = match self {
            Pii::No => "No",
            Pii::Keep => "Keep",
            Pii::Mask => "Mask",
            Pii::Hash => "Hash",
            Pii::Drop => "Drop",
        };
        variant(name, None, "Pii")
    }
}

impl Bake for EnrichmentSource {
    fn bake(&self) -> TokenStream {
        let e = |name: &str, value| variant(name, value, "EnrichmentSource");
        match self {
            EnrichmentSource::IngestTime => e("IngestTime", None),
            EnrichmentSource::ContractVersion => e("ContractVersion", None),
            EnrichmentSource::RequestId => e("RequestId", None),
            EnrichmentSource::JwtSub => e("JwtSub", None),
            EnrichmentSource::JwtClaim(claim) => e("JwtClaim", Some(claim.bake())),
            EnrichmentSource::ClientContractVersion => e("ClientContractVersion", None),
        }
    }
}
