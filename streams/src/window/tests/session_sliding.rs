//! Sliding and session windows on hand-picked events (the model checks them at random in
//! `props`).

use super::Millis;
use super::*;

fn sum(acc: &mut i64, other: i64) {
    *acc += other;
}

#[test]
fn a_sliding_window_folds_the_buckets_of_the_last_size_even_out_of_order() {
    let table = counts(1)
        .sliding(ms(10), sum)
        .grace(ms(30))
        .build()
        .unwrap();
    assert_eq!(add(&table, "a", 100, 1), Some(1));
    assert_eq!(add(&table, "a", 105, 2), Some(3));
    assert_eq!(add(&table, "a", 120, 4), Some(4));
    // Out of order, inside grace: its own window, and the later ones that hold it.
    assert_eq!(add(&table, "a", 98, 8), Some(8));
    assert_eq!(
        table.windows_ms("a", i64::MIN, i64::MAX).unwrap(),
        vec![
            (Window::ms(89, 99), 8),
            (Window::ms(91, 101), 9),
            (Window::ms(96, 106), 11),
            (Window::ms(111, 121), 4),
        ]
    );
    assert_eq!(table.at_ms(105).current("a").unwrap(), Some(11));
    assert_eq!(table.windows_ms("a", 91, 97).unwrap().len(), 2);
}

#[test]
fn sessions_grow_merge_and_close_a_gap_after_their_last_event() {
    let (table, closes) = recording(counts(1).session(ms(10), sum).grace(ms(30)));
    add(&table, "a", 100, 1);
    add(&table, "a", 105, 1);
    add(&table, "a", 130, 1);
    add(&table, "a", 120, 1);
    assert_eq!(
        table.windows_ms("a", i64::MIN, i64::MAX).unwrap(),
        vec![(Window::ms(100, 106), 2), (Window::ms(120, 131), 2)]
    );
    // Bridges both sessions: 112 is within 10 of 105 and of 120.
    assert_eq!(add(&table, "a", 112, 1), Some(5));
    assert_eq!(
        table.windows_ms("a", i64::MIN, i64::MAX).unwrap(),
        vec![(Window::ms(100, 131), 5)]
    );
    assert_eq!(table.at_ms(125).current("a").unwrap(), Some(5));
    // Closes at last event + 1 + gap + grace = 131 + 10 + 30.
    add(&table, "b", 170, 1);
    assert!(closes.lock().unwrap().is_empty());
    add(&table, "b", 171, 1);
    assert_eq!(
        *closes.lock().unwrap(),
        vec![("a".to_owned(), Window::ms(100, 131), 5)]
    );
    // A closed session is final: an event near it starts a new one.
    assert_eq!(add(&table, "a", 145, 1), Some(1));
}
