import Foundation
import Tensors

/// Prints, once per test process, which BLAS kernels the tests run: the OpenBLAS core in
/// use and, when it is not the preferred one for this CPU, why (``Tensors/BLAS/kernelReport()``).
///
/// OpenBLAS reads `OPENBLAS_CORETYPE` when it loads, before any test code runs, so a test
/// process cannot switch kernels itself; `scripts/test.sh` exports the preferred core type
/// before starting `swift test`, and a bare `swift test` says here that it runs slower ones.
/// Call it from the `setUp()` class method of suites whose speed depends on GEMM.
public func reportBLASKernelOnce() {
    _ = blasKernelReported
}

private let blasKernelReported: Bool = {
    FileHandle.standardError.write(Data((BLAS.kernelReport() + "\n" + BLAS.engineReport() + "\n").utf8))
    return true
}()
