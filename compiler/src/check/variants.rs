//! Event variants: a discriminator field selects per-variant payload fields and rules.

use std::collections::BTreeMap;

use super::Checker;
use super::fields::IdRegistry;
use super::names::variant_ident;
use crate::diagnostic::Code;
use crate::ir::{Enrichment, Field, Type, Variant, Variants};
use crate::syntax::ast::{CaseDoc, RuleDoc, VariantsDoc};
use crate::syntax::schema::closest;
use crate::syntax::spans::escape_pointer_segment;

impl Checker<'_> {
    pub fn variants(
        &mut self,
        doc: &VariantsDoc,
        envelope: &[Field],
        enrichments: &[Enrichment],
        ids: &mut IdRegistry,
    ) -> Option<Variants> {
        let before = self.error_count();
        self.discriminator(doc, envelope);

        let mut cases: Vec<Variant> = Vec::new();
        // Payload fields by name, with the case that first defined them: shared names must agree.
        let mut payload: BTreeMap<String, (Field, String)> = BTreeMap::new();
        let mut idents: BTreeMap<String, String> = BTreeMap::new();
        for (value, case) in &doc.cases {
            let pointer = format!("/variants/cases/{}", escape_pointer_segment(value));
            let ident = variant_ident(value);
            if ident.is_empty() || value.chars().any(char::is_control) || value.trim() != value {
                self.emit(
                    self.diag(
                        Code::VariantIdentCollision,
                        format!("variant {value:?} cannot be named in generated code"),
                    )
                    .at(
                        self.key_span(&pointer),
                        "needs letters or digits, no control characters or edge spaces",
                    )
                    .help("discriminator values become enum variants, e.g. `End Game` → EndGame"),
                );
                continue;
            }
            if let Some(first) = idents.insert(ident.clone(), value.clone()) {
                self.emit(
                    self.diag(
                        Code::VariantIdentCollision,
                        format!("variants {first:?} and {value:?} both become `{ident}`"),
                    )
                    .at(self.key_span(&pointer), format!("generates `{ident}`"))
                    .also(
                        self.key_span(&format!(
                            "/variants/cases/{}",
                            escape_pointer_segment(&first)
                        )),
                        format!("also generates `{ident}`"),
                    )
                    .help("rename one so that their letters and digits differ"),
                );
                continue;
            }
            let case: CaseDoc = if case.is_null() {
                CaseDoc::default()
            } else {
                match serde_json::from_value(case.clone()) {
                    Ok(case) => case,
                    // The schema has already accepted this shape.
                    Err(_) => continue,
                }
            };
            if let Some(variant) = self.case(
                value,
                ident,
                &case,
                &pointer,
                envelope,
                enrichments,
                &mut payload,
                ids,
            ) {
                cases.push(variant);
            }
        }
        (self.error_count() == before).then(|| Variants {
            discriminator: doc.discriminator.clone(),
            cases,
        })
    }

    fn discriminator(&mut self, doc: &VariantsDoc, envelope: &[Field]) {
        let pointer = "/variants/discriminator";
        let Some(field) = envelope.iter().find(|f| f.name == doc.discriminator) else {
            let mut d = self
                .diag(
                    Code::UnknownDiscriminator,
                    format!(
                        "discriminator `{}` is not an envelope field",
                        doc.discriminator
                    ),
                )
                .at(self.span(pointer), "no such field");
            if let Some(best) =
                closest(&doc.discriminator, envelope.iter().map(|f| f.name.as_str()))
            {
                d = d.help(format!("did you mean `{best}`?"));
            }
            self.emit(d);
            return;
        };
        if field.ty != Type::String || !field.required {
            self.emit(
                self.diag(Code::UnsuitableDiscriminator, format!("discriminator `{}` is {} {}", field.name, if field.required { "a required" } else { "an optional" }, field.ty.name()))
                    .at(self.span(pointer), "must be a required string")
                    .help("every event must say which variant it is: make the field `type: string` and `required: true`"),
            );
        }
        if field.rules.iter().any(|r| r.kind.key() == "one_of") {
            self.emit(
                self.diag(
                    Code::DiscriminatorOneOf,
                    format!("discriminator `{}` has its own one_of", field.name),
                )
                .at(self.span(pointer), "the cases below are the allowed values")
                .help("remove the `one_of` rule from the field; list values as cases instead"),
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn case(
        &mut self,
        value: &str,
        ident: String,
        case: &CaseDoc,
        pointer: &str,
        envelope: &[Field],
        enrichments: &[Enrichment],
        payload: &mut BTreeMap<String, (Field, String)>,
        ids: &mut IdRegistry,
    ) -> Option<Variant> {
        let before = self.error_count();
        let mut fields = Vec::new();
        for (i, field_doc) in case.fields.iter().enumerate() {
            let field_pointer = format!("{pointer}/fields/{i}");
            let name_pointer = format!("{field_pointer}/name");
            if envelope.iter().any(|f| f.name == field_doc.name)
                || enrichments.iter().any(|e| e.name == field_doc.name)
            {
                self.emit(
                    self.diag(Code::VariantShadowsField, format!("variant field `{}` shadows an envelope or enrichment column", field_doc.name))
                        .at(self.span(&name_pointer), "already a column of every event")
                        .help("to tighten an envelope field for this variant use `require:` or `rules:` in the case"),
                );
                continue;
            }
            if fields.iter().any(|f: &Field| f.name == field_doc.name) {
                self.emit(
                    self.diag(
                        Code::DuplicateName,
                        format!(
                            "field `{}` is defined twice in this variant",
                            field_doc.name
                        ),
                    )
                    .at(self.span(&name_pointer), "defined again here"),
                );
                continue;
            }
            if let Some((shared, first_pointer)) = payload.get(&field_doc.name) {
                // Shared by several variants: one column, so one definition. Check it against the
                // first without registering its ids a second time.
                let mut scratch = IdRegistry::default();
                let field = self.field(field_doc, &field_pointer, &mut scratch)?;
                if &field != shared {
                    self.emit(
                        self.diag(Code::ConflictingVariantField, format!("variant field `{}` is defined differently in two variants", field.name))
                            .at(self.span(&name_pointer), "defined here")
                            .also(self.span(&format!("{first_pointer}/name")), "and differently here")
                            .help("a name shared by variants is one table column: give both the same id, type and rules, or use different names"),
                    );
                    continue;
                }
                fields.push(field);
                continue;
            }
            if let Some(field) = self.field(field_doc, &field_pointer, ids) {
                payload.insert(field.name.clone(), (field.clone(), field_pointer));
                fields.push(field);
            }
        }

        let mut require = Vec::new();
        for (i, name) in case.require.iter().enumerate() {
            let item_pointer = format!("{pointer}/require/{i}");
            match envelope.iter().find(|f| &f.name == name) {
                None => {
                    let mut d = self
                        .diag(
                            Code::UnknownRequiredField,
                            format!("variant requires unknown field `{name}`"),
                        )
                        .at(self.span(&item_pointer), "not an envelope field");
                    if let Some(best) = closest(name, envelope.iter().map(|f| f.name.as_str())) {
                        d = d.help(format!("did you mean `{best}`?"));
                    } else if fields.iter().any(|f| &f.name == name) {
                        d = d.help("this variant's own fields say `required: true` instead");
                    }
                    self.emit(d);
                }
                Some(f) if f.required => self.emit(
                    self.diag(
                        Code::RequireAlreadyRequired,
                        format!("`{name}` is always required"),
                    )
                    .at(self.span(&item_pointer), "redundant")
                    .help("remove it from `require`"),
                ),
                Some(_) => require.push(name.clone()),
            }
        }

        let mut rules = Vec::new();
        for (name, docs) in &case.rules {
            let rules_pointer = format!("{pointer}/rules/{}", escape_pointer_segment(name));
            let Some(field) = envelope.iter().find(|f| &f.name == name) else {
                let mut d = self
                    .diag(
                        Code::UnknownRuleTarget,
                        format!("rules for unknown field `{name}`"),
                    )
                    .at(self.key_span(&rules_pointer), "not an envelope field");
                if let Some(best) = closest(name, envelope.iter().map(|f| f.name.as_str())) {
                    d = d.help(format!("did you mean `{best}`?"));
                } else {
                    d = d.help("rules of this variant's own fields go on those fields");
                }
                self.emit(d);
                continue;
            };
            let Ok(docs) = serde_json::from_value::<Vec<RuleDoc>>(docs.clone()) else {
                continue;
            };
            if let Some(extra) = self.rules(&docs, &field.ty, &rules_pointer, &field.rules) {
                rules.push((name.clone(), extra));
            }
        }
        // Envelope order, so generated code is stable whatever order the author used.
        rules.sort_by_key(|(name, _)| envelope.iter().position(|f| &f.name == name));

        (self.error_count() == before).then(|| Variant {
            value: value.to_string(),
            ident,
            description: case.description.clone(),
            fields,
            require,
            rules,
        })
    }
}
