//! Property tests (a short fuzzing run in every `cargo test`): the frame parser and the spool
//! reader never panic, whatever the input. Longer runs: `PROPTEST_CASES=200000 cargo test --test fuzz_props`.

use std::sync::Arc;

use market_streamer::counters::PipelineStats;
use market_streamer::indicators::{IndicatorEngine, IndicatorSettings};
use market_streamer::pipeline::FrameProcessor;
use market_streamer::spool::{Spool, record};
use proptest::prelude::*;

/// JSON-ish text built from frame-like pieces, so the parser sees near-valid input often.
fn frame_like() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("\"key\"".to_string()),
        Just("\"1\"".to_string()),
        Just("\"8\"".to_string()),
        Just("\"service\"".to_string()),
        Just("\"content\"".to_string()),
        Just("\"timestamp\"".to_string()),
        "\"[0-9]{1,3}\"".prop_map(|s| s),
    ];
    let value = prop_oneof![
        Just("\"AAPL\"".to_string()),
        Just("\"LEVELONE_EQUITIES\"".to_string()),
        Just("\"CHART_EQUITY\"".to_string()),
        Just("\"LEVELONE_OPTIONS\"".to_string()),
        Just("\"NaN\"".to_string()),
        any::<i64>().prop_map(|v| v.to_string()),
        any::<f64>()
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(|v| format!("{v:?}")),
        Just("null".to_string()),
        Just("true".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
    ];
    let item = prop::collection::vec((key, value), 0..8).prop_map(|kv| {
        format!(
            "{{{}}}",
            kv.iter()
                .map(|(k, v)| format!("{k}:{v}"))
                .collect::<Vec<_>>()
                .join(",")
        )
    });
    let items = prop::collection::vec(item, 0..5).prop_map(|v| v.join(","));
    (items, any::<u8>(), "[a-z\"{}\\[\\],:0-9]{0,20}").prop_map(|(items, shape, junk)| match shape % 4 {
        0 => format!(r#"{{"data":[{{"service":"LEVELONE_EQUITIES","timestamp":1,"content":[{items}]}}]}}"#),
        1 => format!(r#"{{"data":[{{"service":"CHART_EQUITY","content":[{items}]}}],"notify":[{items}]}}"#),
        2 => format!(r#"{{"response":[{items}],"data":[{{"service":"LEVELONE_OPTIONS","content":[{items}]}}]}}"#),
        _ => format!("{{{junk}{items}"),
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn the_parser_never_panics_on_arbitrary_text(text in "\\PC{0,300}") {
        let mut p = FrameProcessor::new(Arc::new(PipelineStats::default()), IndicatorEngine::new(IndicatorSettings::default()).expect("default periods"));
        let mut rows = Vec::new();
        p.process_text(&text, 0, &mut rows);
    }

    #[test]
    fn the_parser_never_panics_on_frame_like_input(text in frame_like()) {
        let mut p = FrameProcessor::new(Arc::new(PipelineStats::default()), IndicatorEngine::new(IndicatorSettings::default()).expect("default periods"));
        let mut rows = Vec::new();
        p.process_text(&text, 0, &mut rows);
        p.process_text(&text, 0, &mut rows); // merging into existing state too
    }

    #[test]
    fn the_spool_reader_never_panics_and_keeps_only_checked_records(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let (spans, valid) = record::scan(&bytes);
        prop_assert!(valid <= bytes.len());
        for s in spans {
            let _ = record::decode(&bytes, s);
        }
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("00000000000000000001.spool"), &bytes).expect("write");
        let (mut spool, rec) = Spool::open(dir.path(), 1 << 20).expect("open never fails on content");
        prop_assert!(rec.dropped_bytes as usize <= bytes.len());
        while let Some((id, _)) = spool.oldest().expect("read") {
            spool.commit(id).expect("commit");
        }
    }
}
