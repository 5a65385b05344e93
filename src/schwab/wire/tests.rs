//! Parser tests: real captured shapes from `schwab-protocol.md`, and malformed input.

use super::*;

const NOW: i64 = 1_755_118_700_000;

#[test]
fn parses_a_login_response_with_string_requestid() {
    let f = parse_frame(
        r#"{"response":[{"service":"ADMIN","command":"LOGIN","requestid":"1","SchwabClientCorrelId":"60b4c643","timestamp":1755118704102,"content":{"code":0,"msg":"server=s3081dc7-2;status=NP"}}]}"#,
        NOW,
    )
    .expect("frame");
    assert_eq!(f.responses.len(), 1);
    let r = &f.responses[0];
    assert_eq!(
        (r.service.as_str(), r.command.as_str(), r.code),
        ("ADMIN", "LOGIN", 0)
    );
    assert_eq!(r.request_id.as_deref(), Some("1"));
    assert_eq!(r.message, "server=s3081dc7-2;status=NP");
    assert_eq!(r.timestamp_ms, Some(1755118704102));
}

#[test]
fn numeric_requestid_is_kept_as_text() {
    let f = parse_frame(r#"{"response":[{"service":"LEVELONE_EQUITIES","command":"SUBS","requestid":7,"content":{"code":0,"msg":"SUBS command succeeded"}}]}"#, NOW)
        .expect("frame");
    assert_eq!(f.responses[0].request_id.as_deref(), Some("7"));
}

#[test]
fn parses_heartbeat_and_server_codes() {
    let f = parse_frame(
        r#"{"notify":[{"heartbeat":"1755118704127"},{"service":"ADMIN","timestamp":1,"content":{"code":30,"msg":"Stop streaming due to empty subscription"}}]}"#,
        NOW,
    )
    .expect("frame");
    assert_eq!(
        f.notices[0],
        Notice::Heartbeat {
            at_ms: 1755118704127
        }
    );
    assert_eq!(
        f.notices[1],
        Notice::Code {
            service: "ADMIN".into(),
            code: 30,
            message: "Stop streaming due to empty subscription".into()
        }
    );
}

#[test]
fn parses_levelone_equities_delta_with_string_field_keys() {
    let f = parse_frame(
        r#"{"data":[{"service":"LEVELONE_EQUITIES","timestamp":1755118706289,"command":"SUBS","content":[{"key":"AAPL","3":233.31,"8":69783236}]}]}"#,
        NOW,
    )
    .expect("frame");
    assert_eq!(f.updates.len(), 1);
    let u = &f.updates[0];
    assert_eq!(u.symbol, "AAPL");
    assert_eq!(u.event_ms, 1755118706289);
    let UpdateBody::Equity(q) = &u.body else {
        panic!("not an equity update: {u:?}")
    };
    assert_eq!(q.last, Some(233.31));
    assert_eq!(q.total_volume, Some(69783236));
    assert_eq!(q.bid, None, "a missing field stays unset");
    assert_eq!(q.count_set(), 2);
}

#[test]
fn snapshot_item_extra_keys_are_ignored_and_floats_become_integers() {
    let f = parse_frame(
        r#"{"data":[{"service":"LEVELONE_EQUITIES","timestamp":5,"command":"SUBS","content":[{"key":"MSFT","delayed":false,"assetMainType":"EQUITY","assetSubType":"COE","cusip":"594918104","1":420.5,"2":420.52,"3":420.51,"4":3,"5":2.0,"8":18235000.0,"10":425,"32":"Normal","51":1.5,"99":"future field"}]}]}"#,
        NOW,
    )
    .expect("frame");
    assert_eq!(f.skipped_items, 0);
    let UpdateBody::Equity(q) = &f.updates[0].body else {
        panic!("not equity")
    };
    assert_eq!(q.total_volume, Some(18_235_000));
    assert_eq!(q.ask_size, Some(2));
    assert_eq!(
        q.high,
        Some(425.0),
        "an int where a float is expected is fine"
    );
    assert_eq!(q.security_status.as_deref(), Some("Normal"));
}

#[test]
fn one_frame_may_carry_response_notify_and_data() {
    let f = parse_frame(
        r#"{"response":[{"service":"ADMIN","command":"LOGIN","requestid":"0","content":{"code":0,"msg":"ok"}}],
            "notify":[{"heartbeat":"10"}],
            "data":[{"service":"LEVELONE_EQUITIES","timestamp":9,"content":[{"key":"A","1":1.0}]},
                    {"service":"CHART_EQUITY","timestamp":9,"content":[{"seq":0,"key":"MSFT","1":779,"2":421.65,"3":421.79,"4":421.65,"5":421.755,"6":26.0,"7":1715903940000,"8":19859}]}]}"#,
        NOW,
    )
    .expect("frame");
    assert_eq!(
        (f.responses.len(), f.notices.len(), f.updates.len()),
        (1, 1, 2)
    );
}

