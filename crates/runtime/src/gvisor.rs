//! gVisor backend (runsc). To be written.
