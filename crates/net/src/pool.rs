//! The sandbox address pool: an IPv4 CIDR cut into /30 blocks, one per
//! network slot. In block `n` the host side of the veth is `.1` (and the
//! sandbox's default gateway), the sandbox side `.2`; `.0` and `.3` are the
//! network and broadcast addresses and stay unused.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::error::NetError;

/// Prefix length of one sandbox's block.
pub const SLOT_PREFIX: u8 = 30;

/// The host end of the /30 whose sandbox end is `sandbox`.
pub fn host_end(sandbox: Ipv4Addr) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(sandbox) - 1)
}

/// An IPv4 pool such as `10.77.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressPool {
    base: u32,
    prefix: u8,
}

/// The two addresses of one sandbox's /30.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotAddrs {
    /// Host end of the veth; the sandbox's default gateway.
    pub host: Ipv4Addr,
    /// Sandbox end (`eth0` inside).
    pub sandbox: Ipv4Addr,
}

impl AddressPool {
    /// Number of /30 blocks in the pool.
    pub fn capacity(&self) -> u32 {
        1u32 << (SLOT_PREFIX - self.prefix)
    }

    /// Addresses for `slot`; fails when the slot is outside the pool.
    pub fn slot(&self, slot: u32) -> Result<SlotAddrs, NetError> {
        if slot >= self.capacity() {
            return Err(NetError::SlotOutOfRange {
                slot,
                pool: self.to_string(),
                capacity: self.capacity(),
            });
        }
        let sandbox = Ipv4Addr::from(self.base + slot * 4 + 2);
        Ok(SlotAddrs {
            host: host_end(sandbox),
            sandbox,
        })
    }

    /// Whether `addr` lies in the pool.
    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & self.mask() == self.base
    }

    fn mask(&self) -> u32 {
        u32::MAX << (32 - self.prefix)
    }
}

impl FromStr for AddressPool {
    type Err = NetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || NetError::InvalidPool(s.chars().take(64).collect());
        let (addr, prefix) = s.trim().split_once('/').ok_or_else(invalid)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| invalid())?;
        let prefix: u8 = prefix.parse().map_err(|_| invalid())?;
        if !(8..=SLOT_PREFIX).contains(&prefix) {
            return Err(invalid());
        }
        let pool = Self {
            base: u32::from(addr),
            prefix,
        };
        // Host bits set ("10.77.0.5/16") is almost always a typo.
        if pool.base & !pool.mask() != 0 {
            return Err(invalid());
        }
        Ok(pool)
    }
}

impl fmt::Display for AddressPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_consecutive_slash_30_blocks() {
        let pool: AddressPool = "10.77.0.0/16".parse().unwrap();
        assert_eq!(pool.capacity(), 16384);
        let s0 = pool.slot(0).unwrap();
        assert_eq!(s0.host, Ipv4Addr::new(10, 77, 0, 1));
        assert_eq!(s0.sandbox, Ipv4Addr::new(10, 77, 0, 2));
        let s65 = pool.slot(65).unwrap();
        assert_eq!(s65.host, Ipv4Addr::new(10, 77, 1, 5));
        assert_eq!(s65.sandbox, Ipv4Addr::new(10, 77, 1, 6));
        let last = pool.slot(16383).unwrap();
        assert_eq!(last.sandbox, Ipv4Addr::new(10, 77, 255, 254));
        assert!(pool.contains(last.host));
        assert!(!pool.contains(Ipv4Addr::new(10, 78, 0, 1)));
    }

    #[test]
    fn slot_outside_pool_is_rejected() {
        let pool: AddressPool = "10.1.2.0/28".parse().unwrap();
        assert_eq!(pool.capacity(), 4);
        assert!(pool.slot(3).is_ok());
        assert!(matches!(
            pool.slot(4),
            Err(NetError::SlotOutOfRange { capacity: 4, .. })
        ));
    }

    #[test]
    fn malformed_pools_are_rejected() {
        for bad in [
            "",
            "10.77.0.0",
            "10.77.0.0/31",
            "10.77.0.0/7",
            "10.77.0.5/16",
            "10.77.0.0/x",
            "fd00::/64",
            "10.77.0.0/16/2",
        ] {
            assert!(bad.parse::<AddressPool>().is_err(), "{bad} accepted");
        }
        assert_eq!(
            "10.77.0.0/16".parse::<AddressPool>().unwrap().to_string(),
            "10.77.0.0/16"
        );
    }
}
