//! The keys each service subscribed: a data item for any other key (of that service) is
//! ignored before it is merged, so per-symbol state (merged quotes, indicators, book slots,
//! the live page) exists only for subscribed keys and memory stays bounded whatever arrives.
//!
//! Keys are compared exactly, as Schwab echoes them (`AAPL`, `AAPL  251219C00230000`,
//! `NASDAQ_VOLUME_5`, ACCT_ACTIVITY's client string `Account Activity`). The set can change
//! while streaming ([`SubscribedKeys::add`], [`SubscribedKeys::remove`]) for a later
//! ADD/UNSUBS. [`SubscribedKeys::any`] accepts every key: `replay` (no subscriptions are known
//! ahead), the benchmark and tests that build a processor directly.

use std::collections::HashSet;

use crate::counters::SERVICES;
use crate::schwab::session::protocol::Subscription;
use crate::schwab::wire::Service;

/// Subscribed keys per service, or every key.
#[derive(Debug, Clone, Default)]
pub struct SubscribedKeys {
    /// `None`: every key of every service is accepted.
    by_service: Option<Box<[HashSet<Box<str>>; SERVICES]>>,
}

impl SubscribedKeys {
    /// Accepts every key (nothing is known about the subscriptions).
    pub fn any() -> Self {
        Self::default()
    }

    /// Exactly the keys of `subscriptions` (a service without one accepts none).
    pub fn of(subscriptions: &[Subscription]) -> Self {
        let mut keys = Self {
            by_service: Some(Box::new(std::array::from_fn(|_| HashSet::new()))),
        };
        for sub in subscriptions {
            keys.add(sub.service, &sub.keys);
        }
        keys
    }

    /// True when every key is accepted.
    pub fn accepts_any(&self) -> bool {
        self.by_service.is_none()
    }

    /// True when items of `service` for `key` are wanted.
    pub fn contains(&self, service: Service, key: &str) -> bool {
        self.by_service
            .as_ref()
            .is_none_or(|sets| sets[service.index()].contains(key))
    }

    /// Subscribed keys of `service` (`None`: every key is accepted).
    pub fn count(&self, service: Service) -> Option<usize> {
        self.by_service
            .as_ref()
            .map(|sets| sets[service.index()].len())
    }

    /// Adds `keys` to `service` (an ADD or SUBS while streaming); no-op when every key is
    /// accepted already.
    pub fn add(&mut self, service: Service, keys: &[String]) {
        if let Some(sets) = &mut self.by_service {
            sets[service.index()].extend(keys.iter().map(|k| Box::from(k.as_str())));
        }
    }

    /// Removes `keys` from `service` (an UNSUBS); no-op when every key is accepted. Their
    /// items are ignored from then on (the processor drops their state:
    /// `FrameProcessor::remove_keys`).
    pub fn remove(&mut self, service: Service, keys: &[String]) {
        if let Some(sets) = &mut self.by_service {
            for key in keys {
                sets[service.index()].remove(key.as_str());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(service: Service, keys: &[&str]) -> Subscription {
        Subscription {
            service,
            keys: keys.iter().map(|k| k.to_string()).collect(),
            fields: vec![0],
        }
    }

    #[test]
    fn only_the_subscribed_keys_of_each_service_are_accepted_exactly() {
        let keys = SubscribedKeys::of(&[
            sub(Service::LevelOneEquities, &["AAPL", "MSFT"]),
            sub(Service::LevelOneOptions, &["AAPL  251219C00230000"]),
            sub(Service::ScreenerEquity, &["NASDAQ_VOLUME_5"]),
            sub(Service::AcctActivity, &["Account Activity"]),
        ]);
        assert!(keys.contains(Service::LevelOneEquities, "AAPL"));
        assert!(!keys.contains(Service::LevelOneEquities, "aapl"), "exact");
        assert!(!keys.contains(Service::LevelOneEquities, "NVDA"));
        assert!(!keys.contains(Service::ChartEquity, "AAPL"), "per service");
        assert!(keys.contains(Service::LevelOneOptions, "AAPL  251219C00230000"));
        assert!(!keys.contains(Service::LevelOneOptions, "AAPL 251219C00230000"));
        assert!(keys.contains(Service::ScreenerEquity, "NASDAQ_VOLUME_5"));
        assert!(keys.contains(Service::AcctActivity, "Account Activity"));
        assert!(!keys.contains(Service::AcctActivity, "ACCOUNT ACTIVITY"));
        assert_eq!(keys.count(Service::LevelOneEquities), Some(2));
        assert!(!keys.accepts_any());
    }

    #[test]
    fn keys_can_be_added_and_removed_while_streaming_and_any_accepts_all() {
        let mut keys = SubscribedKeys::of(&[sub(Service::LevelOneEquities, &["AAPL"])]);
        keys.add(Service::LevelOneEquities, &["NVDA".into()]);
        keys.remove(Service::LevelOneEquities, &["AAPL".into()]);
        assert!(keys.contains(Service::LevelOneEquities, "NVDA"));
        assert!(!keys.contains(Service::LevelOneEquities, "AAPL"));
        let any = SubscribedKeys::any();
        assert!(any.accepts_any());
        assert!(any.contains(Service::ChartFutures, "/ES"));
        assert_eq!(any.count(Service::ChartFutures), None);
    }
}