#[test]
fn chart_equity_uses_the_real_wire_order() {
    let f = parse_frame(
        r#"{"data":[{"service":"CHART_EQUITY","timestamp":1715904000123,"command":"SUBS","content":[{"seq":0,"key":"MSFT","1":779,"2":421.65,"3":421.79,"4":421.65,"5":421.755,"6":26.0,"7":1715903940000,"8":19859}]}]}"#,
        NOW,
    )
    .expect("frame");
    let UpdateBody::Chart(c) = &f.updates[0].body else {
        panic!("not chart")
    };
    assert_eq!(c.sequence, Some(779));
    assert_eq!(
        (c.open, c.high, c.low, c.close),
        (Some(421.65), Some(421.79), Some(421.65), Some(421.755))
    );
    assert_eq!(c.volume, Some(26));
    assert_eq!(c.bar_start_ms, Some(1715903940000));
    assert_eq!(c.chart_day, Some(19859));
}

#[test]
fn options_parse_greeks_and_nan_strings() {
    let f = parse_frame(
        r#"{"data":[{"service":"LEVELONE_OPTIONS","timestamp":3,"content":[{"key":"GOOG  240517C00070000","delayed":false,"assetMainType":"OPTION","cusip":"","2":105.2,"3":106.0,"8":12,"9":340,"10":354.99,"20":70.0,"21":"C","22":"GOOG","28":0.99,"29":"NaN","35":175.5}]}]}"#,
        NOW,
    )
    .expect("frame");
    let UpdateBody::Option(o) = &f.updates[0].body else {
        panic!("not option")
    };
    assert_eq!(o.volatility, Some(354.99));
    assert_eq!(o.delta, Some(0.99));
    assert!(
        o.gamma.is_some_and(f64::is_nan),
        "\"NaN\" is read as NaN (stored as NULL)"
    );
    assert_eq!(o.contract_type.as_deref(), Some("C"));
}

#[test]
fn bad_items_are_skipped_and_counted_the_rest_is_used() {
    let f = parse_frame(
        r#"{"data":[{"service":"LEVELONE_EQUITIES","timestamp":1,"content":[
              {"key":5,"1":1.0},
              {"key":"OK1","1":1.0},
              {"key":"BAD","1":"not a number"},
              {"key":"BAD2","8":true},
              {"1":2.0},
              {"key":"","1":2.0},
              "not an object",
              {"key":"OK2","2":2.0}]}],
            "notify":[{"heartbeat":{"nested":1}},{"heartbeat":"12"}]}"#,
        NOW,
    )
    .expect("frame");
    let symbols: Vec<_> = f.updates.iter().map(|u| u.symbol.to_string()).collect();
    assert_eq!(symbols, ["OK1", "OK2"]);
    assert_eq!(f.skipped_items, 7);
    assert_eq!(f.notices, vec![Notice::Heartbeat { at_ms: 12 }]);
}

#[test]
fn unknown_services_and_keys_are_ignored_not_errors() {
    let f = parse_frame(
        r#"{"snapshot":[1,2],"data":[{"service":"FOREX_BOOK","timestamp":1,"content":[{"key":"X","1":1}]},{"service":"LEVELONE_EQUITIES","timestamp":1,"content":[{"key":"Y","3":2.5,"77":[1,2,3]}]}]}"#,
        NOW,
    )
    .expect("frame");
    assert_eq!(f.skipped_items, 0);
    assert_eq!(f.ignored_items, 1);
    assert_eq!(f.updates.len(), 1);
}

