//! Random events, valid by construction, for `synth`.
//!
//! Valid events are random but valid by construction: values drawn within each rule (enums,
//! ranges, lengths, patterns through a regex-based generator, timestamps in the contract's
//! format inside its time window), per-variant payloads, nested fields. Invalid events come
//! from the contract's labelled corpus (one thing broken each, with the violation codes it
//! must produce), so the summary can check the server answered each one as labelled.

use contract_manifest::{Element, Literal, Manifest as Contract, Rule, Type, Variant};

use crate as corpus;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Map, Value, json};

/// One generated event and what the server must say about it.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthEvent {
    pub body: String,
    /// Violation codes the event must produce; empty for a valid event.
    pub expect: Vec<String>,
    /// What was broken (for invalid events).
    pub label: Option<String>,
    /// The contract version the event is made for: its client declares it
    /// (`X-Contract-Version`).
    pub version: String,
}

/// Generates events without end: valid ones, and a share `invalid_ratio` of labelled invalid
/// ones. Also an [`Iterator`], so a caller takes as many as it needs, one at a time.
pub struct Generator<'c> {
    contract: &'c Contract,
    rng: StdRng,
    invalid: Vec<corpus::Case>,
    invalid_ratio: f64,
    /// Ingest time the events are made valid for (seconds since the epoch).
    now: i64,
    /// String generators for the contract's patterns, by pattern.
    patterns: std::collections::HashMap<String, Option<rand_regex::Regex>>,
}

impl<'c> Generator<'c> {
    pub fn new(contract: &'c Contract, seed: u64, invalid_ratio: f64, now: i64) -> Self {
        // Corpus cases whose only problem a server can see at any time (time-window cases are
        // relative to `now`, and stay valid labels for a few minutes).
        let invalid = corpus::cases_at(contract, now)
            .into_iter()
            .filter(|c| !c.is_valid())
            .collect();
        Generator {
            contract,
            rng: StdRng::seed_from_u64(seed),
            invalid,
            invalid_ratio,
            now,
            patterns: std::collections::HashMap::new(),
        }
    }

    pub fn next_event(&mut self) -> SynthEvent {
        if !self.invalid.is_empty() && self.rng.random_bool(self.invalid_ratio.clamp(0.0, 1.0)) {
            let case = &self.invalid[self.rng.random_range(0..self.invalid.len())];
            return SynthEvent {
                body: corpus::with_fresh_id(self.contract, &case.body),
                expect: case.codes.iter().map(|c| c.to_string()).collect(),
                label: Some(case.name.clone()),
                version: self.contract.version.clone(),
            };
        }
        // `contract` outlives `self`'s borrow: no need to clone the variant or the fields.
        let contract = self.contract;
        let variant = contract
            .variants
            .as_ref()
            .map(|v| &v.cases[self.rng.random_range(0..v.cases.len())]);
        let body = Value::Object(self.valid_event(variant)).to_string();
        SynthEvent {
            body,
            expect: Vec::new(),
            label: None,
            version: contract.version.clone(),
        }
    }

    fn valid_event(&mut self, variant: Option<&Variant>) -> Map<String, Value> {
        let mut event = Map::new();
        let contract = self.contract;
        let discriminator = contract.variants.as_ref().map(|v| v.discriminator.as_str());
        let dedup = contract.ingest.dedup.as_ref().map(|d| d.field.as_str());
        for shape in contract_manifest::shape_fields(&contract.fields, variant) {
            let f = shape.field;
            if let Some(v) = variant
                && discriminator == Some(f.name.as_str())
            {
                event.insert(f.name.clone(), json!(v.value));
                continue;
            }
            // Every event is a new event: it gets a fresh id (a UUIDv7, as the generated clients
            // make), whatever the seed, so a second run is not taken for retries of the first.
            if dedup == Some(f.name.as_str()) {
                event.insert(f.name.clone(), json!(uuid::Uuid::now_v7().to_string()));
                continue;
            }
            if !shape.required && self.rng.random_bool(0.3) {
                continue;
            }
            let rules: Vec<Rule> = shape.rules().cloned().collect();
            let value = self.value(&f.ty, &rules);
            event.insert(f.name.clone(), value);
        }
        event
    }

