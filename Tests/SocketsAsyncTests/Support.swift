// Every file of this target sees the shared test support: the descriptor-leak trait
// (`.noDescriptorLeaks()`), child processes, test networks.
@_exported import SocketsTestSupport
