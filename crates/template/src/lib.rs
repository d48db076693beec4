//! Templates. To be written.
