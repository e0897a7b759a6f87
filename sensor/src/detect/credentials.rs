//! Known default credentials, recognised by keyed digest (passwords are never kept).