    fn value(&mut self, ty: &Type, rules: &[Rule]) -> Value {
        let one_of = contract_manifest::one_of(rules).map(<[Literal]>::to_vec);
        let (lo, hi) = corpus::bounds(rules);
        match ty {
            Type::String => {
                if let Some(values) = one_of {
                    let passing: Vec<String> = values
                        .iter()
                        .filter_map(|v| {
                            if let Literal::String(s) = v {
                                Some(s.clone())
                            } else {
                                None
                            }
                        })
                        .filter(|s| corpus::string_codes(s, rules).is_empty())
                        .collect();
                    if !passing.is_empty() {
                        return json!(passing[self.rng.random_range(0..passing.len())]);
                    }
                }
                json!(self.string(rules))
            }
            Type::Boolean => json!(self.rng.random_bool(0.5)),
            Type::Int | Type::Long => {
                if let Some(values) = one_of {
                    let ints: Vec<i64> = values
                        .iter()
                        .filter_map(|v| {
                            if let Literal::Int(i) = v {
                                Some(*i)
                            } else {
                                None
                            }
                        })
                        .collect();
                    if !ints.is_empty() {
                        return json!(ints[self.rng.random_range(0..ints.len())]);
                    }
                }
                let lo = lo.map_or(0, |v| v.ceil() as i64);
                let hi = hi.map_or(lo.saturating_add(10_000), |v| v.floor() as i64);
                json!(self.rng.random_range(lo..=hi.max(lo)))
            }
            Type::Float | Type::Double => {
                let lo = lo.unwrap_or(0.0);
                let hi = hi.unwrap_or(lo + 10_000.0).max(lo);
                // Two decimals keep the text short and the value inside inclusive bounds.
                let v = (self.rng.random_range(lo..=hi) * 100.0).floor() / 100.0;
                json!(v.clamp(lo, hi))
            }
            Type::Decimal { precision, scale } => {
                let max = 10f64.powi(i32::from(*precision) - i32::from(*scale)) - 1.0;
                let lo = lo.unwrap_or(0.0).max(-max);
                let hi = hi.unwrap_or(lo + 1000.0).min(max).max(lo);
                let units = 10f64.powi(i32::from(*scale));
                let v = (self.rng.random_range(lo..=hi) * units).floor() / units;
                json!(format!("{:.*}", usize::from(*scale), v.clamp(lo, hi)))
            }
            Type::Date | Type::Timestamp { .. } | Type::TimestampTz => {
                // A time inside the rules' window, within the last hour of `now`.
                let anchor = corpus::example_seconds(ty, rules, self.now);
                let window = time_window(rules, self.now);
                let jitter = self.rng.random_range(0..3600);
                let candidate = (self.now - jitter).clamp(window.0, window.1);
                let seconds = if *ty == Type::Date { anchor } else { candidate };
                corpus::time_value(ty, seconds).unwrap_or(Value::Null)
            }
            Type::Uuid => {
                let bytes: [u8; 16] = self.rng.random();
                json!(
                    uuid::Builder::from_random_bytes(bytes)
                        .into_uuid()
                        .to_string()
                )
            }
            Type::List(e) => {
                let n = self.length(rules, 3);
                json!((0..n).map(|_| self.element(e)).collect::<Vec<_>>())
            }
            Type::Map { key, value } => {
                let n = self.length(rules, 3);
                let mut map = Map::new();
                for _ in 0..n * 4 {
                    if map.len() as u64 >= n {
                        break;
                    }
                    let k = self.string(&key.rules);
                    let v = self.element(value);
                    map.insert(k, v);
                }
                Value::Object(map)
            }
            Type::Struct(fields) => {
                let mut object = Map::new();
                for f in fields {
                    if !f.required && self.rng.random_bool(0.3) {
                        continue;
                    }
                    let v = self.value(&f.ty, &f.rules);
                    object.insert(f.name.clone(), v);
                }
                Value::Object(object)
            }
        }
    }

