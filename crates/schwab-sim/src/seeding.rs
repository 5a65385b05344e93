//! Stable hashing and seeding helpers: every instrument gets its own RNG derived from the
//! simulator seed and its symbol, so its path does not depend on what else is subscribed.

use fastrand::Rng;

/// FNV-1a 64-bit hash (stable across Rust versions, unlike `DefaultHasher`).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// SplitMix64 finaliser: a cheap, well-mixing bijection on `u64`.
pub(crate) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Combines two values into one well-mixed hash.
pub(crate) fn mix(a: u64, b: u64) -> u64 {
    splitmix64(a ^ splitmix64(b))
}

/// Hash of a symbol alone (seed-independent reference data such as start prices).
pub(crate) fn symbol_hash(symbol: &str) -> u64 {
    splitmix64(fnv1a(symbol.as_bytes()))
}

/// A uniform value in `[0, 1)` taken from the top 53 bits of a hash.
pub(crate) fn unit(hash: u64) -> f64 {
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

/// The RNG of one instrument: `salt` separates instrument kinds that could share a name.
pub(crate) fn instrument_rng(seed: u64, symbol: &str, salt: u64) -> Rng {
    Rng::with_seed(mix(mix(seed, salt), fnv1a(symbol.as_bytes())))
}

/// One standard normal draw (Box–Muller).
pub(crate) fn standard_normal(rng: &mut Rng) -> f64 {
    let u1 = 1.0 - rng.f64(); // (0, 1], so ln is finite
    let u2 = rng.f64();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_stable() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(symbol_hash("AAPL"), symbol_hash("AAPL"));
        assert_ne!(symbol_hash("AAPL"), symbol_hash("MSFT"));
    }

    #[test]
    fn normal_draws_look_standard() {
        let mut rng = Rng::with_seed(5);
        let n = 20_000;
        let draws: Vec<f64> = (0..n).map(|_| standard_normal(&mut rng)).collect();
        let mean = draws.iter().sum::<f64>() / n as f64;
        let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.05, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "variance {var}");
        assert!(draws.iter().all(|x| x.is_finite()));
    }
}
