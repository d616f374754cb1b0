import Foundation
import NIOCore
import Synchronization

/// Prints `herald listening data=http://HOST:PORT/PATH admin=http://HOST:PORT` (https with
/// TLS) once both
/// listeners are bound. Scripts and tests read this line; keep its shape.
final class StartupLine: Sendable {
    let dataHost: String
    let path: String
    let adminHost: String
    let dataScheme: String
    let adminScheme: String
    private let ports = Mutex<(data: Int?, admin: Int?, printed: Bool)>((nil, nil, false))

    init(dataHost: String, path: String, adminHost: String, dataTLS: Bool = false, adminTLS: Bool = false) {
        self.dataHost = dataHost
        self.path = path
        self.adminHost = adminHost
        self.dataScheme = dataTLS ? "https" : "http"
        self.adminScheme = adminTLS ? "https" : "http"
    }

    func dataBound(_ address: SocketAddress) { update { $0.data = address.port ?? 0 } }
    func adminBound(_ address: SocketAddress) { update { $0.admin = address.port ?? 0 } }

    private func update(_ change: (inout (data: Int?, admin: Int?, printed: Bool)) -> Void) {
        let line = ports.withLock { p -> String? in
            change(&p)
            guard !p.printed, let data = p.data, let admin = p.admin else { return nil }
            p.printed = true
            return "herald listening data=\(dataScheme)://\(Self.urlHost(dataHost)):\(data)\(path) admin=\(adminScheme)://\(Self.urlHost(adminHost)):\(admin)\n"
        }
        if let line { FileHandle.standardOutput.write(Data(line.utf8)) }
    }

    /// An IPv6 literal in brackets, as URLs need.
    static func urlHost(_ host: String) -> String {
        host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
    }
}
