//! The records of the stateless pipeline (streams_bench, web_bench): JSON purchases in,
//! priced records out, and the deterministic input.

use serde::{Deserialize, Serialize};

/// An input record, as Faust's `class Purchase(faust.Record)`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Purchase {
    /// The buyer, also the record's key.
    pub username: String,
    /// One of [`CURRENCIES`].
    pub currency: String,
    /// 0..=19: about half are kept by the pipeline's `amount >= 10`.
    pub amount: u32,
    /// Padding to about 100 bytes of JSON.
    pub note: String,
}

/// An output record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Priced {
    /// The buyer.
    pub username: String,
    /// The purchase's currency.
    pub currency: String,
    /// The amount times 100.
    pub amount_cents: u64,
}

/// The currencies purchases are in.
pub const CURRENCIES: [&str; 4] = ["EUR", "USD", "GBP", "JPY"];

/// The `i`th purchase: deterministic, so every run reads the same input.
pub fn purchase(i: u64) -> Purchase {
    // A 64-bit mix (splitmix64's finaliser) for amounts and users that look random.
    let mut x = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    Purchase {
        username: format!("user-{}", x % 1000),
        currency: CURRENCIES[((x >> 20) % 4) as usize].to_owned(),
        amount: ((x >> 32) % 20) as u32,
        note: "gift card, paid online, delivered by mail".to_owned(),
    }
}