#[test]
fn a_data_section_that_is_not_an_array_is_skipped_but_responses_survive() {
    let f = parse_frame(r#"{"data":{"oops":1},"response":[{"service":"ADMIN","command":"LOGIN","content":{"code":3,"msg":"Login Denied."}}]}"#, NOW)
        .expect("frame");
    assert_eq!(f.skipped_items, 1);
    assert_eq!(f.responses[0].code, 3);
}

#[test]
fn missing_data_timestamp_falls_back_to_receive_time() {
    let f = parse_frame(
        r#"{"data":[{"service":"LEVELONE_EQUITIES","content":[{"key":"A","1":1}]}]}"#,
        NOW,
    )
    .expect("frame");
    assert_eq!(f.updates[0].event_ms, NOW);
}

#[test]
fn escaped_symbols_are_decoded() {
    let f = parse_frame(r#"{"data":[{"service":"LEVELONE_EQUITIES","timestamp":1,"content":[{"key":"BRK\u002EB","1":1}]}]}"#, NOW).expect("frame");
    assert_eq!(f.updates[0].symbol, "BRK.B");
}

#[test]
fn non_json_and_non_objects_are_errors_never_panics() {
    for text in [
        "",
        "not json",
        "[1,2]",
        "42",
        "{\"data\":[",
        "null",
        "\u{0}",
    ] {
        assert!(
            parse_frame(text, NOW).is_err(),
            "{text:?} should be rejected"
        );
    }
}

/// The `data` handling as it was before the section was read in one pass (raw section, then
/// raw elements, then each element), kept to prove the single-pass reader gives the same
/// updates and counts.
mod before_single_pass {
    use std::fmt;
    use std::marker::PhantomData;

    use serde::Deserialize;
    use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
    use serde_json::value::RawValue;

    use super::super::sections::{CowStr, raw_items};
    use super::super::values::Read;
    use super::super::{Frame, Service, parse_update};

    #[derive(Default)]
    struct Sections<'a> {
        data: Option<&'a RawValue>,
    }

    impl<'de: 'a, 'a> Deserialize<'de> for Sections<'a> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V<'a>(PhantomData<&'a ()>);
            impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
                type Value = Sections<'a>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                    let mut out = Sections::default();
                    while let Some(key) = map.next_key::<CowStr<'de>>()? {
                        if key.0 == "data" {
                            out.data = Some(map.next_value()?);
                        } else {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                    Ok(out)
                }
            }
            d.deserialize_map(V(PhantomData))
        }
    }

    #[derive(Deserialize)]
    struct WireData<'a> {
        #[serde(borrow)]
        service: CowStr<'a>,
        timestamp: Option<Read<i64>>,
        #[serde(borrow)]
        content: Vec<&'a RawValue>,
    }

    /// The old parse of a frame's `data` section.
    pub fn parse(text: &str, received_ms: i64) -> Option<Frame<'_>> {
        let sections: Sections<'_> = serde_json::from_str(text).ok()?;
        let mut frame = Frame::default();
        let Some(raw) = sections.data else {
            return Some(frame);
        };
        let Ok(items) = raw_items(raw) else {
            frame.skipped_items += 1;
            return Some(frame);
        };
        for item in items {
            let Ok(d) = serde_json::from_str::<WireData<'_>>(item.get()) else {
                frame.skipped_items += 1;
                continue;
            };
            let event_ms = d.timestamp.map_or(received_ms, |t| t.0);
            let Some(service) = Service::from_wire(&d.service.0) else {
                frame.ignored_items += d.content.len() as u32;
                continue;
            };
            for raw_item in d.content {
                match parse_update(service, raw_item, event_ms) {
                    Ok(u) => frame.updates.push(u),
                    Err(_) => frame.skipped_items += 1,
                }
            }
        }
        Some(frame)
    }
}

mod single_pass_equivalence {
    use proptest::prelude::*;

    use super::*;

