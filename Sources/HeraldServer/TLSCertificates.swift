public import NIOSSL
import Synchronization

/// A TLS certificate chain and private key read from PEM files, for the data listener and
/// the admin API. `reload()` reads the files again (`herald serve` calls it on SIGHUP): new
/// connections get the new certificate, open ones keep theirs and are not dropped.
///
/// The listeners' `TLSConfiguration` asks for the current pair on every handshake
/// (`sslContextCallback`), so one NIOSSL context serves before and after a reload.
public final class TLSCertificates: Sendable {
    public let certificatePath: String
    public let keyPath: String
    private let current: Mutex<Pair>

    struct Pair: Sendable {
        let chain: [NIOSSLCertificateSource]
        let key: NIOSSLPrivateKeySource
    }

    /// Why the files could not be used; the message names the file.
    public struct LoadError: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// Reads both files; throws if either cannot be read or parsed, or if the key is not the
    /// certificate's.
    public init(certificatePath: String, keyPath: String) throws(LoadError) {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        self.current = Mutex(try Self.load(certificatePath: certificatePath, keyPath: keyPath))
    }

    /// Reads the files again. On any error the certificate in use stays, and the error says why.
    public func reload() throws(LoadError) {
        let pair = try Self.load(certificatePath: certificatePath, keyPath: keyPath)
        current.withLock { $0 = pair }
    }

    /// The first certificate of the chain in use (for tests and logs).
    public var leafCertificate: NIOSSLCertificate? {
        guard case .certificate(let leaf) = current.withLock({ $0.chain.first }) else { return nil }
        return leaf
    }

    /// A server configuration that presents the current pair on every handshake; TLS 1.2 at
    /// least.
    public func serverConfiguration() -> TLSConfiguration {
        let pair = current.withLock { $0 }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: pair.chain, privateKey: pair.key)
        // NIOSSL's server default still admits TLS 1.0 and 1.1.
        configuration.minimumTLSVersion = .tlsv12
        configuration.sslContextCallback = { [self] _, promise in
            let pair = current.withLock { $0 }
            var override = NIOSSLContextConfigurationOverride()
            override.certificateChain = pair.chain
            override.privateKey = pair.key
            promise.succeed(override)
        }
        return configuration
    }

    private static func load(certificatePath: String, keyPath: String) throws(LoadError) -> Pair {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificatePath)
        } catch {
            throw LoadError(description: "cannot read a PEM certificate chain from \(certificatePath): \(error)")
        }
        guard !chain.isEmpty else { throw LoadError(description: "no certificate in \(certificatePath)") }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
        } catch {
            throw LoadError(description: "cannot read a PEM private key from \(keyPath): \(error)")
        }
        let pair = Pair(chain: chain.map { .certificate($0) }, key: .privateKey(key))
        // A context checks that the key belongs to the certificate.
        do {
            _ = try NIOSSLContext(configuration: .makeServerConfiguration(certificateChain: pair.chain, privateKey: pair.key))
        } catch {
            throw LoadError(description: "the private key in \(keyPath) does not match the certificate in \(certificatePath): \(error)")
        }
        return pair
    }
}
