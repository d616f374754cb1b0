import HeraldProtocol

/// libFuzzer's entry point: each input goes to `FuzzTarget.run`. libFuzzer's own `main`
/// drives it; Fuzz/run builds and links it (see Fuzz/README.md).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzTarget.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
