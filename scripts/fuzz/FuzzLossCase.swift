// libFuzzer entry point for `mtp loss`'s case-file interpreter: any bytes are read as a
// safetensors file and, when they are one, evaluated as a case (SPEC §6), gradients
// included. The property: every input either throws or returns; a trap, a sanitizer
// report, a hang (-timeout) or an allocation past -malloc_limit_mb is a finding.

import Foundation
import LossCases
import Tensors

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLossCase(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let input = Data(UnsafeRawBufferPointer(start: bytes, count: count))
    guard let (tensors, metadata) = try? SafeTensors.read(from: input) else { return 0 }
    _ = try? LossCase(tensors: tensors, metadata: metadata).evaluate()
    return 0
}
