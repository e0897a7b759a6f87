//! Dropping root after the capture is open: `live --user NAME` runs on as
//! that user, its primary group and its supplementary groups
//! (initgroups(3), setgid(2), setuid(2): the order that leaves no group or
//! user id of root behind). A capture handle already open keeps working;
//! nothing after it needs a privilege.

use std::ffi::CString;

use nix::unistd::{Gid, Uid, User, getegid, geteuid, initgroups, setgid, setuid};

/// Why the process could not switch users.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error("user {user:?}: no such user (see getent passwd)")]
    NoSuchUser { user: String },
    #[error("user {user:?}: cannot look it up: {source}")]
    Lookup { user: String, source: nix::Error },
    #[error(
        "cannot switch to user {user:?} ({step}): {source}; switching users needs root (or CAP_SETUID and CAP_SETGID)"
    )]
    Switch {
        user: String,
        step: &'static str,
        source: nix::Error,
    },
    #[error("switched to user {user:?} but the process still runs as uid {uid}, gid {gid}")]
    Incomplete { user: String, uid: Uid, gid: Gid },
}

/// Runs the rest of the process as `name` (every thread: the C library
/// applies set*id to all of them). Switching to the user the process
/// already is does nothing.
pub fn drop_to(name: &str) -> Result<(), PrivilegeError> {
    let user = User::from_name(name)
        .map_err(|source| PrivilegeError::Lookup {
            user: name.to_string(),
            source,
        })?
        .ok_or_else(|| PrivilegeError::NoSuchUser {
            user: name.to_string(),
        })?;
    if geteuid() == user.uid && getegid() == user.gid {
        return Ok(());
    }
    let switch = |step| {
        move |source| PrivilegeError::Switch {
            user: name.to_string(),
            step,
            source,
        }
    };
    let c_name = CString::new(name).map_err(|_| PrivilegeError::NoSuchUser {
        user: name.to_string(),
    })?;
    initgroups(&c_name, user.gid).map_err(switch("initgroups"))?;
    setgid(user.gid).map_err(switch("setgid"))?;
    setuid(user.uid).map_err(switch("setuid"))?;
    // Root must be gone for good: getting it back has to fail.
    if geteuid() != user.uid || getegid() != user.gid || setuid(Uid::from_raw(0)).is_ok() {
        return Err(PrivilegeError::Incomplete {
            user: name.to_string(),
            uid: geteuid(),
            gid: getegid(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_user_is_named() {
        let err = drop_to("spanwatch-no-such-user").unwrap_err();
        assert!(
            matches!(&err, PrivilegeError::NoSuchUser { user } if user == "spanwatch-no-such-user"),
            "{err}"
        );
        assert!(err.to_string().contains("no such user"), "{err}");
    }
}
