// The BLAS set-up: the OpenBLAS core type chosen from /proc/cpuinfo flags, the
// thread share per concurrent caller, and the kernel report the tests print.

import Foundation
import TestSupport
import Tensors
import XCTest

final class BLASConfigurationTests: XCTestCase {
    override class func setUp() {
        super.setUp()
        reportBLASKernelOnce()
    }

    private func cpuinfo(_ flags: String) -> String {
        "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vme sse sse2 \(flags) hypervisor\nbogomips\t: 4000\n"
    }

    func testAVX512PrefersSkylakeX() {
        XCTAssertEqual(BLAS.preferredCoreType(cpuinfo: cpuinfo("avx avx2 fma avx512f avx512dq avx512bw avx512vl")), "SkylakeX")
    }

    func testAVX2WithFMAPrefersHaswell() {
        XCTAssertEqual(BLAS.preferredCoreType(cpuinfo: cpuinfo("avx avx2 fma")), "Haswell")
        // AVX-512 without all four of F, BW, VL and DQ (Knights Landing has no BW/VL) is not SkylakeX.
        XCTAssertEqual(BLAS.preferredCoreType(cpuinfo: cpuinfo("avx avx2 fma avx512f avx512cd")), "Haswell")
    }

    func testOlderCPUsLeaveTheChoiceToOpenBLAS() {
        XCTAssertNil(BLAS.preferredCoreType(cpuinfo: cpuinfo("avx")))
        XCTAssertNil(BLAS.preferredCoreType(cpuinfo: cpuinfo("avx avx2")), "AVX2 without FMA")
        XCTAssertNil(BLAS.preferredCoreType(cpuinfo: cpuinfo("avx fma")), "FMA without AVX2")
        XCTAssertNil(BLAS.preferredCoreType(cpuinfo: ""))
        XCTAssertNil(BLAS.preferredCoreType(cpuinfo: "processor\t: 0\n"), "no flags line")
    }

    func testFlagNamesMatchWholeWords() {
        // "avx2" must not be found inside "avx2_vnni" alone, nor "fma" inside "fma4".
        XCTAssertNil(BLAS.preferredCoreType(cpuinfo: cpuinfo("avx2_vnni fma4")))
    }

    func testThreadsAreSharedAmongCallers() {
        XCTAssertEqual(BLAS.threadsPerCaller(callers: 2, cores: 16), 8)
        XCTAssertEqual(BLAS.threadsPerCaller(callers: 3, cores: 16), 5)
        XCTAssertEqual(BLAS.threadsPerCaller(callers: 4, cores: 2), 1, "at least one thread")
        XCTAssertEqual(BLAS.threadsPerCaller(callers: 0, cores: 4), 4, "no callers counts as one")
    }

    func testOpenBLASReportsItsKernelAndThreads() throws {
        #if os(Linux)
        let core = try XCTUnwrap(BLAS.coreName, "OpenBLAS exports openblas_get_corename")
        XCTAssertFalse(core.isEmpty)
        XCTAssertTrue(BLAS.kernelReport().contains(core))
        let before = try XCTUnwrap(BLAS.threads)
        defer { BLAS.setThreads(before) }
        XCTAssertTrue(BLAS.setThreads(1))
        XCTAssertEqual(BLAS.threads, 1)
        #else
        throw XCTSkip("OpenBLAS entry points are looked up on Linux only")
        #endif
    }
}
