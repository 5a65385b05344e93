//! Schwab Streamer frame parser: raw server text in, typed responses, notices and updates out.
//!
//! A frame is a JSON object whose `response`, `notify` and `data` keys each hold an array;
//! one frame may carry several of them. `data` items of every service we store ([`Service`])
//! become [`Update`]s; other services are counted and ignored. A frame that is not a
//! JSON object is an error; an item with a bad type is skipped and counted in
//! [`Frame::skipped_items`], and the rest of the frame is still used. Nothing here panics.

pub mod fields;
pub mod nested;
mod sections;
pub mod values;

use std::borrow::Cow;

pub use fields::{
    ChartFields, EquityFields, FieldTable, ForexFields, FuturesChartFields, FuturesFields,
    FuturesOptionFields, OptionFields,
};
pub use nested::{
    AccountFields, BookFields, BookLevel, MarketMaker, ScreenerEntry, ScreenerFields,
};
use sections::{DataSection, RawSections, WireNotify, WireResponse};

/// The data services whose items we type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    LevelOneEquities,
    LevelOneOptions,
    ChartEquity,
    LevelOneFutures,
    LevelOneFuturesOptions,
    LevelOneForex,
    ChartFutures,
    NyseBook,
    NasdaqBook,
    OptionsBook,
    ScreenerEquity,
    ScreenerOption,
    AcctActivity,
}

impl Service {
    /// Every service, in the order subscriptions are sent.
    pub const ALL: [Self; 13] = [
        Self::LevelOneEquities,
        Self::LevelOneOptions,
        Self::ChartEquity,
        Self::LevelOneFutures,
        Self::LevelOneFuturesOptions,
        Self::LevelOneForex,
        Self::ChartFutures,
        Self::NyseBook,
        Self::NasdaqBook,
        Self::OptionsBook,
        Self::ScreenerEquity,
        Self::ScreenerOption,
        Self::AcctActivity,
    ];

    /// The service's name on the wire.
    pub const fn wire_name(self) -> &'static str {
        match self {
            Self::LevelOneEquities => "LEVELONE_EQUITIES",
            Self::LevelOneOptions => "LEVELONE_OPTIONS",
            Self::ChartEquity => "CHART_EQUITY",
            Self::LevelOneFutures => "LEVELONE_FUTURES",
            Self::LevelOneFuturesOptions => "LEVELONE_FUTURES_OPTIONS",
            Self::LevelOneForex => "LEVELONE_FOREX",
            Self::ChartFutures => "CHART_FUTURES",
            Self::NyseBook => "NYSE_BOOK",
            Self::NasdaqBook => "NASDAQ_BOOK",
            Self::OptionsBook => "OPTIONS_BOOK",
            Self::ScreenerEquity => "SCREENER_EQUITY",
            Self::ScreenerOption => "SCREENER_OPTION",
            Self::AcctActivity => "ACCT_ACTIVITY",
        }
    }

    /// Looks a wire name up; `None` for services we do not store.
    pub fn from_wire(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.wire_name() == name)
    }

    /// Position in [`Service::ALL`] (per-service counters).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// An acknowledgement of a client command (`response` item).
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub service: String,
    pub command: String,
    /// Echoed back as a string by the server, whatever type was sent.
    pub request_id: Option<String>,
    /// 0 and 26–29 mean success (see `schwab-protocol.md` §3.5).
    pub code: i64,
    pub message: String,
    pub timestamp_ms: Option<i64>,
}

/// A `notify` item.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// `{"heartbeat":"<ms>"}`: the server is alive.
    Heartbeat { at_ms: i64 },
    /// A server notice with a code, e.g. 12 (another login took the slot) or 30 (stop streaming).
    Code {
        service: String,
        code: i64,
        message: String,
    },
}

/// The typed fields of one data item.
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateBody {
    Equity(EquityFields),
    Option(OptionFields),
    Chart(ChartFields),
    Futures(FuturesFields),
    FuturesOption(FuturesOptionFields),
    Forex(ForexFields),
    FuturesChart(FuturesChartFields),
    /// A book; the service says which venue.
    Book(Service, BookFields),
    /// A screener; the service says equity or option.
    Screener(Service, ScreenerFields),
    Account(AccountFields),
}

impl UpdateBody {
    /// The service the item came from.
    pub fn service(&self) -> Service {
        match self {
            Self::Equity(_) => Service::LevelOneEquities,
            Self::Option(_) => Service::LevelOneOptions,
            Self::Chart(_) => Service::ChartEquity,
            Self::Futures(_) => Service::LevelOneFutures,
            Self::FuturesOption(_) => Service::LevelOneFuturesOptions,
            Self::Forex(_) => Service::LevelOneForex,
            Self::FuturesChart(_) => Service::ChartFutures,
            Self::Book(s, _) | Self::Screener(s, _) => *s,
            Self::Account(_) => Service::AcctActivity,
        }
    }
}

/// One data item: a symbol's delta (LEVELONE) or a completed candle (CHART_EQUITY).
#[derive(Debug, Clone, PartialEq)]
pub struct Update<'a> {
    /// The item's `key`, borrowed from the frame text when possible.
    pub symbol: Cow<'a, str>,
    /// The data item's `timestamp` (ms since the epoch), or the frame's receive time if absent.
    pub event_ms: i64,
    pub body: UpdateBody,
}

/// Everything a frame carried.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Frame<'a> {
    pub responses: Vec<Response>,
    pub notices: Vec<Notice>,
    pub updates: Vec<Update<'a>>,
    /// Items (or whole sections) that were malformed and skipped.
    pub skipped_items: u32,
    /// Data items of services we do not store.
    pub ignored_items: u32,
}

