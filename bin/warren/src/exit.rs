//! The CLI's own exit status.
//!
//! - `0`: success; `1`: an error (message on stderr); `2`: a usage error (clap).
//! - `warren exec` / `warren shell`: the remote command's exit code; a command
//!   killed by a signal gives `128 + signal number`, like a shell; an exit code
//!   outside 0–255 or an unknown signal gives 255.

/// Success.
pub const OK: i32 = 0;
/// Any error the CLI reports itself.
pub const FAILURE: i32 = 1;
/// Exit code for codes or signals that cannot be represented.
pub const UNREPRESENTABLE: i32 = 255;

/// Maps a remote exit to the CLI's exit code. `exit_code` is the command's
/// own status, `signal` the signal that killed it if any.
pub fn from_remote(exit_code: i32, signal: Option<&str>) -> i32 {
    if let Some(sig) = signal {
        return signal_number(sig).map_or(UNREPRESENTABLE, |n| 128 + n);
    }
    if (0..=255).contains(&exit_code) {
        exit_code
    } else {
        UNREPRESENTABLE
    }
}

/// Linux signal numbers by name (`SIGKILL`, `KILL`, `kill`) or as a number.
pub fn signal_number(name: &str) -> Option<i32> {
    let name = name.trim();
    if let Ok(n) = name.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    let n = match bare {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "TRAP" => 5,
        "ABRT" | "IOT" => 6,
        "BUS" => 7,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        "STKFLT" => 16,
        "CHLD" => 17,
        "CONT" => 18,
        "STOP" => 19,
        "TSTP" => 20,
        "TTIN" => 21,
        "TTOU" => 22,
        "URG" => 23,
        "XCPU" => 24,
        "XFSZ" => 25,
        "VTALRM" => 26,
        "PROF" => 27,
        "WINCH" => 28,
        "IO" | "POLL" => 29,
        "PWR" => 30,
        "SYS" => 31,
        _ => return None,
    };
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_exit_codes_pass_through() {
        assert_eq!(from_remote(0, None), 0);
        assert_eq!(from_remote(3, None), 3);
        assert_eq!(from_remote(255, None), 255);
    }

    #[test]
    fn signals_map_like_a_shell() {
        assert_eq!(from_remote(-1, Some("SIGKILL")), 137);
        assert_eq!(from_remote(-1, Some("TERM")), 143);
        assert_eq!(from_remote(-1, Some("sigint")), 130);
        assert_eq!(from_remote(-1, Some("11")), 139);
    }

    #[test]
    fn unrepresentable_exits_are_255() {
        assert_eq!(from_remote(-1, None), 255);
        assert_eq!(from_remote(256, None), 255);
        assert_eq!(from_remote(-1, Some("SIGBOGUS")), 255);
        assert_eq!(from_remote(-1, Some("0")), 255);
        assert_eq!(from_remote(-1, Some("999")), 255);
    }
}
