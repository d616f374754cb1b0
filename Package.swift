// swift-tools-version:6.1
import PackageDescription

/// Every target: Swift 6 language mode (the tools version's default), existentials spelled
/// `any`, and imports internal unless a file says `public import` (as Hummingbird does), so
/// that a module's public API names exactly the modules it exposes.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "herald",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "herald", targets: ["herald"]),
        .library(name: "HeraldProtocol", targets: ["HeraldProtocol"]),
        .library(name: "HeraldCore", targets: ["HeraldCore"]),
        .library(name: "HeraldServer", targets: ["HeraldServer"]),
        .library(name: "HeraldSQLite", targets: ["HeraldSQLite"]),
        .library(name: "HeraldConfiguration", targets: ["HeraldConfiguration"]),
        .library(name: "HeraldAdmin", targets: ["HeraldAdmin"]),
        .library(name: "HeraldClient", targets: ["HeraldClient"]),
        .library(name: "HeraldPostgres", targets: ["HeraldPostgres"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        .package(url: "https://github.com/hummingbird-project/swift-websocket.git", from: "1.6.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        .target(
            name: "HeraldProtocol",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HeraldCore",
            dependencies: [
                "HeraldProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HeraldServer",
            dependencies: [
                "HeraldCore",
                "HeraldClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "JWTKit", package: "jwt-kit"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HeraldClient",
            dependencies: [
                "HeraldProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "WSClient", package: "swift-websocket"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HeraldSQLite",
            dependencies: [
                "HeraldCore",
                "HeraldProtocol",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HeraldPostgres",
            dependencies: [
                "HeraldCore",
                "HeraldProtocol",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HeraldAdmin",
            dependencies: [
                "HeraldCore",
                "HeraldProtocol",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HeraldConfiguration",
            dependencies: [
                "HeraldAdmin",
                "HeraldCore",
                "HeraldServer",
                "HeraldProtocol",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "herald",
            dependencies: [
                "HeraldConfiguration",
                "HeraldServer",
                "HeraldSQLite",
                "HeraldPostgres",
                "HeraldAdmin",
                "HeraldClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        // README's "Using the Swift SDK": an embedded broker, an in-process publisher and a
        // WebSocket subscriber. Built with the package (so CI compiles it); `swift run PriceFeed`.
        .executableTarget(
            name: "PriceFeed",
            dependencies: [
                "HeraldClient",
                "HeraldCore",
                "HeraldProtocol",
                "HeraldServer",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            path: "Examples/PriceFeed",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HeraldProtocolTests",
            dependencies: ["HeraldProtocol"],
            // Read by path (FuzzCorpusTests, .ci/fuzz), not bundled.
            exclude: ["FuzzCorpus"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HeraldCoreTests",
            dependencies: ["HeraldCore", "HeraldSQLite"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HeraldConfigurationTests",
            dependencies: ["HeraldConfiguration", "HeraldCore", "HeraldProtocol"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HeraldServerTests",
            dependencies: [
                "HeraldServer",
                "HeraldSQLite",
                "HeraldPostgres",
                "HeraldConfiguration",
                "HeraldAdmin",
                "HeraldClient",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.copy("Fixtures")],
            swiftSettings: swiftSettings
        ),
    ]
)

// MARK: Benchmarks (opt-in)
//
// Microbenchmarks with ordo-one/benchmark live in Benchmarks/. They are only part of the
// package when HERALD_BENCHMARKS is set, so users and the regular build never fetch or build
// them. See Benchmarks/README.md:
//   HERALD_BENCHMARKS=1 swift package --scratch-path .build-bench benchmark
if Context.environment["HERALD_BENCHMARKS"] != nil {
    package.dependencies.append(
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"])
    )
    package.targets.append(
        .executableTarget(
            name: "HeraldBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                "HeraldCore",
                "HeraldProtocol",
            ],
            path: "Benchmarks/HeraldBenchmarks",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark"),
            ]
        )
    )
}

// MARK: Fuzzing (opt-in)
//
// A libFuzzer target over the JSON parser, the message decoder and the channel grammar
// (`FuzzTarget` in HeraldProtocol). Only part of the package when HERALD_FUZZ is set; build
// and run it with Fuzz/run (see Fuzz/README.md).
if Context.environment["HERALD_FUZZ"] != nil {
    package.targets.append(
        .executableTarget(
            name: "HeraldFuzz",
            dependencies: ["HeraldProtocol"],
            path: "Fuzz/HeraldFuzz",
            swiftSettings: swiftSettings + [.unsafeFlags(["-parse-as-library"])]
        )
    )
}

// MARK: SDK benchmark (opt-in)
//
// HeraldClient's receive, decode and publish rates and its heap per 1,000 subscriptions
// (docs/performance.md): HERALD_CLIENT_BENCH=1 swift run -c release herald-client-bench;
// with --url it measures one figure against a running server (Benchmarks/ClientThroughput/compare.sh).
if Context.environment["HERALD_CLIENT_BENCH"] != nil {
    package.targets.append(
        .executableTarget(
            name: "herald-client-bench",
            dependencies: [
                "HeraldClient",
                "HeraldCore",
                "HeraldProtocol",
                "HeraldServer",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Benchmarks/ClientThroughput",
            // compare.sh runs the binary beside these third-party clients (docs/performance.md).
            exclude: ["compare.sh", "feed.py", "aiocometd_bench.py", "faye_bench.rb"],
            swiftSettings: swiftSettings
        )
    )
}
