//! How a counter is described once. [`described!`] declares a struct of
//! the daemon's reading together with what each field is: its doc comment
//! is its meaning, and a marker says whether it is a label, a metric
//! (with its Prometheus name, type and fixed labels), the `-s` line it is
//! printed on, or a nested part. From that one declaration come the
//! `--json` document (serde, field names as keys), the Prometheus
//! exposition ([`Walk`]), and the tables of docs/metrics.md and
//! docs/json.md (`docgen`, through [`Field`]).
//!
//! This file and `model.rs` depend on nothing but serde, so `docgen`
//! includes them as they are.

/// Prometheus metric type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// A metric a field feeds.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// Without the `conntrackd_` prefix.
    pub name: &'static str,
    pub kind: Kind,
    /// Labels with a fixed value that set this field's sample apart from
    /// its siblings' in the same family (`reason="version"`).
    pub fixed: &'static [(&'static str, &'static str)],
    /// The family's HELP text; empty to use the field's meaning (fields
    /// sharing a family give it once, on the first).
    pub help: &'static str,
}

/// What a field of a reading is.
#[derive(Debug, Clone, Copy)]
#[allow(dead_code, reason = "read by docgen, which includes this file")]
pub enum What {
    /// Not exported as a metric (`--json` only).
    Plain,
    /// A label of every metric of this struct (and of the structs in it).
    Label(&'static str),
    /// A label of an information metric: value 1, labelled with every
    /// `Info` field of the struct naming the same metric.
    Info {
        metric: &'static str,
        label: &'static str,
        /// The metric's HELP text (given on its first label).
        help: &'static str,
    },
    Metric(Metric),
    /// A map from a label's value to a number: one sample per entry.
    Map {
        metric: Metric,
        label: &'static str,
    },
    /// A struct (or `Option` of one, or `Vec` of them: one per row).
    Nested(&'static [Field]),
}

/// One field, as `docgen` and the tests see it.
#[derive(Debug, Clone, Copy)]
#[allow(dead_code, reason = "read by docgen, which includes this file")]
pub struct Field {
    /// The key in `--json`.
    pub json: &'static str,
    /// The Rust type, for the JSON type column.
    pub ty: &'static str,
    /// What it means (the doc comment).
    pub doc: &'static str,
    pub what: What,
    /// The `-s` report and line it is printed on (`-s runtime: events
    /// received`); empty if none.
    pub shown: &'static str,
}

/// A label name and value.
pub type Label = (&'static str, String);

/// Receives a reading's samples in order.
pub trait Visitor {
    /// A sample of `metric` (its meaning `doc`, for an empty HELP).
    fn sample(&mut self, metric: &Metric, doc: &'static str, labels: &[Label], value: f64);
    /// One label of the information metric `metric` (its HELP `help`,
    /// empty but on the first label).
    fn info(&mut self, metric: &'static str, help: &'static str, labels: &[Label], label: Label);
}

/// A struct of the reading that can list its samples.
pub trait Walk {
    /// The struct's own labels (its `label` fields).
    fn labels(&self, labels: &mut Vec<Label>);
    /// Every sample of the struct and of the structs in it, with `labels`
    /// (the enclosing rows' labels) and the struct's own.
    fn walk(&self, visitor: &mut dyn Visitor, labels: &mut Vec<Label>);
}

/// A number a metric can take (`None`: no sample).
pub trait Value {
    fn value(&self) -> Option<f64>;
}

impl Value for u64 {
    fn value(&self) -> Option<f64> {
        Some(*self as f64)
    }
}

impl Value for f64 {
    fn value(&self) -> Option<f64> {
        Some(*self)
    }
}

impl Value for bool {
    fn value(&self) -> Option<f64> {
        Some(f64::from(u8::from(*self)))
    }
}

impl<T: Value> Value for Option<T> {
    fn value(&self) -> Option<f64> {
        self.as_ref().and_then(Value::value)
    }
}

/// The parts of a reading a struct can hold: walked if present.
pub trait Part {
    fn walk_part(&self, visitor: &mut dyn Visitor, labels: &mut Vec<Label>);
}

impl<T: Walk> Part for T {
    fn walk_part(&self, visitor: &mut dyn Visitor, labels: &mut Vec<Label>) {
        self.walk(visitor, labels);
    }
}

impl<T: Walk> Part for Option<T> {
    fn walk_part(&self, visitor: &mut dyn Visitor, labels: &mut Vec<Label>) {
        if let Some(part) = self {
            part.walk(visitor, labels);
        }
    }
}

impl<T: Walk> Part for Vec<T> {
    fn walk_part(&self, visitor: &mut dyn Visitor, labels: &mut Vec<Label>) {
        for row in self {
            row.walk(visitor, labels);
        }
    }
}

/// Declares a struct of the reading; see the module documentation. Each
/// field is `MARKER(ARGS) name: Type`, where MARKER is one of
///
/// - `plain` — `--json` only;
/// - `label("name")` — a label of the struct's metrics;
/// - `info("metric", "label")` — a label of an information metric;
/// - `counter("name", FIXED..., help = "...")`, `gauge(...)` — a metric;
///   FIXED are `label = "value"` pairs, `help` is optional;
/// - `map("name", counter|gauge, "label")` — one sample per map entry;
/// - `part(Type)` — a struct, `Option` or `Vec` of structs of type Type;
///
/// after its doc comment and an optional `#[shown = "-s report: line"]`.
#[macro_export]
macro_rules! described {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[doc = $doc:literal])*
                $(#[shown = $shown:literal])?
                $marker:ident $( ( $($args:tt)* ) )? $field:ident : $ty:ty
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, serde::Serialize)]
        pub struct $name {
            $(
                $(#[doc = $doc])*
                pub $field: $ty,
            )*
        }

        impl $name {
            /// Every field, described.
            #[allow(dead_code, reason = "read by docgen, which includes this file")]
            pub const FIELDS: &'static [$crate::counters::describe::Field] = &[
                $(
                    $crate::counters::describe::Field {
                        json: stringify!($field),
                        ty: stringify!($ty),
                        doc: concat!($($doc, "\n",)* ""),
                        what: $crate::described!(@what $marker $( ( $($args)* ) )?),
                        shown: concat!($($shown,)? ""),
                    },
                )*
            ];

            /// The number in the field whose `--json` key is `json`, if it
            /// is a metric and has a value.
            #[allow(dead_code)]
            pub fn number(&self, json: &str) -> Option<f64> {
                $(
                    if json == stringify!($field) {
                        return $crate::described!(@number self.$field, $marker);
                    }
                )*
                None
            }
        }

        impl $crate::counters::describe::Walk for $name {
            #[allow(unused_variables)]
            fn labels(&self, labels: &mut Vec<$crate::counters::describe::Label>) {
                $( $crate::described!(@label self.$field, labels, $marker $( ( $($args)* ) )?); )*
            }

            #[allow(unused_variables)]
            fn walk(
                &self,
                visitor: &mut dyn $crate::counters::describe::Visitor,
                labels: &mut Vec<$crate::counters::describe::Label>,
            ) {
                let outer = labels.len();
                $crate::counters::describe::Walk::labels(self, labels);
                $(
                    $crate::described!(
                        @walk self.$field, visitor, labels,
                        concat!($($doc, "\n",)* ""),
                        $marker $( ( $($args)* ) )?
                    );
                )*
                labels.truncate(outer);
            }
        }
    };

    // ---- what a marker is ----
    (@what plain) => { $crate::counters::describe::What::Plain };
    (@what label ($label:literal)) => { $crate::counters::describe::What::Label($label) };
    (@what info ($metric:literal, $label:literal $(, help = $help:literal)?)) => {
        $crate::counters::describe::What::Info {
            metric: $metric,
            label: $label,
            help: concat!($($help,)? ""),
        }
    };
    (@what counter ($($args:tt)*)) => {
        $crate::counters::describe::What::Metric($crate::described!(@metric Counter; $($args)*))
    };
    (@what gauge ($($args:tt)*)) => {
        $crate::counters::describe::What::Metric($crate::described!(@metric Gauge; $($args)*))
    };
    (@what map ($name:literal, $kind:ident, $label:literal $(, help = $help:literal)?)) => {
        $crate::counters::describe::What::Map {
            metric: $crate::counters::describe::Metric {
                name: $name,
                kind: $crate::described!(@kind $kind),
                fixed: &[],
                help: concat!($($help,)? ""),
            },
            label: $label,
        }
    };
    (@what part ($part:ty)) => { $crate::counters::describe::What::Nested(<$part>::FIELDS) };

    (@kind counter) => { $crate::counters::describe::Kind::Counter };
    (@kind gauge) => { $crate::counters::describe::Kind::Gauge };

    (@metric $kind:ident; $name:literal $(, $($rest:tt)*)?) => {
        $crate::described!(@metric_fixed $kind; $name; []; $($($rest)*)?)
    };
    // Fixed labels `key = "value"`, then an optional `help = "..."`.
    (@metric_fixed $kind:ident; $name:literal; [$($fixed:tt)*]; help = $help:literal $(,)?) => {
        $crate::counters::describe::Metric {
            name: $name,
            kind: $crate::counters::describe::Kind::$kind,
            fixed: &[$($fixed)*],
            help: $help,
        }
    };
    (@metric_fixed $kind:ident; $name:literal; [$($fixed:tt)*]; $key:ident = $value:literal $(, $($rest:tt)*)?) => {
        $crate::described!(@metric_fixed $kind; $name; [$($fixed)* (stringify!($key), $value),]; $($($rest)*)?)
    };
    (@metric_fixed $kind:ident; $name:literal; [$($fixed:tt)*];) => {
        $crate::counters::describe::Metric {
            name: $name,
            kind: $crate::counters::describe::Kind::$kind,
            fixed: &[$($fixed)*],
            help: "",
        }
    };

    // ---- a field's number ----
    (@number $value:expr, counter) => { $crate::counters::describe::Value::value(&$value) };
    (@number $value:expr, gauge) => { $crate::counters::describe::Value::value(&$value) };
    (@number $value:expr, $other:ident) => { None };

    // ---- a field's labels ----
    (@label $value:expr, $labels:ident, label ($label:literal)) => {
        $labels.push(($label, $value.to_string()))
    };
    (@label $value:expr, $labels:ident, $($other:tt)*) => {};

    // ---- a field's samples ----
    (@walk $value:expr, $visitor:ident, $labels:ident, $doc:expr, counter ($($args:tt)*)) => {
        $crate::described!(@sample $value, $visitor, $labels, $doc, $crate::described!(@metric Counter; $($args)*))
    };
    (@walk $value:expr, $visitor:ident, $labels:ident, $doc:expr, gauge ($($args:tt)*)) => {
        $crate::described!(@sample $value, $visitor, $labels, $doc, $crate::described!(@metric Gauge; $($args)*))
    };
    (@walk $value:expr, $visitor:ident, $labels:ident, $doc:expr, info ($metric:literal, $label:literal $(, help = $help:literal)?)) => {
        $visitor.info($metric, concat!($($help,)? ""), $labels, ($label, $value.to_string()))
    };
    (@walk $value:expr, $visitor:ident, $labels:ident, $doc:expr, map ($($args:tt)*)) => {
        if let $crate::counters::describe::What::Map { metric, label } =
            $crate::described!(@what map ($($args)*))
        {
            for (key, count) in &$value {
                $labels.push((label, key.to_string()));
                if let Some(v) = $crate::counters::describe::Value::value(count) {
                    $visitor.sample(&metric, $doc, $labels, v);
                }
                $labels.pop();
            }
        }
    };
    (@walk $value:expr, $visitor:ident, $labels:ident, $doc:expr, part ($part:ty)) => {
        $crate::counters::describe::Part::walk_part(&$value, $visitor, $labels)
    };
    (@walk $value:expr, $visitor:ident, $labels:ident, $doc:expr, $($other:tt)*) => {};

    (@sample $value:expr, $visitor:ident, $labels:ident, $doc:expr, $metric:expr) => {{
        let metric = $metric;
        if let Some(v) = $crate::counters::describe::Value::value(&$value) {
            let outer = $labels.len();
            $labels.extend(metric.fixed.iter().map(|&(k, v)| (k, v.to_string())));
            $visitor.sample(&metric, $doc, $labels, v);
            $labels.truncate(outer);
        }
    }};
}
