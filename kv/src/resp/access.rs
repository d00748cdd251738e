//! Who may do what on a connection: Redis's `requirepass` and `AUTH`, with an admin
//! user for cluster administration.
//!
//! - No password at all: every connection may do everything (the server then only
//!   listens on loopback: protected mode, in the server).
//! - A password for the default user (`--requirepass`): a connection must `AUTH
//!   password` (or `HELLO 2 AUTH default password`) before anything but `AUTH`,
//!   `HELLO` and `QUIT`; before that, `-NOAUTH`. Without an admin password it may then
//!   also administer the cluster.
//! - An admin password (`--admin-password`): only a connection authenticated as
//!   `admin` may change the cluster (`RAFT.ADD`, `RAFT.REMOVE`, `RAFT.TRANSFER`, ...,
//!   `CONFIG SET`); others get `-NOPERM`.
//!
//! Passwords are compared in time that does not depend on where they differ.

/// The users a connection can be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum User {
    /// The default user: data commands.
    Default,
    /// `admin`: data commands and cluster administration.
    Admin,
}

/// The passwords a server was given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Access {
    /// The default user's password (`requirepass`); `None`: no password needed.
    pub default_password: Option<Vec<u8>>,
    /// The `admin` user's password; `None`: no separate admin user.
    pub admin_password: Option<Vec<u8>>,
}

/// Redis's reply to a command before `AUTH`.
pub const NOAUTH: &str = "NOAUTH Authentication required.";
/// Redis's reply to a wrong user or password.
pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

impl Access {
    /// Who a new connection is before any `AUTH`: the default user when it needs no
    /// password, else nobody.
    pub fn initial_user(&self) -> Option<User> {
        self.default_password.is_none().then_some(User::Default)
    }

    /// Who `AUTH [user] password` makes a connection, or the error to reply.
    pub fn authenticate(&self, user: Option<&[u8]>, password: &[u8]) -> Result<User, String> {
        let named = |name: &str| user.is_some_and(|user| user.eq_ignore_ascii_case(name.as_bytes()));
        if user.is_none() || named("default") {
            return match &self.default_password {
                Some(expected) if same(expected, password) => Ok(User::Default),
                None if user.is_none() && self.admin_password.is_none() => Err(
                    "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
                        .into(),
                ),
                _ => Err(WRONGPASS.into()),
            };
        }
        match &self.admin_password {
            Some(expected) if named("admin") && same(expected, password) => Ok(User::Admin),
            _ => Err(WRONGPASS.into()),
        }
    }

    /// Whether `user` may administer the cluster.
    pub fn may_administer(&self, user: User) -> bool {
        user == User::Admin || self.admin_password.is_none()
    }
}

/// Whether two byte strings are equal, in time that depends only on their lengths.
fn same(expected: &[u8], given: &[u8]) -> bool {
    let mut difference = u8::from(expected.len() != given.len());
    for (index, byte) in expected.iter().enumerate() {
        difference |= byte ^ given.get(index).copied().unwrap_or(!byte);
    }
    difference == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_make_users_and_only_admin_administers_when_there_is_one() {
        let open = Access::default();
        assert_eq!(open.initial_user(), Some(User::Default));
        assert!(open.may_administer(User::Default));
        assert!(open.authenticate(None, b"x").unwrap_err().contains("without any password configured"));

        let one = Access { default_password: Some(b"s3cret".to_vec()), admin_password: None };
        assert_eq!(one.initial_user(), None);
        assert_eq!(one.authenticate(None, b"s3cret"), Ok(User::Default));
        assert_eq!(one.authenticate(Some(b"default"), b"s3cret"), Ok(User::Default));
        assert_eq!(one.authenticate(None, b"s3cre"), Err(WRONGPASS.into()));
        assert_eq!(one.authenticate(None, b"s3cretx"), Err(WRONGPASS.into()));
        assert_eq!(one.authenticate(Some(b"admin"), b"s3cret"), Err(WRONGPASS.into()));
        assert!(one.may_administer(User::Default), "one password: its user administers");

        let two = Access { default_password: Some(b"data".to_vec()), admin_password: Some(b"root".to_vec()) };
        assert_eq!(two.authenticate(Some(b"admin"), b"root"), Ok(User::Admin));
        assert_eq!(two.authenticate(Some(b"ADMIN"), b"data"), Err(WRONGPASS.into()));
        assert_eq!(two.authenticate(Some(b"someone"), b"data"), Err(WRONGPASS.into()));
        assert!(!two.may_administer(User::Default));
        assert!(two.may_administer(User::Admin));
    }
}
