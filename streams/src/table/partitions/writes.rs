//! One change's own writes, until the change succeeds: a few per change as a rule (a windowed
//! update writes its windows and its clock), so a vector searched from its end, with a hash
//! index once it grows (expiring many windows in one change). A key holds its last write.

use std::collections::HashMap;

use bytes::Bytes;

use crate::table::pending::Overlay;

/// Beyond this many keys, a change's writes are found through a hash index.
const LINEAR: usize = 16;

/// A change's writes: each key's last write (`None`: delete), in first-write order.
#[derive(Debug, Default)]
pub(super) struct TxnWrites {
    list: Vec<(Bytes, Option<Bytes>)>,
    /// Key to its place in `list`, once `list` is longer than [`LINEAR`].
    index: Option<HashMap<Bytes, usize>>,
}

impl TxnWrites {
    fn position(&self, key: &[u8]) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(key).copied(),
            None => self.list.iter().rposition(|(k, _)| k[..] == *key),
        }
    }

    /// The change's write of `key`, if it wrote it.
    pub fn get(&self, key: &[u8]) -> Option<&Option<Bytes>> {
        self.position(key).map(|i| &self.list[i].1)
    }

    /// Records a write of `key`, replacing the change's earlier one.
    pub fn put(&mut self, key: Bytes, value: Option<Bytes>) {
        if let Some(i) = self.position(&key) {
            self.list[i].1 = value;
            return;
        }
        if let Some(index) = &mut self.index {
            index.insert(key.clone(), self.list.len());
        } else if self.list.len() == LINEAR {
            let mut index: HashMap<Bytes, usize> = self
                .list
                .iter()
                .enumerate()
                .map(|(i, (k, _))| (k.clone(), i))
                .collect();
            index.insert(key.clone(), self.list.len());
            self.index = Some(index);
        }
        self.list.push((key, value));
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The writes with keys in `bounds`, added to `overlay` (over what it holds).
    pub fn add_range_to(
        &self,
        bounds: (std::ops::Bound<&[u8]>, std::ops::Bound<&[u8]>),
        overlay: &mut Overlay,
    ) {
        use std::ops::RangeBounds;
        for (k, v) in &self.list {
            if RangeBounds::<[u8]>::contains(&bounds, &k[..]) {
                overlay.insert(k.clone(), v.clone());
            }
        }
    }

    /// The writes in key order (the order a change's writes always took).
    pub fn into_sorted(self) -> Vec<(Bytes, Option<Bytes>)> {
        let mut list = self.list;
        list.sort_unstable_by(|a, b| stores::key_order(&a.0, &b.0));
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_its_last_write_before_and_after_the_index() {
        let key = |i: usize| Bytes::from(format!("k{i:03}"));
        let mut writes = TxnWrites::default();
        for round in 0..2 {
            for i in (0..40).rev() {
                writes.put(key(i), Some(Bytes::from(format!("{round}"))));
                assert_eq!(
                    writes.get(&key(i)),
                    Some(&Some(Bytes::from(format!("{round}"))))
                );
            }
        }
        writes.put(key(3), None);
        assert_eq!(writes.get(&key(3)), Some(&None));
        assert_eq!(writes.get(b"absent"), None);
        let mut range = Overlay::new();
        let (from, to) = (key(2), key(5));
        writes.add_range_to(
            (
                std::ops::Bound::Included(&from[..]),
                std::ops::Bound::Excluded(&to[..]),
            ),
            &mut range,
        );
        assert_eq!(
            range.keys().cloned().collect::<Vec<_>>(),
            [key(2), key(3), key(4)]
        );
        let sorted = writes.into_sorted();
        assert_eq!(sorted.len(), 40, "one write per key");
        assert!(sorted.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(sorted[3], (key(3), None));
        assert_eq!(sorted[0].1, Some(Bytes::from("1")));
    }
}
