//! Streamer requests (spec §3.1): the LOGIN, the subscriptions (field lists ascending, with
//! field 0) and LOGOUT, each a `{"requests":[…]}` frame with a unique `requestid`.

use std::fmt;

use serde_json::json;

use crate::schwab::preferences::StreamerInfo;
use crate::schwab::secret::Secret;
use crate::schwab::wire::Service;

/// One data subscription: a service, its keys and its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub service: Service,
    pub keys: Vec<String>,
    /// Ascending, with field 0.
    pub fields: Vec<u32>,
}

/// The data subscriptions to send, in the order given (the app wiring gives
/// LEVELONE_EQUITIES, LEVELONE_OPTIONS, CHART_EQUITY): services without keys are left out,
/// field lists get field 0, ascending, without duplicates.
pub fn subscriptions(wanted: impl IntoIterator<Item = Subscription>) -> Vec<Subscription> {
    wanted
        .into_iter()
        .filter(|sub| !sub.keys.is_empty())
        .map(|sub| Subscription {
            fields: with_field_zero(&sub.fields),
            ..sub
        })
        .collect()
}

/// Field list for a subscription: field 0 plus `fields`, ascending, without duplicates.
pub fn with_field_zero(fields: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(fields.len() + 1);
    out.push(0);
    out.extend_from_slice(fields);
    out.sort_unstable();
    out.dedup();
    out
}

/// A request ready to send. `Debug` hides the text (a LOGIN carries the access token).
#[derive(Clone)]
pub struct Request {
    pub request_id: String,
    pub service: &'static str,
    pub command: &'static str,
    /// Keys the request subscribes (0 for ADMIN requests).
    pub keys: usize,
    text: String,
}

impl Request {
    /// The JSON frame to send. Never log it.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("request_id", &self.request_id)
            .field("service", &self.service)
            .field("command", &self.command)
            .finish_non_exhaustive()
    }
}

/// Builds requests for one connection with increasing request ids ("1", "2", …).
#[derive(Debug)]
pub struct RequestBuilder<'a> {
    info: &'a StreamerInfo,
    next_id: u64,
}

impl<'a> RequestBuilder<'a> {
    /// A builder using the ids of `info`.
    pub fn new(info: &'a StreamerInfo) -> Self {
        Self { info, next_id: 1 }
    }

    fn build(
        &mut self,
        service: &'static str,
        command: &'static str,
        parameters: serde_json::Value,
    ) -> Request {
        let request_id = self.next_id.to_string();
        self.next_id += 1;
        let text = json!({
            "requests": [{
                "requestid": request_id,
                "service": service,
                "command": command,
                "SchwabClientCustomerId": self.info.customer_id,
                "SchwabClientCorrelId": self.info.correl_id,
                "parameters": parameters,
            }]
        })
        .to_string();
        Request {
            request_id,
            service,
            command,
            keys: 0,
            text,
        }
    }

    /// `ADMIN LOGIN` with the raw access token (no "Bearer").
    pub fn login(&mut self, access_token: &Secret) -> Request {
        let parameters = json!({
            "Authorization": access_token.expose(),
            "SchwabClientChannel": self.info.channel,
            "SchwabClientFunctionId": self.info.function_id,
        });
        self.build("ADMIN", "LOGIN", parameters)
    }

    /// `SUBS` of a subscription: keys comma-separated, fields ascending with 0.
    pub fn subscribe(&mut self, sub: &Subscription) -> Request {
        let parameters = json!({
            "keys": sub.keys.join(","),
            "fields": field_list(&sub.fields),
        });
        Request {
            keys: sub.keys.len(),
            ..self.build(sub.service.wire_name(), "SUBS", parameters)
        }
    }

    /// `ADD` of `keys` to a subscribed service (with its fields, as Schwab requires).
    pub fn add(&mut self, sub: &Subscription, keys: &[String]) -> Request {
        let parameters = json!({
            "keys": keys.join(","),
            "fields": field_list(&sub.fields),
        });
        Request {
            keys: keys.len(),
            ..self.build(sub.service.wire_name(), "ADD", parameters)
        }
    }

