//! Issue 15, the session side: every service subscribed and replayed after reconnects against
//! the simulator, code 19, the zero-configuration run.
