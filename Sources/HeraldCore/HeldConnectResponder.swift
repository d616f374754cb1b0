package import NIOCore

/// Receives the reply to a held `/meta/connect`.
package protocol HeldConnectResponder: AnyObject, Sendable {
    /// Called exactly once, from any thread, with the encoded connect reply and, for HTTP
    /// transports, the queued events to send in the same response.
    func completeConnect(_ session: Session, reply: ByteBuffer, events: [ByteBuffer])
}

/// A connection that both receives pushed messages and answers held connects.
package typealias BayeuxConnection = SessionSink & HeldConnectResponder
