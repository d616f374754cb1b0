public import HeraldProtocol
import NIOCore

/// A server-side Bayeux extension, in the manner of Faye's and CometD's (bayeux-notes §4.1).
///
/// Incoming hooks run in registration order on every message before the broker acts on it;
/// outgoing hooks run in registration order on every reply. Delivery hooks run **once per
/// publish**, before the message is encoded for all subscribers, so they cannot vary per
/// subscriber: that is what keeps fan-out at one encoding per publish.
public protocol BayeuxExtension: Sendable {
    func incoming(_ message: inout BayeuxMessage, session: Session?) -> ExtensionDecision
    func outgoingReply(_ reply: inout JSONObject, request: BayeuxMessage, session: Session?)
    func outgoingDelivery(_ delivery: inout Delivery)
}

extension BayeuxExtension {
    public func incoming(_ message: inout BayeuxMessage, session: Session?) -> ExtensionDecision { .continue }
    public func outgoingReply(_ reply: inout JSONObject, request: BayeuxMessage, session: Session?) {}
    public func outgoingDelivery(_ delivery: inout Delivery) {}
}