    /// `UNSUBS` of `keys` (the service's other keys stay subscribed).
    pub fn unsubscribe(&mut self, service: Service, keys: &[String]) -> Request {
        let parameters = json!({ "keys": keys.join(",") });
        Request {
            keys: keys.len(),
            ..self.build(service.wire_name(), "UNSUBS", parameters)
        }
    }

    /// `ADMIN LOGOUT`.
    pub fn logout(&mut self) -> Request {
        self.build("ADMIN", "LOGOUT", json!({}))
    }
}

/// `"0,1,2,…"`: field 0 added, ascending, no duplicates.
pub fn field_list(fields: &[u32]) -> String {
    with_field_zero(fields)
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Codes 0 and 26–29 mean success (spec §3.5).
pub fn is_success(code: i64) -> bool {
    code == 0 || (26..=29).contains(&code)
}

/// Response codes with a meaning for the session (spec §3.5).
pub mod codes {
    pub const LOGIN_DENIED: i64 = 3;
    pub const CLOSE_CONNECTION: i64 = 12;
    /// REACHED_SYMBOL_LIMIT: a SUBS/ADD went past Schwab's symbol limit (number undocumented).
    pub const SYMBOL_LIMIT: i64 = 19;
    pub const STOP_STREAMING: i64 = 30;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> StreamerInfo {
        StreamerInfo {
            socket_url: "wss://x/ws".into(),
            customer_id: "cust".into(),
            correl_id: "corr".into(),
            channel: "N9".into(),
            function_id: "APIAPP".into(),
        }
    }

    #[test]
    fn login_carries_the_raw_token_and_the_ids() {
        let info = info();
        let mut b = RequestBuilder::new(&info);
        let login = b.login(&Secret::new("I0.tok"));
        let v: serde_json::Value = serde_json::from_str(login.text()).expect("json");
        let r = &v["requests"][0];
        assert_eq!(r["requestid"], "1");
        assert_eq!(
            (r["service"].as_str(), r["command"].as_str()),
            (Some("ADMIN"), Some("LOGIN"))
        );
        assert_eq!(r["parameters"]["Authorization"], "I0.tok");
        assert_eq!(r["SchwabClientCustomerId"], "cust");
        assert_eq!(r["parameters"]["SchwabClientChannel"], "N9");
        assert!(!format!("{login:?}").contains("I0.tok"));
        assert_eq!(b.logout().request_id, "2");
    }

    #[test]
    fn subscriptions_have_ascending_fields_with_zero() {
        let info = info();
        let mut b = RequestBuilder::new(&info);
        let sub = Subscription {
            service: Service::ChartEquity,
            keys: vec!["AAPL".into(), "MSFT".into()],
            fields: vec![8, 1, 3],
        };
        let v: serde_json::Value = serde_json::from_str(b.subscribe(&sub).text()).expect("json");
        assert_eq!(v["requests"][0]["parameters"]["fields"], "0,1,3,8");
        assert_eq!(v["requests"][0]["parameters"]["keys"], "AAPL,MSFT");
        assert_eq!(v["requests"][0]["service"], "CHART_EQUITY");
    }

    #[test]
    fn subscriptions_leave_out_services_without_keys() {
        // The configured order is tested with the app wiring (`crate::settings`).
        let sub = |service, keys: &[&str], fields: &[u32]| Subscription {
            service,
            keys: keys.iter().map(|k| k.to_string()).collect(),
            fields: fields.to_vec(),
        };
        let subs = subscriptions([
            sub(Service::LevelOneEquities, &["AAPL"], &[3, 1]),
            sub(Service::LevelOneOptions, &[], &[2]),
            sub(Service::ChartEquity, &["AAPL"], &[0, 8, 8]),
        ]);
        let services: Vec<_> = subs.iter().map(|s| s.service).collect();
        assert_eq!(
            services,
            [Service::LevelOneEquities, Service::ChartEquity],
            "no options configured"
        );
        assert!(
            subs.iter()
                .all(|s| s.fields[0] == 0 && s.fields.windows(2).all(|w| w[0] < w[1]))
        );
        assert!((26..=29).all(is_success) && is_success(0) && !is_success(3));
    }
}