    /// A generator of strings matching `pattern`, compiled once per pattern.
    fn pattern_generator(&mut self, pattern: &str) -> Option<rand_regex::Regex> {
        self.patterns
            .entry(pattern.to_string())
            .or_insert_with(|| rand_regex::Regex::compile(pattern, 12).ok())
            .clone()
    }

    fn element(&mut self, e: &Element) -> Value {
        self.value(&e.ty, &e.rules)
    }

    fn length(&mut self, rules: &[Rule], default_max: u64) -> u64 {
        let (min, max) = contract_manifest::length_bounds(rules);
        let min = min.unwrap_or(0);
        let max = max.unwrap_or(min + default_max);
        self.rng.random_range(min..=max.max(min).min(min + 16))
    }

    /// A string passing every string rule: from the pattern when there is one.
    fn string(&mut self, rules: &[Rule]) -> String {
        if let Some(pattern) = contract_manifest::pattern(rules)
            && let Some(generator) = self.pattern_generator(pattern)
        {
            for _ in 0..50 {
                let s: String = self.rng.sample(&generator);
                if corpus::string_codes(&s, rules).is_empty() {
                    return s;
                }
            }
        }
        let (min, max) = contract_manifest::length_bounds(rules);
        let min = min.map_or(1, |n| n as usize);
        let max = max.map_or(min + 40, |n| n as usize).max(min);
        let len = self.rng.random_range(min..=max.min(min + 40));
        const WORDS: &[&str] = &[
            "the", "only", "thing", "we", "have", "to", "fear", "is", "itself", "dream", "leap",
        ];
        let mut s = String::new();
        while s.chars().count() < len {
            if !s.is_empty() {
                s.push(' ');
            }
            s.push_str(WORDS[self.rng.random_range(0..WORDS.len())]);
        }
        let s: String = s.chars().take(len).collect();
        if corpus::string_codes(&s, rules).is_empty() {
            s
        } else {
            // A pattern the generator could not satisfy: the contract's own example passes.
            corpus::example_value(&Type::String, rules, self.now)
                .as_str()
                .unwrap_or_default()
                .to_string()
        }
    }
}

/// The [earliest, latest] seconds a time rule allows, padded by a minute inside.
fn time_window(rules: &[Rule], now: i64) -> (i64, i64) {
    let (lo, hi) = contract_manifest::time_window(rules, now);
    let lo = lo.map_or(i64::MIN / 2, |lo| lo + 60);
    let hi = hi.map_or(i64::MAX / 2, |hi| hi - 60);
    (lo, hi.max(lo))
}

impl Iterator for Generator<'_> {
    type Item = SynthEvent;

    fn next(&mut self) -> Option<SynthEvent> {
        Some(self.next_event())
    }
}

/// Events of several versions of one contract (a live game's builds, #20), each drawn from its
/// version's generator with the given share.
pub struct Mixed<'c> {
    generators: Vec<Generator<'c>>,
    shares: rand::distr::weighted::WeightedIndex<f64>,
    rng: StdRng,
}

impl<'c> Mixed<'c> {
    /// `versions`: each version's manifest (the current one or a release's) and its weight
    /// (shares need not add up to 1). None unless some weight is above 0 (and none below).
    pub fn new(
        versions: &[(&'c Contract, f64)],
        seed: u64,
        invalid_ratio: f64,
        now: i64,
    ) -> Option<Self> {
        let shares =
            rand::distr::weighted::WeightedIndex::new(versions.iter().map(|(_, w)| *w)).ok()?;
        let generators = versions
            .iter()
            .enumerate()
            .map(|(i, (contract, _))| {
                let seed = seed.wrapping_add(i as u64 + 1);
                Generator::new(contract, seed, invalid_ratio, now)
            })
            .collect();
        Some(Mixed {
            generators,
            shares,
            rng: StdRng::seed_from_u64(seed),
        })
    }
}

impl Iterator for Mixed<'_> {
    type Item = SynthEvent;

    fn next(&mut self) -> Option<SynthEvent> {
        let pick = self.rng.sample(&self.shares);
        self.generators[pick].next()
    }
}
