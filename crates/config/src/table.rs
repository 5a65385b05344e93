//! The table of variables and the macro that builds it together with the [`Config`](crate::Config)
//! struct and its parser, so a setting is added in one place (see `settings.rs`).

/// The part of the service a variable belongs to (the `Config` field that holds it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Section {
    /// `DATABASE_URL`.
    Database,
    /// Batching and draining of the database writer.
    Writer,
    /// The disk spool used while the database is down.
    Spool,
    /// What to stream.
    Symbols,
    /// How much of the order books is stored.
    Books,
    /// The watchlist table, applied while running.
    Watchlist,
    /// The Schwab session: credentials, token store, field sets, timings.
    Schwab,
    /// The simulated market.
    Simulator,
    /// Logs and the status line.
    Logging,
    /// Bars, indicator periods and warm start.
    Indicators,
    /// Supabase Realtime.
    Realtime,
    /// Retention, partitions and the database size budget.
    Retention,
    /// The `/health` and `/metrics` endpoint.
    Health,
    /// Read by the `health_check` binary only, never by the service.
    HealthCheck,
}

/// A variable's default as users see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultValue {
    /// The value that, set in `.env`, gives the default (`None`: the default is not a fixed
    /// value, e.g. it follows other settings; leave the variable unset or empty).
    pub value: Option<&'static str>,
    /// The default column of README's configuration table (markdown).
    pub shown: &'static str,
}

/// One row of the table: everything a user needs to know about one variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variable {
    /// The environment variable, e.g. `BATCH_SIZE`.
    pub name: &'static str,
    /// Where it belongs.
    pub section: Section,
    /// Its default.
    pub default: DefaultValue,
    /// The values allowed, as error messages say them.
    pub allowed: &'static str,
    /// What it does: the meaning column of README's configuration table (markdown).
    pub help: &'static str,
}

impl Variable {
    /// README's configuration table row for this variable.
    pub fn readme_row(&self) -> String {
        format!(
            "| `{}` | {} | {} |",
            self.name, self.default.shown, self.help
        )
    }
}

/// The variable called `name`, if the service or `health_check` reads it.
pub fn variable(name: &str) -> Option<&'static Variable> {
    crate::all_variables().find(|v| v.name == name)
}

/// Builds, from one list of sections and variables: one struct per section, [`Config`]
/// (one field per section), the [`VARIABLES`](crate::VARIABLES) table, and the parser that
/// reads every variable and collects every problem.
///
/// Each variable says its field, type, name, default (`value("...")`: the `.env` value of the
/// default, also shown in README as code; `shown("README text", "...")`: the same with other
/// README text; `unset("README text")`: the field's `Default`, to be completed by
/// `Config::resolve`), the allowed values, a parser `Fn(&str, &'static str) -> Result<T,
/// String>` (raw value, allowed text; the error follows the variable's name), and its help.
macro_rules! settings {
    (
        $(
            $(#[doc = $sdoc:literal])*
            $section:ident => $sfield:ident: $sty:ident {
                $(
                    $(#[doc = $doc:literal])*
                    $field:ident: $ty:ty = $name:literal {
                        default: $dkind:ident($($dargs:tt)*),
                        allowed: $allowed:expr,
                        parse: $parse:expr,
                        help: $help:expr $(,)?
                    }
                ),* $(,)?
            }
        ),* $(,)?
    ) => {
        $(
            $(#[doc = $sdoc])*
            #[derive(Debug, Clone, PartialEq)]
            pub struct $sty {
                $(
                    $(#[doc = $doc])*
                    #[doc = concat!("\n\nVariable: `", $name, "`.")]
                    pub $field: $ty,
                )*
            }
        )*

        /// The whole configuration, one field per section. Build it with
        /// [`Config::from_env`] or [`Config::from_lookup`]. `Debug` shows no secret.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Config {
            $(
                $(#[doc = $sdoc])*
                pub $sfield: $sty,
            )*
        }

        /// Every variable the service reads, in README order.
        pub static SERVICE_VARIABLES: &[$crate::table::Variable] = &[
            $($(
                $crate::table::Variable {
                    name: $name,
                    section: $crate::table::Section::$section,
                    default: settings!(@shown $dkind($($dargs)*)),
                    allowed: $allowed,
                    help: $help,
                },
            )*)*
        ];

        impl Config {
            /// Reads every variable through `get` (unset and empty are the same): the values,
            /// and one line per bad value. Cross-variable rules are in `Config::resolve`.
            pub(crate) fn parse_each(
                get: &impl Fn(&str) -> Option<String>,
                problems: &mut Vec<String>,
            ) -> Self {
                Self {
                    $(
                        $sfield: $sty {
                            $(
                                $field: {
                                    let parse = $parse;
                                    let fallback = || -> $ty { settings!(@default parse, $allowed, $dkind($($dargs)*)) };
                                    match get($name) {
                                        None => fallback(),
                                        Some(raw) => match parse(&raw, $allowed) {
                                            Ok(v) => v,
                                            Err(e) => {
                                                problems.push(format!("{}{}", $name, e));
                                                fallback()
                                            }
                                        },
                                    }
                                },
                            )*
                        },
                    )*
                }
            }
        }
    };
    (@shown value($v:literal)) => {
        $crate::table::DefaultValue { value: Some($v), shown: concat!("`", $v, "`") }
    };
    (@shown shown($s:literal, $v:literal)) => {
        $crate::table::DefaultValue { value: Some($v), shown: $s }
    };
    (@shown unset($s:literal)) => {
        $crate::table::DefaultValue { value: None, shown: $s }
    };
    (@default $parse:ident, $allowed:expr, value($v:literal)) => {
        $parse($v, $allowed).expect(concat!("the default ", $v, " is valid"))
    };
    (@default $parse:ident, $allowed:expr, shown($s:literal, $v:literal)) => {
        $parse($v, $allowed).expect("the default is valid")
    };
    (@default $parse:ident, $allowed:expr, unset($s:literal)) => {
        Default::default()
    };
}

pub(crate) use settings;
