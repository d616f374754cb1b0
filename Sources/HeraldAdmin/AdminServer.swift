public import HeraldCore
import Hummingbird
import HummingbirdTLS
public import Logging
public import NIOCore
public import NIOPosix
public import Prometheus
public import ServiceLifecycle

/// The admin HTTP API (REST, JSON) on its own listener, as a `Service` in the same
/// `ServiceGroup` as the broker; it shuts down with the group. Routes are in
/// `AdminRoutes`; every endpoint is described in `Protocol/admin-openapi.yaml` (and README
/// "Admin API").
public struct AdminServer: Service {
    let application: Application<RouterResponder<BasicRequestContext>>

    /// - Throws: `AdminError` when asked to bind a non-loopback address without a token.
    public init(
        broker: Broker,
        configuration: AdminConfiguration = .init(),
        dataPlane: AdminDataPlane,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        metrics registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(),
        logger: Logger,
        onListening: (@Sendable (SocketAddress) -> Void)? = nil
    ) throws {
        if configuration.token == nil, !AdminConfiguration.isLoopback(configuration.host) {
            throw AdminError(.internalServerError, code: "configuration", message: "the admin API binds \(configuration.host) only with a token (--admin-token-file or HERALD_ADMIN_TOKEN); without one it binds loopback only")
        }
        let router = Router()
        router.add(middleware: JSONErrorMiddleware(allowedMethods: AdminRoutes.allowedMethods))
        if let token = configuration.token {
            router.add(middleware: BearerTokenMiddleware(token: token))
        } else {
            router.add(middleware: LoopbackGuardMiddleware())
        }
        AdminRoutes(broker: broker, configuration: configuration, dataPlane: dataPlane, metrics: AdminMetrics(registry: registry)).add(to: router)
        self.application = Application(
            router: router,
            server: try configuration.tls.map { try .tls(.http1(), tlsConfiguration: $0) } ?? .http1(),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "herald"),
            onServerRunning: { channel in
                if let address = channel.localAddress { onListening?(address) }
            },
            eventLoopGroupProvider: .shared(eventLoopGroup),
            logger: logger
        )
    }

    public func run() async throws {
        try await application.run()
    }
}
