import HeraldConfiguration
import Testing

/// The admin API's address and token: a non-loopback address needs a token, which comes from
/// a file or the environment.
@Suite struct AdminSettingsTests {
    @Test func loopbackNeedsNoToken() throws {
        let configuration = try HeraldConfiguration(environment: [:])
        #expect(configuration.admin.host == "127.0.0.1")
        #expect(configuration.admin.port == 8081)
        #expect(configuration.admin.token == nil)
    }

    @Test(arguments: ["0.0.0.0", "10.1.2.3", "127.example.com", "::"])
    func anyOtherAddressNeedsAToken(host: String) throws {
        let error = #expect(throws: HeraldConfigurationError.self) {
            try HeraldConfiguration(overrides: .init(adminHost: host), environment: [:])
        }
        #expect(error == .adminNeedsToken(host: host))
        #expect(error?.description.contains("--admin-token-file or HERALD_ADMIN_TOKEN") == true)
        let withToken = try HeraldConfiguration(overrides: .init(adminHost: host), environment: ["HERALD_ADMIN_TOKEN": " secret \n"])
        #expect(withToken.admin.token == "secret")
    }

    @Test func aTokenFileWinsOverTheEnvironmentAndMustHoldOneLine() throws {
        try TemporaryDirectory.with { directory in
            let file = try directory.write("token", "from-file\n")
            let configuration = try HeraldConfiguration(overrides: .init(adminTokenFile: file), environment: ["HERALD_ADMIN_TOKEN": "from-env"])
            #expect(configuration.admin.token == "from-file")

            let twoLines = try directory.write("two", "a\nb\n")
            #expect(throws: HeraldConfigurationError.unreadableTokenFile(twoLines)) {
                try HeraldConfiguration(overrides: .init(adminTokenFile: twoLines), environment: [:])
            }
            let empty = try directory.write("empty", "\n")
            #expect(throws: HeraldConfigurationError.unreadableTokenFile(empty)) {
                try HeraldConfiguration(overrides: .init(adminTokenFile: empty), environment: [:])
            }
            let missing = directory.path + "/missing"
            #expect(throws: HeraldConfigurationError.unreadableTokenFile(missing)) {
                try HeraldConfiguration(environment: ["HERALD_ADMIN_TOKEN_FILE": missing])
            }
        }
    }
}
