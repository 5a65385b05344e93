//! Black–Scholes prices and greeks (no dividends), in the units of the LEVELONE_OPTIONS feed:
//! theta per calendar day, vega and rho per one percentage point.

/// Price and sensitivities of one option.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Greeks {
    /// Theoretical value (field 34).
    pub price: f64,
    /// Field 28.
    pub delta: f64,
    /// Field 29.
    pub gamma: f64,
    /// Field 30, per day.
    pub theta: f64,
    /// Field 31, per 1 % of volatility.
    pub vega: f64,
    /// Field 32, per 1 % of rate.
    pub rho: f64,
}

/// Inputs of one valuation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Valuation {
    /// True for a call.
    pub is_call: bool,
    /// Underlying price.
    pub spot: f64,
    /// Strike.
    pub strike: f64,
    /// Time to expiry in years (0 or less means expired: intrinsic value only).
    pub years: f64,
    /// Risk-free rate (0.04 = 4 %).
    pub rate: f64,
    /// Volatility (0.30 = 30 %).
    pub volatility: f64,
}

/// Standard normal density.
fn pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Standard normal distribution function (complementary error function of Numerical Recipes,
/// relative error below 1.2e-7).
pub(crate) fn cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    if x >= 0.0 {
        1.0 - 0.5 * erfc
    } else {
        0.5 * erfc
    }
}

/// Values an option. Degenerate inputs (expired, zero volatility, non-positive prices) give
/// the discounted intrinsic value with step-function delta and zero other greeks.
pub(crate) fn value(v: Valuation) -> Greeks {
    let sign = if v.is_call { 1.0 } else { -1.0 };
    let degenerate = !(v.years > 0.0 && v.volatility > 0.0 && v.spot > 0.0 && v.strike > 0.0);
    if degenerate {
        let intrinsic = (sign * (v.spot - v.strike)).max(0.0);
        return Greeks {
            price: intrinsic,
            delta: if intrinsic > 0.0 { sign } else { 0.0 },
            gamma: 0.0,
            theta: 0.0,
            vega: 0.0,
            rho: 0.0,
        };
    }
    let sqrt_t = v.years.sqrt();
    let vol_t = v.volatility * sqrt_t;
    let d1 =
        ((v.spot / v.strike).ln() + (v.rate + 0.5 * v.volatility * v.volatility) * v.years) / vol_t;
    let d2 = d1 - vol_t;
    let discount = (-v.rate * v.years).exp();
    let price = sign * (v.spot * cdf(sign * d1) - v.strike * discount * cdf(sign * d2));
    let delta = if v.is_call { cdf(d1) } else { cdf(d1) - 1.0 };
    let gamma = pdf(d1) / (v.spot * vol_t);
    let theta_year = -v.spot * pdf(d1) * v.volatility / (2.0 * sqrt_t)
        - sign * v.rate * v.strike * discount * cdf(sign * d2);
    let vega = v.spot * pdf(d1) * sqrt_t / 100.0;
    let rho = sign * v.strike * v.years * discount * cdf(sign * d2) / 100.0;
    Greeks {
        price: price.max(0.0),
        delta,
        gamma,
        theta: theta_year / 365.0,
        vega,
        rho,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn cdf_matches_known_values() {
        assert!(close(cdf(0.0), 0.5, 1e-7));
        assert!(close(cdf(1.0), 0.841_344_746, 1e-6));
        assert!(close(cdf(-1.96), 0.024_997_895, 1e-6));
    }

    #[test]
    fn textbook_example_and_put_call_parity() {
        // Hull: S=42, K=40, r=10 %, sigma=20 %, T=0.5 → call 4.76, put 0.81
        let base = Valuation {
            is_call: true,
            spot: 42.0,
            strike: 40.0,
            years: 0.5,
            rate: 0.1,
            volatility: 0.2,
        };
        let call = value(base);
        let put = value(Valuation {
            is_call: false,
            ..base
        });
        assert!(close(call.price, 4.76, 0.01), "{call:?}");
        assert!(close(put.price, 0.81, 0.01), "{put:?}");
        let parity = call.price - put.price - (42.0 - 40.0 * (-0.05f64).exp());
        assert!(close(parity, 0.0, 1e-6));
        assert!(close(call.delta - put.delta, 1.0, 1e-9));
        assert!(call.gamma > 0.0 && call.vega > 0.0 && call.theta < 0.0 && put.rho < 0.0);
    }

    #[test]
    fn expired_options_are_worth_intrinsic() {
        let v = value(Valuation {
            is_call: false,
            spot: 90.0,
            strike: 100.0,
            years: 0.0,
            rate: 0.04,
            volatility: 0.3,
        });
        assert_eq!((v.price, v.delta, v.gamma), (10.0, -1.0, 0.0));
    }
}
