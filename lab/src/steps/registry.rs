//! The `steps!` macro: from one list of step kinds, everything that must
//! name each of them.

/// Generates, from `Variant(module::Type)` lines: the modules, the [`Step`]
/// enum and its dispatch, [`STEP_KEYS`], the raw form of a step before
/// validation ([`RawStepKind`]) and the registration of every kind's rhai
/// functions.
macro_rules! steps {
    ($( $(#[$doc:meta])* $variant:ident($module:ident :: $kind:ident), )*) => {
        $( mod $module; )*
        $( pub use $module::$kind; )*

        /// One step of a scenario.
        #[derive(Debug, Clone)]
        pub enum Step {
            $( $(#[$doc])* $variant($kind), )*
        }

        impl Step {
            /// The step's key as written in YAML (`boot`, `wait-serial`, ...).
            pub fn key(&self) -> &'static str {
                match self {
                    $( Step::$variant(_) => <$kind as StepKind>::SYNTAX.key, )*
                }
            }

            /// Whether the step needs a booted target.
            pub fn needs_target(&self) -> bool {
                match self {
                    $( Step::$variant(_) => <$kind as StepKind>::NEEDS_TARGET, )*
                }
            }

            /// What only QEMU offers the step, when it needs that.
            pub fn emulation_only(&self) -> Option<&'static str> {
                match self {
                    $( Step::$variant(_) => <$kind as StepKind>::EMULATION_ONLY, )*
                }
            }

            /// Checks the step against the matrix's variant names.
            pub(crate) fn check_variants(
                &self,
                variants: &[&str],
            ) -> Result<(), (String, &'static str)> {
                match self {
                    $( Step::$variant(step) => step.check_variants(variants), )*
                }
            }

            /// Runs the step against the run's context.
            pub(crate) async fn run(
                &self,
                ctx: &mut RunContext,
            ) -> Result<Option<Detail>, StepFailure> {
                match self {
                    $( Step::$variant(step) => step.run(ctx).await, )*
                }
            }
        }

        /// The step keys, in the order they are listed in hints.
        pub const STEP_KEYS: &[&str] = &[ $( <$kind as StepKind>::SYNTAX.key, )* ];

        /// Every step kind's key and example.
        const STEP_SYNTAX: &[crate::loader::StepSyntax] = &[ $( <$kind as StepKind>::SYNTAX, )* ];

        /// An example of the value of step `key`, for messages (`{}` for an
        /// unknown key).
        pub(crate) fn example(key: &str) -> &'static str {
            STEP_SYNTAX
                .iter()
                .find(|syntax| syntax.key == key)
                .map_or("{}", |syntax| syntax.example)
        }

        /// A known step's value as written, before validation (boxed: the
        /// larger forms would make every step as large as the largest).
        #[derive(Debug)]
        pub(crate) enum RawStepKind {
            $( $variant(Box<<$kind as StepKind>::Raw>), )*
        }

        impl RawStepKind {
            /// Reads the value of step `key` from `map`; `None` when no
            /// step has that key (the value is left unread).
            pub(crate) fn next_value<'de, A: serde::de::MapAccess<'de>>(
                key: &str,
                map: &mut A,
            ) -> Result<Option<Self>, A::Error> {
                $(
                    if key == <$kind as StepKind>::SYNTAX.key {
                        return map
                            .next_value()
                            .map(|raw| Some(RawStepKind::$variant(Box::new(raw))));
                    }
                )*
                Ok(None)
            }

            /// Validates the value into its step.
            pub(crate) fn load(self, v: &Validator<'_>) -> Result<Step, ScenarioError> {
                match self {
                    $( RawStepKind::$variant(raw) => <$kind as StepKind>::load(*raw, v).map(Step::$variant), )*
                }
            }
        }

        /// Registers every step kind's rhai functions.
        fn bind_step_kinds(engine: &mut Engine, bridge: &Bridge<RunContext>) {
            $( <$kind as StepKind>::bind(engine, bridge); )*
        }
    };
}
