import Foundation
import NIOCore

/// What `herald serve` sets up in its own process, and an embedding application decides for
/// itself: malloc's trimming, and how many event loops the CPUs allow.
enum ProcessTuning {
    /// glibc's malloc gives the top of its heaps back to the kernel as soon as 128 KiB there
    /// are free, and serves allocations from 128 KiB up (32 MiB as it adapts) with fresh
    /// mappings. A broker frees and allocates frame buffers of that size all the time: with
    /// 100 subscribers that never read holding buffers across the heap, a fanout spent about
    /// 16 % of its core in page faults on new frame buffers. Trimming only past 256 MiB free,
    /// and taking allocations up to 4 MiB from the heap, keeps those pages mapped. (What the
    /// broker holds is bounded by its own limits; this only changes when freed memory is
    /// returned.) Embedding applications keep their own malloc settings.
    static func tuneMalloc() {
        #if os(Linux)
        // `mallopt` and its <malloc.h> constants are not imported into Swift: found at run time
        // (M_TRIM_THRESHOLD is -1, M_MMAP_THRESHOLD -3). Not glibc: nothing to do.
        typealias MallOpt = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
        let mallopt = unsafeBitCast(symbol, to: MallOpt.self)
        _ = mallopt(-1, 256 << 20)
        _ = mallopt(-3, 4 << 20)
        #endif
    }

    /// Gives memory that malloc keeps free back to the kernel while the resident size is
    /// `growth` bytes or more above the lowest it was after a trim: `tuneMalloc` keeps up to
    /// 256 MiB of freed memory mapped, so that the buffers a fan-out frees and allocates all the
    /// time do not fault their pages in again; after a burst (a flood of pipelined requests,
    /// clients that never read), that memory would otherwise stay resident for good.
    /// It checks every `interval`; a trim that returned less than 1 MiB doubles the wait (up to
    /// `maxInterval`), so that a large working set that is all in use is not trimmed, and its
    /// pages faulted in again, every few seconds. Returns nil where there is no glibc.
    static func trimmer(interval: Duration = .seconds(5), maxInterval: Duration = .seconds(320), growth: Int = 2 << 20) -> (@Sendable () async -> Void)? {
        #if os(Linux)
        typealias MallocTrim = @convention(c) (Int) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return nil }
        let trim = unsafeBitCast(symbol, to: MallocTrim.self)
        return {
            var floor = residentBytes() ?? 0
            var wait = interval
            while !Task.isCancelled {
                try? await Task.sleep(for: wait)
                guard let resident = residentBytes() else { return }
                guard resident >= floor + growth else {
                    floor = min(floor, resident)
                    continue
                }
                _ = trim(0)
                let after = residentBytes() ?? resident
                floor = min(floor, after)
                wait = resident - after >= 1 << 20 ? interval : min(wait * 2, maxInterval)
            }
        }
        #else
        return nil
        #endif
    }

    /// The resident set size, from /proc/self/statm.
    static func residentBytes() -> Int? {
        guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let fields = statm.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// CPUs in this process's affinity mask (NIO's `System.coreCount` counts the machine's):
    /// the `Cpus_allowed` mask of /proc/self/status on Linux.
    static func usableCPUs() -> Int {
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed:") })
        {
            let mask = line.dropFirst("Cpus_allowed:".count).filter { $0.isHexDigit }
            let count = mask.reduce(0) { $0 + (Int(String($1), radix: 16) ?? 0).nonzeroBitCount }
            if count > 0 { return min(count, System.coreCount) }
        }
        return System.coreCount
    }
}
