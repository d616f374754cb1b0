import HeraldProtocol
import Testing

@Suite struct ChannelNameTests {
    @Test(arguments: ["/a", "/foo/bar", "/stocks/AAPL", "/a.b/c-d_e", "/x/{name}", "/meta/connect", "/service/echo", "/a b"])
    func validNames(_ name: String) {
        #expect(ChannelName(name) != nil)
        #expect(ChannelPattern(name)?.kind == .literal)
    }

    @Test(arguments: ["/a", "/foo/bar", "/a/b/c/d", "/meta/connect"])
    func segmentsWithoutAnArray(_ name: String) throws {
        let channel = try #require(ChannelName(name))
        var walked: [Substring] = []
        #expect(channel.forEachSegment { walked.append($0); return true })
        #expect(walked == channel.segments)
        #expect(channel.segmentCount == channel.segments.count)
        var first: [Substring] = []
        #expect(channel.forEachSegment { first.append($0); return false } == false)
        #expect(first == [channel.segments[0]])
    }

    @Test(arguments: ["", "/", "foo", "//a", "/a/", "/a//b", "/a:b", "/a\u{e9}", "/a/*", "/**", "/a\"b", "/a\\b"])
    func invalidNames(_ name: String) {
        #expect(ChannelName(name) == nil)
    }

    @Test func wildcardsOnlyAsLastSegment() {
        #expect(ChannelPattern("/a/*")?.kind == .singleWildcard)
        #expect(ChannelPattern("/a/**")?.kind == .deepWildcard)
        #expect(ChannelPattern("/**")?.kind == .deepWildcard)
        #expect(ChannelPattern("/*")?.kind == .singleWildcard)
        #expect(ChannelPattern("/a/*/b") == nil)
        #expect(ChannelPattern("/**/a") == nil)
        #expect(ChannelPattern("/a/b*") == nil)
        #expect(ChannelPattern("/a/***") == nil)
    }

    @Test func limits() {
        let long = "/" + String(repeating: "a", count: ChannelName.maxBytes)
        #expect(ChannelName(long) == nil)
        let deep = String(repeating: "/a", count: ChannelName.maxSegments + 1)
        #expect(ChannelName(deep) == nil)
        #expect(ChannelName(String(repeating: "/a", count: ChannelName.maxSegments)) != nil)
    }

    @Test func metaAndService() {
        #expect(ChannelName("/meta/connect")!.isMeta)
        #expect(ChannelName("/meta/subscribe/x")!.isMeta)
        #expect(!ChannelName("/metadata")!.isMeta)
        #expect(ChannelName("/service/x/y")!.isService)
        #expect(ChannelPattern("/service/**")!.isService)
        #expect(ChannelPattern("/meta/*")!.isMeta)
    }

    /// Bayeux 1.0 §2.2.1, with the examples of bayeux-notes §2.2.
    @Test(arguments: [
        ("/foo/*", "/foo/bar", true), ("/foo/*", "/foo/boo", true), ("/foo/*", "/foo", false),
        ("/foo/*", "/foobar", false), ("/foo/*", "/foo/bar/boo", false),
        ("/foo/**", "/foo/bar", true), ("/foo/**", "/foo/bar/boo", true), ("/foo/**", "/foo", false),
        ("/foo/**", "/foobar", false), ("/foo/**", "/foobar/boo", false),
        ("/*", "/a", true), ("/*", "/a/b", false), ("/**", "/a/b/c", true),
        ("/a/b", "/a/b", true), ("/a/b", "/a/bc", false), ("/a/b", "/a", false),
    ])
    func matching(_ pattern: String, _ name: String, _ expected: Bool) {
        #expect(ChannelPattern(pattern)!.matches(ChannelName(name)!) == expected)
    }
}

@Suite struct BayeuxErrorTests {
    @Test func wireForm() {
        #expect(BayeuxError.unknownClient.description == "402::Unknown client")
        #expect(BayeuxError.invalidChannel("/foo/*").description == "405:/foo/*:Invalid channel")
        #expect(BayeuxError.missingParameter("data").description == "402:data:Missing required parameter")
        #expect(BayeuxError.connectionTypesNotSupported(["iframe", "flash"]).description == "301:iframe,flash:Connection types not supported")
        #expect(BayeuxError.messageTooLarge(limit: 65536).description == "413:65536:Message too large")
    }

    @Test func adviceIntervalIsZeroByDefault() {
        let advice = Advice(reconnect: .retry, timeoutMilliseconds: 30000)
        #expect(advice.json.jsonText == #"{"reconnect":"retry","interval":0,"timeout":30000}"#)
        #expect(Advice.handshake.json.jsonText == #"{"reconnect":"handshake","interval":0}"#)
    }
}

@Suite struct PatternCoverageTests {
    /// `covers`: every channel the inner pattern matches, the outer one matches too.
    @Test(arguments: [
        ("/a/**", "/a/b", true), ("/a/**", "/a/*", true), ("/a/**", "/a/b/**", true), ("/a/**", "/a/**", true),
        ("/a/**", "/a", false), ("/a/**", "/b/**", false), ("/a/**", "/**", false),
        ("/a/*", "/a/b", true), ("/a/*", "/a/*", true), ("/a/*", "/a/b/c", false), ("/a/*", "/a/**", false), ("/a/*", "/a/b/*", false),
        ("/a/b", "/a/b", true), ("/a/b", "/a/*", false), ("/**", "/x/y/*", true), ("/*", "/x", true), ("/*", "/x/y", false),
    ])
    func covers(outer: String, inner: String, expected: Bool) {
        #expect(ChannelPattern(outer)!.covers(ChannelPattern(inner)!) == expected)
    }
}

@Suite struct CombiningMarkTests {
    /// Found by the fuzzer: "/" and a combining mark are one Character, so splitting on
    /// Characters dropped the mark unchecked and read "/\u{749}*" as "/*".
    @Test func aCombiningMarkAfterASlashIsNotDropped() {
        #expect(ChannelPattern("/\u{749}*") == nil)
        #expect(ChannelName("/\u{749}abc") == nil)
        #expect(ChannelName("/a/\u{301}b") == nil)
        #expect(ChannelPattern("/*\u{301}") == nil)
        #expect(ChannelName("/a/b")?.rawValue == "/a/b")
        #expect(ChannelPattern("/a/**")?.prefix == ["a"])
    }
}