    fn one_of(options: &'static [&'static str]) -> impl Strategy<Value = String> + Clone {
        prop::sample::select(options).prop_map(str::to_string)
    }

    fn object(entries: Vec<(String, String)>) -> String {
        let body: Vec<String> = entries.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        format!("{{{}}}", body.join(","))
    }

    fn item() -> impl Strategy<Value = String> + Clone {
        let key = one_of(&[
            "\"key\"", "\"1\"", "\"2\"", "\"3\"", "\"7\"", "\"8\"", "\"32\"", "\"34\"", "\"x\"",
        ]);
        let value = prop_oneof![
            one_of(&[
                "\"AAPL\"",
                "\"BRK\\u002EB\"",
                "\"\"",
                "\"NaN\"",
                "\"1.5\"",
                "null",
                "true",
                "[]",
                "{}",
                "[1,{\"a\":2}]"
            ]),
            any::<i32>().prop_map(|v| v.to_string()),
            (-1.0e6..1.0e6f64).prop_map(|v| format!("{v:?}")),
        ];
        let symbol = one_of(&["\"AAPL\"", "\"MSFT\"", "\"BRK\\u002EB\""]);
        prop_oneof![
            // Mostly well-formed items: a key first, then fields.
            4 => (symbol, prop::collection::vec((key.clone(), value.clone()), 0..5)).prop_map(
                |(symbol, mut fields)| {
                    fields.insert(0, ("\"key\"".to_string(), symbol));
                    object(fields)
                }
            ),
            2 => prop::collection::vec((key, value), 0..6).prop_map(object),
            1 => one_of(&["5", "\"text\"", "null", "[]"]),
        ]
    }

    fn content() -> impl Strategy<Value = String> + Clone {
        prop_oneof![
            4 => prop::collection::vec(item(), 0..5).prop_map(|v| format!("[{}]", v.join(","))),
            1 => one_of(&["{}", "null", "3", "\"x\""]),
        ]
    }

    fn element() -> impl Strategy<Value = String> {
        let entry = prop_oneof![
            one_of(&[
                "\"LEVELONE_EQUITIES\"",
                "\"CHART_EQUITY\"",
                "\"LEVELONE_OPTIONS\"",
                "\"NASDAQ_BOOK\"",
                "5",
                "null",
                "[\"LEVELONE_EQUITIES\"]",
            ])
            .prop_map(|v| ("\"service\"".to_string(), v)),
            one_of(&["1765306800000", "\"2\"", "null", "\"x\"", "1.5", "[]", "{}"])
                .prop_map(|v| ("\"timestamp\"".to_string(), v)),
            content().prop_map(|v| ("\"content\"".to_string(), v)),
            one_of(&["\"SUBS\"", "[1,2]", "{\"a\":{}}"])
                .prop_map(|v| ("\"command\"".to_string(), v)),
        ];
        let good = (
            one_of(&[
                "\"LEVELONE_EQUITIES\"",
                "\"CHART_EQUITY\"",
                "\"LEVELONE_OPTIONS\"",
            ]),
            one_of(&["1765306800000", "\"1765306800123\"", "null"]),
            content(),
            0u8..3,
        )
            .prop_map(|(service, ts, content, order)| {
                let mut e = vec![
                    ("\"service\"".to_string(), service),
                    ("\"timestamp\"".to_string(), ts),
                    ("\"content\"".to_string(), content),
                ];
                e.rotate_left(usize::from(order));
                object(e)
            });
        prop_oneof![
            6 => good,
            4 => prop::collection::vec(entry, 0..5).prop_map(object),
            // Never a 3-element array: serde's derive used to read that as the struct's fields.
            1 => one_of(&["1", "\"s\"", "null", "[]", "[1]", "true"]),
        ]
    }

    fn frame() -> impl Strategy<Value = String> {
        let data = prop_oneof![
            6 => prop::collection::vec(element(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            1 => one_of(&["{}", "{\"a\":[1]}", "null", "7"]),
        ];
        (data.clone(), data, 0u8..4).prop_map(|(d1, d2, shape)| match shape {
            0 => format!("{{\"data\":{d1}}}"),
            1 => format!("{{\"snapshot\":[1,{{}}],\"data\":{d1},\"x\":null}}"),
            2 => format!("{{\"data\":{d1},\"data\":{d2}}}"),
            _ => format!("{{\"d\\u0061ta\":{d1}}}"),
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        #[test]
        fn the_single_pass_reader_gives_the_same_updates_and_counts(text in frame()) {
            let new = parse_frame(&text, NOW).ok();
            let old = before_single_pass::parse(&text, NOW);
            prop_assert_eq!(new.is_some(), old.is_some(), "{}", text);
            if let (Some(new), Some(old)) = (new, old) {
                // Compared as text: NaN fields ("NaN" strings) are equal there, not under `==`.
                prop_assert_eq!(format!("{:?}", new.updates), format!("{:?}", old.updates), "{}", text);
                prop_assert_eq!(new.skipped_items, old.skipped_items, "{}", text);
                prop_assert_eq!(new.ignored_items, old.ignored_items, "{}", text);
            }
        }
    }
}
