//! `FaultInjection`: delays, aborts and bandwidth limits on requests to a destination.

use super::*;

/// `FaultInjection` spec.
pub type FaultInjectionSpec = ConnectionPolicy<FaultInjectionConf>;

/// `FaultInjection.conf`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct FaultInjectionConf {
    /// Delay a share of requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<FaultDelay>,
    /// Abort a share of requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort: Option<FaultAbort>,
    /// Limit response bandwidth for a share of requests.
    #[serde(alias = "response_bandwidth", skip_serializing_if = "Option::is_none")]
    pub response_bandwidth: Option<FaultBandwidth>,
}

/// A fixed delay.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultDelay {
    /// Share of requests, 0-100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percentage: Option<f64>,
    /// How long.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Duration>,
}

/// An abort with a status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct FaultAbort {
    /// Share of requests, 0-100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percentage: Option<f64>,
    /// The HTTP status to answer with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u32>,
}

/// A bandwidth limit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultBandwidth {
    /// Share of requests, 0-100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percentage: Option<f64>,
    /// `<n>kbps`, `<n>mbps` or `<n>gbps`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
}

impl FaultBandwidth {
    /// The limit in kilobits per second, if it parses.
    pub fn limit_kbps(&self) -> Option<u64> {
        let text = self.limit.as_deref()?.trim();
        let (number, scale) = if let Some(n) = text.strip_suffix("gbps") {
            (n, 1_000_000)
        } else if let Some(n) = text.strip_suffix("mbps") {
            (n, 1_000)
        } else {
            (text.strip_suffix("kbps")?, 1)
        };
        number.trim().parse::<u64>().ok().and_then(|n| n.checked_mul(scale))
    }
}

/// Status codes Go's `http.StatusText` knows, which Kuma accepts for aborts.
fn is_known_status(code: u32) -> bool {
    matches!(code,
        100..=103 | 200..=208 | 226 | 300..=305 | 307 | 308 | 400..=418 | 421..=426 | 428 | 429 | 431 | 451
        | 500..=508 | 510 | 511)
}

impl FaultInjectionSpec {
    /// Kuma's `FaultInjection` validation.
    pub fn validate(&self) -> Violations {
        let mut out = Violations::new();
        self.validate_selectors(
            &SelectorPolicy { sources: AT_LEAST_ONE, destinations: Destinations::HttpProtocol },
            &mut out,
        );
        let path = FieldPath::root().field("conf");
        let conf = self.conf.clone().unwrap_or_default();
        // Kuma treats an empty message (`delay: {}`) as absent here.
        let delay = conf.delay.filter(|d| *d != FaultDelay::default());
        let abort = conf.abort.filter(|a| *a != FaultAbort::default());
        let bandwidth = conf.response_bandwidth.filter(|b| *b != FaultBandwidth::default());
        if delay.is_none() && abort.is_none() && bandwidth.is_none() {
            out.add(&path, "must have at least one of the faults configured");
        }
        if let Some(d) = delay {
            let p = path.field("delay");
            percentage(&p, d.percentage, &mut out);
            match d.value {
                None => out.add(p.field("value"), "cannot be empty"),
                Some(v) if !v.is_positive() => out.add_extra(p.field("value"), "must be greater than 0s"),
                Some(_) => {}
            }
        }
        if let Some(a) = abort {
            let p = path.field("abort");
            percentage(&p, a.percentage, &mut out);
            match a.http_status {
                None => out.add(p.field("httpStatus"), "cannot be empty"),
                Some(code) if !is_known_status(code) => out.add(p.field("httpStatus"), "http status code is incorrect"),
                // Envoy aborts only with 200-599.
                Some(code) if code < 200 => out
                    .add_extra(p.field("httpStatus"), "must be in the range [200, 600) (Envoy cannot abort with 1xx)"),
                Some(_) => {}
            }
        }
        if let Some(b) = bandwidth {
            let p = path.field("responseBandwidth");
            percentage(&p, b.percentage, &mut out);
            match &b.limit {
                None => out.add(p.field("limit"), "cannot be empty"),
                Some(_) => match b.limit_kbps() {
                    None => out.add(p.field("limit"), "has to be in kbps/mbps/gbps units"),
                    Some(0) => out.add_extra(p.field("limit"), "must be at least 1kbps"),
                    Some(_) => {}
                },
            }
        }
        out
    }
}
