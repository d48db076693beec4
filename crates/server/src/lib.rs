//! The daemon's services and HTTP routers. To be written.
