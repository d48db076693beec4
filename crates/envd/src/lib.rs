//! envd protocol. To be written.