/// Why a whole frame was unusable.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame is not a JSON object: {0}")]
    NotJson(#[from] serde_json::Error),
}

/// Parses one server frame. `received_ms` stands in for a missing data `timestamp`.
pub fn parse_frame(text: &str, received_ms: i64) -> Result<Frame<'_>, FrameError> {
    let sections: RawSections<'_> = serde_json::from_str(text)?;
    let mut frame = Frame::default();

    if let Some(raw) = sections.response {
        for_each_item(raw, &mut frame.skipped_items, |item| {
            let r: WireResponse = serde_json::from_str(item.get())?;
            let content = r.content.unwrap_or_default();
            frame.responses.push(Response {
                service: r.service.unwrap_or_default(),
                command: r.command.unwrap_or_default(),
                request_id: r.requestid.map(|id| id.0.to_string()),
                code: content.code.map_or(-1, |c| c.0),
                message: content.msg.unwrap_or_default(),
                timestamp_ms: r.timestamp.map(|t| t.0),
            });
            Ok(())
        });
    }

    if let Some(raw) = sections.notify {
        for_each_item(raw, &mut frame.skipped_items, |item| {
            let n: WireNotify = serde_json::from_str(item.get())?;
            if let Some(hb) = n.heartbeat {
                frame.notices.push(Notice::Heartbeat { at_ms: hb.0 });
            } else if let Some(code) = n.content.as_ref().and_then(|c| c.code.as_ref()) {
                frame.notices.push(Notice::Code {
                    service: n.service.clone().unwrap_or_default(),
                    code: code.0,
                    message: n.content.and_then(|c| c.msg).unwrap_or_default(),
                });
            }
            Ok(())
        });
    }

    match sections.data {
        None => {}
        Some(DataSection::NotArray) => frame.skipped_items += 1,
        Some(DataSection::Elements(elements)) => {
            let mut bad_items = 0;
            for element in elements {
                let Some(d) = element else {
                    tracing::debug!("skipped malformed frame item");
                    frame.skipped_items += 1;
                    continue;
                };
                let event_ms = d.timestamp.map_or(received_ms, |t| t.0);
                let Some(service) = Service::from_wire(&d.service.0) else {
                    frame.ignored_items += d.content.len() as u32;
                    continue;
                };
                frame.updates.reserve(d.content.len());
                for raw_item in d.content {
                    match parse_update(service, raw_item, event_ms) {
                        Ok(u) => frame.updates.push(u),
                        Err(e) => {
                            tracing::debug!(service = service.wire_name(), error = %e, "skipped malformed item");
                            bad_items += 1;
                        }
                    }
                }
            }
            frame.skipped_items += bad_items;
        }
    }
    Ok(frame)
}

fn parse_update(
    service: Service,
    raw: &serde_json::value::RawValue,
    event_ms: i64,
) -> Result<Update<'_>, serde_json::Error> {
    fn read<'a, T: FieldTable>(
        raw: &'a serde_json::value::RawValue,
        event_ms: i64,
        wrap: fn(T) -> UpdateBody,
    ) -> Result<Update<'a>, serde_json::Error> {
        let item = sections::parse_item::<T>(raw)?;
        Ok(Update {
            symbol: item.key,
            event_ms,
            body: wrap(item.fields),
        })
    }
    match service {
        Service::LevelOneEquities => read(raw, event_ms, UpdateBody::Equity),
        Service::LevelOneOptions => read(raw, event_ms, UpdateBody::Option),
        Service::ChartEquity => read(raw, event_ms, UpdateBody::Chart),
        Service::LevelOneFutures => read(raw, event_ms, UpdateBody::Futures),
        Service::LevelOneFuturesOptions => read(raw, event_ms, UpdateBody::FuturesOption),
        Service::LevelOneForex => read(raw, event_ms, UpdateBody::Forex),
        Service::ChartFutures => read(raw, event_ms, UpdateBody::FuturesChart),
        Service::NyseBook => read(raw, event_ms, |b| UpdateBody::Book(Service::NyseBook, b)),
        Service::NasdaqBook => read(raw, event_ms, |b| UpdateBody::Book(Service::NasdaqBook, b)),
        Service::OptionsBook => read(raw, event_ms, |b| UpdateBody::Book(Service::OptionsBook, b)),
        Service::ScreenerEquity => read(raw, event_ms, |s| {
            UpdateBody::Screener(Service::ScreenerEquity, s)
        }),
        Service::ScreenerOption => read(raw, event_ms, |s| {
            UpdateBody::Screener(Service::ScreenerOption, s)
        }),
        Service::AcctActivity => read(raw, event_ms, UpdateBody::Account),
    }
}

/// Runs `f` on each item of a raw array section; a section that is not an array counts as
/// one skipped item, an item `f` rejects counts as one.
fn for_each_item<'a>(
    section: &'a serde_json::value::RawValue,
    skipped: &mut u32,
    mut f: impl FnMut(&'a serde_json::value::RawValue) -> Result<(), serde_json::Error>,
) {
    match sections::raw_items(section) {
        Ok(items) => {
            for item in items {
                if let Err(e) = f(item) {
                    tracing::debug!(error = %e, "skipped malformed frame item");
                    *skipped += 1;
                }
            }
        }
        Err(e) => {
            tracing::debug!(error = %e, "skipped a frame section that is not an array");
            *skipped += 1;
        }
    }
}

#[cfg(test)]
mod tests;
